// `npm run bench:chrome`: the benchmark in headless Chromium. Starts a Vite
// dev server on this repo, opens /bench.html?autorun=1 in system Chromium
// (playwright-core, WebGPU enabled; SwiftShader when there is no GPU), waits
// for window.__bench and writes bench/results/<date>-<device>-chrome.{json,md,svg}.
//
//   vite-node bench/chrome.ts [same flags as bench/node.ts] [--headed] [--out=dir] [--no-write] [--screenshot=file.png]
//
// CHROMIUM_PATH overrides /usr/bin/chromium.
import path from 'node:path';
import { chromium } from 'playwright-core';
import { createServer } from 'vite';
import { optionsToParams, parseOptions } from './run';
import type { BenchReport } from './run';
import { finishRun } from './output';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../test/helpers/chromium';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const opts = parseOptions(args);
  const outArg = args.find((a) => a.startsWith('--out='))?.slice(6);
  const write = !args.includes('--no-write') && (!opts.quick || !!outArg);
  const strict = opts.quick || args.includes('--strict');

  const server = await createServer({
    root,
    logLevel: 'warn',
    server: { host: '127.0.0.1', port: 5199, strictPort: false, open: false },
    // Pre-bundle the rivals up front so the page never reloads mid-run for a late dependency.
    optimizeDeps: {
      entries: ['bench.html'],
      include: ['@tensorflow/tfjs-core', '@tensorflow/tfjs-core/dist/register_all_gradients', '@tensorflow/tfjs-backend-webgpu', '@jax-js/jax'],
    },
  });
  await server.listen();
  const base = server.resolvedUrls?.local[0] ?? 'http://127.0.0.1:5199/';
  const query = optionsToParams(opts);
  query.set('autorun', '1');
  const url = `${base}bench.html?${query}`;
  console.log(`vite: ${base}  ->  ${url}`);

  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: !args.includes('--headed'),
    args: CHROMIUM_ARGS,
  });
  let code: number;
  try {
    const page = await browser.newPage();
    page.on('console', (m) => {
      const t = m.text();
      if (m.type() === 'error' || m.type() === 'warning') console.log(`[page ${m.type()}] ${t}`);
      else console.log(t);
    });
    page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
    await page.goto(url);
    // Poll rather than waitForFunction: survives a reload (e.g. Vite re-optimising deps).
    const deadline = Date.now() + 45 * 60_000;
    let status: string | undefined;
    for (;;) {
      try {
        status = await page.evaluate(() => window.__benchStatus);
      } catch {
        status = undefined; // navigating
      }
      if (status === 'done' || status === 'error') break;
      if (Date.now() > deadline) throw new Error('the benchmark page did not finish within 45 minutes');
      await new Promise((r) => setTimeout(r, 1000));
    }
    if (status === 'error') throw new Error(`the benchmark page failed: ${await page.evaluate(() => window.__benchError)}`);
    const report = (await page.evaluate(() => window.__bench)) as BenchReport;
    const shot = args.find((a) => a.startsWith('--screenshot='))?.slice(13);
    if (shot) {
      await page.screenshot({ path: shot, fullPage: true });
      console.log(`screenshot: ${shot}`);
    }
    report.platform = `Chromium ${browser.version()} (headless${args.includes('--headed') ? ': no' : ''}), ${report.platform}`;
    code = finishRun(report, write ? (outArg ?? path.join(root, 'bench', 'results')) : null, strict);
  } finally {
    await browser.close();
    await server.close();
  }
  return code;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
