// Every module of src/ loads on its own, imported first in a fresh Node
// process (native ESM, no bundler to hide an import cycle: a cycle whose
// modules read each other at load time throws a ReferenceError here).
// src/demo/ is the browser page (it touches `window` when loaded); the e2e
// test loads it in Chromium.
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

function modules(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return p === join('src', 'demo') ? [] : modules(p);
    return /\.ts$/.test(f) && !f.endsWith('.d.ts') ? [p] : [];
  });
}

describe('each module of src/ loads first, on its own', () => {
  const all = modules('src').sort();
  it('finds the modules', () => expect(all.length).toBeGreaterThan(20));
  it.each(all)('%s', async (file) => {
    const { stderr } = await run(process.execPath, [
      '--import',
      'tsx',
      '--import',
      './test/helpers/register-raw.mjs',
      '-e',
      `await import('./${file}')`,
    ]);
    expect(stderr.split('\n').filter((l) => /Error/.test(l))).toEqual([]);
  });
});
