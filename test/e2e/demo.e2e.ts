// End-to-end check of the demo page in system Chromium (WebGPU on SwiftShader
// where there is no GPU), driven by playwright-core. Run: npm run test:e2e
//
//   1. dev server (what `npm run demo` serves): adapter found, worked examples
//      right, the MLP loss falls 10x over a bounded run, no console errors.
//   2. production build (dist-demo, `vite preview`): same page under its
//      Content-Security-Policy, no violations.
//   3. the controls: pause, reset, width and optimizer switches.
//   4. Chromium without --enable-unsafe-webgpu, and with navigator.gpu hidden:
//      the page says WebGPU is missing and how to enable it.
//
// Env: CHROMIUM_PATH (default /usr/bin/chromium), E2E_STEPS (default 200).

import { CHROMIUM_PATH, QUIET_ARGS, WEBGPU_ARGS } from '../helpers/chromium';
import { mkdirSync } from 'node:fs';
import { createServer as netServer } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build, createServer, preview } from 'vite';

const ROOT = new URL('../..', import.meta.url).pathname;
const ARTIFACTS = `${ROOT}test-artifacts`;
const CHROMIUM = CHROMIUM_PATH;
const STEPS = Number(process.env.E2E_STEPS ?? 200);
const BASE_ARGS = QUIET_ARGS;

type Demo = {
  state: string;
  running: boolean;
  gpuBuffers: number;
  examples: number[][];
  losses: number[];
  steps: number;
  done: boolean;
  error: string | null;
  adapter: { vendor: string; architecture: string; description: string; isFallback: boolean } | null;
  linear: { losses: number[] };
  cspViolations: string[];
};

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = netServer()
      .listen(0, '127.0.0.1', () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      })
      .on('error', reject);
  });

async function openPage(browser: Browser, url: string, initScript?: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  if (initScript) await page.addInitScript(initScript);
  const errors: string[] = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(`console: ${m.text()}`));
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('response', (r) => r.status() >= 400 && errors.push(`HTTP ${r.status()} ${r.url()}`));
  await page.goto(url);
  return { page, errors };
}

const readDemo = (page: Page) => page.evaluate(() => (window as unknown as { __demo: Demo }).__demo);

async function waitFor(page: Page, what: string, pred: (d: Demo) => boolean, timeoutMs: number): Promise<Demo> {
  const t0 = Date.now();
  for (;;) {
    const d = await readDemo(page).catch(() => null); // null while the page (re)loads
    if (d && (d.state === 'error' || d.error)) throw new Error(`page error while waiting for ${what}: ${d.error}`);
    if (d && pred(d)) return d;
    if (Date.now() - t0 > timeoutMs)
      throw new Error(
        `timed out after ${timeoutMs / 1000}s waiting for ${what}; last state ${JSON.stringify(d && { state: d.state, steps: d.steps })}`,
      );
    await new Promise((r) => setTimeout(r, 250));
  }
}

const close = (got: number[] | undefined, want: number[]) =>
  !!got && got.length === want.length && got.every((g, i) => Math.abs(g - want[i]!) <= 1e-5 * Math.max(1, Math.abs(want[i]!)));

/** The WebGPU checks shared by the dev-server and built-page tests. */
async function checkTraining(baseUrl: string, steps: number, shot: string): Promise<string> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...BASE_ARGS, ...WEBGPU_ARGS] });
  try {
    const { page, errors } = await openPage(browser, `${baseUrl}/?steps=${steps}&autostart=1`);
    const ready = await waitFor(page, 'the page to be ready', (d) => d.state !== 'loading', 60_000);
    assert(ready.state === 'ready', `state is '${ready.state}', expected 'ready' (error: ${ready.error})`);
    assert(ready.adapter, 'no adapter reported');
    assert(close(ready.examples[0], [8, 12, 4]), `example 1 gave ${JSON.stringify(ready.examples[0])}, expected [8,12,4]`);
    assert(close(ready.examples[1], [2, 2, 4]), `example 2 gave ${JSON.stringify(ready.examples[1])}, expected [2,2,4]`);
    const t0 = Date.now();
    const d = await waitFor(page, `${steps} MLP steps`, (x) => x.done, 300_000);
    const secs = (Date.now() - t0) / 1000;
    const lin = d.linear.losses;
    assert(lin.length > 0 && lin.at(-1)! < lin[0]! / 100, `linear GD loss ${lin[0]} -> ${lin.at(-1)}: expected a 100x drop`);
    assert(d.losses.length === steps && d.steps === steps, `expected ${steps} losses, got ${d.losses.length} (steps ${d.steps})`);
    const [first, last] = [d.losses[0]!, d.losses.at(-1)!];
    assert(last <= first / 10, `MLP loss fell from ${first} to ${last}, less than 10x`);
    // Memory stays flat: another `steps` steps must not leave more live GPU buffers behind.
    await page.locator('#btn-start').click(); // Continue
    const more = await waitFor(page, `${steps} more steps`, (x) => x.steps >= 2 * steps, 300_000);
    await page.locator('#btn-start').click(); // Pause
    const after = await waitFor(page, 'pause', (x) => !x.running, 10_000);
    assert(
      after.gpuBuffers <= d.gpuBuffers + 5,
      `live GPU buffers grew from ${d.gpuBuffers} to ${after.gpuBuffers} over ${more.steps - steps} more steps`,
    );
    await page.locator('#trees').evaluate((el) => ((el as HTMLDetailsElement).open = true));
    await page.waitForTimeout(300); // let the charts settle before the picture
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}/${shot}`, fullPage: true });
    assert(d.cspViolations.length === 0, `CSP violations: ${d.cspViolations.join('; ')}`);
    assert(errors.length === 0, `console errors:\n  ${errors.join('\n  ')}`);
    const a = d.adapter!;
    return (
      `adapter "${a.vendor} / ${a.architecture} / ${a.description}"${a.isFallback ? ' (fallback)' : ''}; ` +
      `examples ok; linear loss ${lin[0]!.toFixed(3)} -> ${lin.at(-1)!.toFixed(4)}; ` +
      `MLP loss ${first.toFixed(4)} -> ${last.toFixed(4)} (${(first / last).toFixed(0)}x) in ${steps} steps, ${secs.toFixed(1)}s (${(steps / secs).toFixed(1)} steps/s); ` +
      `live GPU buffers ${d.gpuBuffers} at step ${d.steps}, ${after.gpuBuffers} at step ${after.steps}; ${shot}`
    );
  } finally {
    await browser.close();
  }
}

/** The controls: start/pause, reset, optimizer and width switches rebuild the tree, lr slider. */
async function checkControls(baseUrl: string): Promise<string> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...BASE_ARGS, ...WEBGPU_ARGS] });
  try {
    const { page, errors } = await openPage(browser, `${baseUrl}/`);
    await waitFor(page, 'the page to be ready', (d) => d.state === 'ready', 60_000);
    const start = page.locator('#btn-start');
    await page.waitForFunction(() => !(document.getElementById('btn-start') as HTMLButtonElement).disabled, null, { timeout: 60_000 });
    assert((await readDemo(page)).steps === 0, 'training started without autostart');
    await start.click();
    await waitFor(page, '20 steps', (d) => d.steps >= 20, 60_000);
    await start.click(); // pause
    const paused = await waitFor(page, 'pause', (d) => !d.running, 10_000);
    await page.waitForTimeout(300);
    assert((await readDemo(page)).steps === paused.steps, 'steps kept increasing after Pause');
    assert((await start.innerText()) === 'Resume', `button says "${await start.innerText()}" when paused`);
    await page.locator('#trees').evaluate((el) => ((el as HTMLDetailsElement).open = true));
    await page.selectOption('#sel-width', '64');
    await waitFor(page, 'reset after width change', (d) => d.steps === 0 && d.losses.length === 0 && !d.running, 10_000);
    await page.selectOption('#sel-opt', 'sgd');
    assert((await page.locator('#out-lr').innerText()) === '0.03', 'SGD did not select its default learning rate');
    await start.click();
    const d = await waitFor(page, '30 SGD steps', (x) => x.steps >= 30, 60_000);
    await start.click();
    assert(d.losses.at(-1)! < d.losses[0]!, `SGD loss did not fall: ${d.losses[0]} -> ${d.losses.at(-1)}`);
    const shapes = await page.locator('#trees-body table').innerText();
    assert(shapes.includes('[1, 64]') && shapes.includes('[64, 1]'), `trees do not show width 64 shapes:\n${shapes}`);
    await page.locator('#btn-reset').click();
    await waitFor(page, 'reset', (x) => x.steps === 0 && !x.running, 10_000);
    assert(errors.length === 0, `console errors:\n  ${errors.join('\n  ')}`);
    return `pause held at ${paused.steps} steps; width 64 + SGD (lr 0.03): loss ${d.losses[0]!.toFixed(3)} -> ${d.losses.at(-1)!.toFixed(3)} in ${d.steps} steps; reset ok`;
  } finally {
    await browser.close();
  }
}

/** Chromium without --enable-unsafe-webgpu (navigator.gpu exists, no adapter), then with navigator.gpu hidden. */
async function checkNoWebGpu(baseUrl: string): Promise<string> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: BASE_ARGS });
  const notes: string[] = [];
  try {
    for (const [variant, init] of [
      ['no adapter', undefined],
      ['no navigator.gpu', "Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined })"],
    ] as const) {
      const { page, errors } = await openPage(browser, `${baseUrl}/?steps=5&autostart=1`, init);
      const d = await waitFor(page, "state 'no-webgpu'", (x) => x.state !== 'loading', 60_000);
      assert(d.state === 'no-webgpu', `${variant}: state is '${d.state}', expected 'no-webgpu'`);
      const banner = page.locator('#banner');
      assert(await banner.isVisible(), `${variant}: the no-WebGPU banner is not visible`);
      const text = await banner.innerText();
      for (const s of ['WebGPU is not available', 'Chrome or Edge 113+', '--enable-unsafe-webgpu', 'chrome://flags']) {
        assert(text.includes(s), `${variant}: banner lacks "${s}": ${text}`);
      }
      assert(!(await page.locator('#content').isVisible()), `${variant}: the demo sections are still shown`);
      if (!init) {
        mkdirSync(ARTIFACTS, { recursive: true });
        await page.screenshot({ path: `${ARTIFACTS}/demo-no-webgpu.png`, fullPage: true });
      }
      assert(errors.length === 0, `${variant}: console errors:\n  ${errors.join('\n  ')}`);
      notes.push(`${variant}: "${text.split('\n')[2]}"`);
      await page.close();
    }
    return `${notes.join('; ')}; demo-no-webgpu.png`;
  } finally {
    await browser.close();
  }
}

async function main(): Promise<void> {
  const results: { name: string; ok: boolean; secs: number; note: string }[] = [];
  const test = async (name: string, fn: () => Promise<string>) => {
    const t0 = Date.now();
    try {
      const note = await fn();
      results.push({ name, ok: true, secs: (Date.now() - t0) / 1000, note });
    } catch (e) {
      results.push({ name, ok: false, secs: (Date.now() - t0) / 1000, note: (e as Error).message });
    }
    const r = results.at(-1)!;
    console.log(`${r.ok ? 'PASS' : 'FAIL'} ${name} (${r.secs.toFixed(1)}s)\n     ${r.note}`);
  };

  const port = await freePort();
  const dev = await createServer({ root: ROOT, logLevel: 'warn', server: { host: '127.0.0.1', port, strictPort: true } });
  await dev.listen();
  const devUrl = `http://127.0.0.1:${port}`;
  try {
    await test('dev server: WebGPU demo trains', () => checkTraining(devUrl, STEPS, 'demo-webgpu.png'));
    await test('dev server: controls (pause, reset, width, SGD)', () => checkControls(devUrl));
    await test('dev server: no WebGPU -> plain message', () => checkNoWebGpu(devUrl));
  } finally {
    await dev.close();
  }

  await test('built page (dist-demo) under its CSP', async () => {
    await build({ root: ROOT, logLevel: 'warn' });
    const pport = await freePort();
    const server = await preview({ root: ROOT, logLevel: 'warn', preview: { host: '127.0.0.1', port: pport, strictPort: true } });
    try {
      return await checkTraining(`http://127.0.0.1:${pport}`, 40, 'demo-built.png');
    } finally {
      await server.close();
    }
  });

  const passed = results.filter((r) => r.ok).length;
  console.log(`${passed} passed, ${results.length - passed} failed`);
  process.exit(passed === results.length ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  console.log('0 passed, 1 failed');
  process.exit(1);
});
