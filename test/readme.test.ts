// The README's code blocks run, so they cannot rot: every ```ts block that
// imports from 'gradgpu' is written out with the import pointed at src/ and
// loaded as a module (top-level await included). Blocks whose comments show
// a value (`// [8, 12, 4]`) are checked against what they print or read.
import { describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const readme = readFileSync('README.md', 'utf8');
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((b) => /from 'gradgpu'/.test(b));
const dir = resolve('test-artifacts/readme');
mkdirSync(dir, { recursive: true });
const checks: Array<[number[], number[], string]> = [];
(globalThis as Record<string, unknown>).__readmeCheck = (got: Float32Array, want: number[], expr: string) =>
  checks.push([Array.from(got), want, expr]);

describe("the README's code blocks run", () => {
  it('finds the runnable blocks', () => expect(blocks.length).toBeGreaterThanOrEqual(3));
  blocks.forEach((code, i) => {
    const title = code.split('\n').find((l) => l.startsWith('//')) ?? code.split('\n')[0]!;
    it(`block ${i + 1}: ${title.slice(0, 60)}`, async () => {
      const logged: unknown[][] = [];
      const log = console.log;
      console.log = (...a: unknown[]) => void logged.push(a);
      try {
        const file = join(dir, `block${i + 1}.ts`);
        // `await x.data(); // [8, 12, 4]` becomes a check of those values.
        const checked = code.replace(
          /^(\s*)await (.+?)\.data\(\);\s*\/\/ (\[[^\]]*\])\s*$/gm,
          (_m, ind: string, expr: string, want: string) =>
            `${ind}(globalThis as any).__readmeCheck(await ${expr}.data(), ${want}, ${JSON.stringify(expr)});`,
        );
        checks.length = 0;
        // Placeholders the prose explains: your own GPUDevice is the one the library already has.
        const prelude = /\bmyGPUDevice\b/.test(code)
          ? `const myGPUDevice = (await (await import('${resolve('src/index.ts')}')).init()).device;\n`
          : '';
        writeFileSync(file, prelude + checked.replace(/from 'gradgpu'/g, `from '${resolve('src/index.ts')}'`) + '\nexport {};\n');
        await import(/* @vite-ignore */ file);
      } finally {
        console.log = log;
      }
      for (const [got, want, expr] of checks) expect(got, expr).toEqual(want);
      // `console.log(await g.w.data(), await g.b.data()); // [-1, 1] [-1]`: the values printed or read must match.
      const claims = [...code.matchAll(/console\.log\(await g\.w\.data\(\), await g\.b\.data\(\)\); \/\/ (\[.*?\]) (\[.*?\])/g)];
      for (const [, w, b] of claims) {
        const line = logged.find((l) => l.length === 2 && l[0] instanceof Float32Array);
        expect(line, 'the block printed its grads').toBeTruthy();
        expect(Array.from(line![0] as Float32Array)).toEqual(JSON.parse(w!));
        expect(Array.from(line![1] as Float32Array)).toEqual(JSON.parse(b!));
      }
    }, 120_000);
  });
});
