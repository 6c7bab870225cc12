// End-to-end check of the demo page in system Chromium (WebGPU on SwiftShader
// where there is no GPU), driven by playwright-core. Run: npm run test:e2e
//
//   1. dev server (what `npm run demo` serves): adapter found, worked examples
//      right, the MLP loss falls 10x over a bounded run, no console errors.
//   2. production build (dist-demo, `vite preview`): same page under its
//      Content-Security-Policy, no violations.
//   3. the controls: pause, reset, width and optimizer switches.
//   4. the real models: MNIST trains (accuracy, the grid, a drawn digit) and
//      the transformer trains and answers a prompt typed into its box.
//   5. Chromium without --enable-unsafe-webgpu, and with navigator.gpu hidden:
//      the page says WebGPU is missing and how to enable it.
//
// Env: CHROMIUM_PATH (default /usr/bin/chromium), E2E_STEPS (default 200),
// E2E_ONLY (run only the checks whose name contains it, e.g. MNIST).

import { CHROMIUM_PATH, QUIET_ARGS, WEBGPU_ARGS } from '../helpers/chromium';
import { mkdirSync } from 'node:fs';
import { createServer as netServer } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build, createServer, preview } from 'vite';

const ROOT = new URL('../..', import.meta.url).pathname;
const ARTIFACTS = `${ROOT}test-artifacts`;
const CHROMIUM = CHROMIUM_PATH;
const STEPS = Number(process.env.E2E_STEPS ?? 200);
const MNIST_STEPS = 60;
const ADDITION_STEPS = 100;
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
  mnist: {
    steps: number;
    losses: number[];
    accuracy: number[];
    predicted: number[];
    labels: number[];
    mistakes: number;
    probabilities: number[];
    done: boolean;
    gpuBuffers: number;
  };
  addition: { steps: number; losses: number[]; exact: number[]; answers: Array<{ prompt: string; answer: string }>; done: boolean };
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

/**
 * The two real models: MNIST (the MLP) trains a bounded run, its held-out
 * accuracy and grid are read from the page, a digit drawn with the mouse gets
 * class probabilities; the transformer trains and answers a typed prompt.
 */
async function checkModels(baseUrl: string): Promise<string> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...BASE_ARGS, ...WEBGPU_ARGS] });
  try {
    const { page, errors } = await openPage(browser, `${baseUrl}/?mnist=${MNIST_STEPS}&addition=${ADDITION_STEPS}`);
    await waitFor(page, 'the page to be ready', (d) => d.state === 'ready', 60_000);
    const t0 = Date.now();
    const d = await waitFor(page, `${MNIST_STEPS} MNIST steps`, (x) => x.mnist.done, 300_000);
    const secs = (Date.now() - t0) / 1000;
    const mn = d.mnist;
    const acc = mn.accuracy.at(-1)!;
    assert(mn.losses.length === MNIST_STEPS, `expected ${MNIST_STEPS} MNIST losses, got ${mn.losses.length}`);
    const tail = mn.losses.slice(-10).reduce((a, b) => a + b, 0) / 10;
    assert(tail < mn.losses[0]! / 3, `MNIST loss fell from ${mn.losses[0]} to ${tail} (mean of the last 10), less than 3x`);
    assert(acc > 0.85, `held-out accuracy ${acc} after ${MNIST_STEPS} MLP steps, expected > 85%`);
    assert(mn.predicted.length === 40 && (await page.locator('#mnist-grid figure').count()) === 40, 'the grid does not show 40 guesses');
    const wrong = mn.predicted.filter((p, i) => p !== mn.labels[i]).length;
    const marked = await page.locator('#mnist-grid figure.wrong').count();
    assert(marked === wrong && mn.mistakes === wrong, `${wrong} wrong guesses in the grid, ${marked} marked`);
    // Draw a "1": one vertical stroke down the middle of the pad.
    await page.locator('#mnist-pad').scrollIntoViewIfNeeded();
    const box = (await page.locator('#mnist-pad').boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.52, box.y + box.height * 0.15);
    await page.mouse.down();
    for (let k = 1; k <= 10; k++) await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * (0.15 + 0.07 * k));
    await page.mouse.up();
    const drawn = await waitFor(page, 'the drawn digit', (x) => x.mnist.probabilities.length === 10, 30_000).catch((e) => {
      throw new Error(`${(e as Error).message}; console errors: ${errors.join('; ') || 'none'}`);
    });
    const probs = drawn.mnist.probabilities;
    const total = probs.reduce((a, b) => a + b, 0);
    const guess = probs.indexOf(Math.max(...probs));
    assert(Math.abs(total - 1) < 1e-4, `the drawn digit's probabilities sum to ${total}`);
    assert(guess === 1, `a vertical stroke was read as ${guess} (probabilities ${probs.map((p) => p.toFixed(3)).join(', ')})`);

    const a = (await waitFor(page, `${ADDITION_STEPS} transformer steps`, (x) => x.addition.done, 300_000)).addition;
    assert(a.losses.at(-1)! < a.losses[0]! - 0.3, `transformer loss ${a.losses[0]} -> ${a.losses.at(-1)}: expected a fall of 0.3`);
    assert(a.exact.length > 0 && a.exact.every((e) => e >= 0 && e <= 1), `held-out exact match ${JSON.stringify(a.exact)}`);
    await page.locator('#add-prompt').fill('47 + 38');
    await page.locator('#add-prompt').press('Enter');
    const asked = await waitFor(page, 'an answer', (x) => x.addition.answers.length === 1, 30_000);
    const ans = asked.addition.answers[0]!;
    assert(ans.prompt === '47+38=' && /^\d{1,3}$/.test(ans.answer), `answer ${JSON.stringify(ans)}`);
    assert((await page.locator('#add-answers li').count()) === 1, 'the answer is not listed');
    await page.locator('#add-prompt').fill('hello');
    await page.locator('#add-ask').click();
    await page.waitForFunction(() => document.getElementById('add-hint')!.textContent!.includes('two numbers'), null, { timeout: 5000 });
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.locator('#mnist-section').screenshot({ path: `${ARTIFACTS}/demo-mnist.png` });
    await page.locator('#addition-section').screenshot({ path: `${ARTIFACTS}/demo-addition.png` });
    assert(errors.length === 0, `console errors:\n  ${errors.join('\n  ')}`);
    return (
      `MNIST MLP: loss ${mn.losses[0]!.toFixed(3)} -> ${tail.toFixed(3)}, held-out ${(100 * acc).toFixed(1)}% after ${MNIST_STEPS} steps ` +
      `(${(MNIST_STEPS / secs).toFixed(1)} steps/s with the transformer training too), ${wrong}/40 wrong in the grid, ` +
      `a drawn stroke read as 1 (p = ${probs[1]!.toFixed(2)}); transformer loss ${a.losses[0]!.toFixed(3)} -> ${a.losses.at(-1)!.toFixed(3)} ` +
      `in ${a.steps} steps, held-out exact ${(100 * a.exact.at(-1)!).toFixed(1)}%, 47+38= -> ${ans.answer}; demo-mnist.png, demo-addition.png`
    );
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
  const only = process.env.E2E_ONLY; // run the checks whose name contains this
  const test = async (name: string, fn: () => Promise<string>) => {
    if (only && !name.includes(only)) return;
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
    await test('dev server: MNIST and the transformer train, draw a digit, ask a sum', () => checkModels(devUrl));
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
