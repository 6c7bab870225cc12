// The benchmark page (bench.html): the same harness as Node, in the browser.
// Open it through `npm run demo` at /bench.html and press Run, or load
// /bench.html?autorun=1[&quick=1&only=...&libs=...&sizes=large&budget=...].
// bench/chrome.ts drives it headless and reads window.__bench.
import { ours, oursDevice } from './ours';
import { oursJit } from './ours-jit';
import { rivals } from './rivals/workloads';
import type { Rival } from './rivals/spec';
import { type BenchOptions, type BenchReport, initLibs, optionsToParams, parseOptions, runBench, selectLibs } from './run';
import { deviceText, resultStem, tables, tableToHtml, toSvg } from './report';

declare global {
  interface Window {
    __bench?: BenchReport;
    __benchStatus?: 'idle' | 'running' | 'done' | 'error';
    __benchError?: string;
    __benchLog?: string[];
  }
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const form = $<HTMLFormElement>('opts');
const statusEl = $('status');
const logEl = $('log');
const tablesEl = $('tables');
const chartEl = $('chart');
const deviceEl = $('device');
const runBtn = $<HTMLButtonElement>('run');
const downloadBtn = $<HTMLButtonElement>('download');

window.__benchStatus = 'idle';
window.__benchLog = [];

function log(line: string): void {
  window.__benchLog!.push(line);
  console.log(line);
  logEl.textContent += `${line}\n`;
  logEl.scrollTop = logEl.scrollHeight;
}

function fillForm(o: BenchOptions): void {
  const el = (n: string) => form.elements.namedItem(n) as HTMLInputElement;
  el('quick').checked = o.quick;
  el('only').value = o.only?.join(',') ?? '';
  el('libs').value = o.libs?.join(',') ?? '';
  el('large').checked = o.sizes === 'large';
  el('budget').value = String(o.budgetMs);
}

function readForm(): BenchOptions {
  const el = (n: string) => form.elements.namedItem(n) as HTMLInputElement;
  const p = new URLSearchParams();
  if (el('quick').checked) p.set('quick', '1');
  if (el('only').value.trim()) p.set('only', el('only').value.trim());
  if (el('libs').value.trim()) p.set('libs', el('libs').value.trim());
  if (el('large').checked) p.set('sizes', 'large');
  const quickDefault = parseOptions(el('quick').checked ? ['--quick'] : []).budgetMs;
  if (el('budget').value && Number(el('budget').value) !== quickDefault) p.set('budget', el('budget').value);
  return parseOptions(p);
}

function render(report: BenchReport): void {
  tablesEl.innerHTML = tables(report).map(tableToHtml).join('');
  chartEl.innerHTML = toSvg(report);
}

// Each library is initialised once per page, however many runs follow.
const inits = new Map<Rival, Promise<string | null>>();
function initOnce(lib: Rival): Promise<string | null> {
  if (!inits.has(lib)) {
    inits.set(
      lib,
      initLibs([lib], log).then((f) => f.get(lib) ?? null),
    );
  }
  return inits.get(lib)!;
}

async function run(o: BenchOptions): Promise<void> {
  runBtn.disabled = true;
  downloadBtn.disabled = true;
  window.__benchStatus = 'running';
  window.__bench = undefined;
  tablesEl.innerHTML = '';
  chartEl.innerHTML = '';
  try {
    if (!('gpu' in navigator))
      throw new Error('navigator.gpu is missing: this browser has no WebGPU (Chrome/Edge 113+, or start Chromium with --enable-unsafe-webgpu)');
    const libs = selectLibs([ours, oursJit, ...rivals], o);
    statusEl.textContent = 'Initialising libraries…';
    const failures = new Map<Rival, string>();
    for (const l of libs) {
      const f = await initOnce(l);
      if (f) failures.set(l, f);
    }
    const d = oursDevice();
    const device = d
      ? { vendor: d.vendor, architecture: d.architecture, description: d.description, isFallback: d.isFallback, backend: d.backend }
      : { vendor: '', architecture: '', description: 'unknown (ours failed to init)', isFallback: false };
    const t0 = performance.now();
    let done = 0;
    const report = await runBench(
      o,
      libs,
      {
        env: 'chrome',
        platform: navigator.userAgent,
        device,
        rivalAdapter: 'the same navigator.gpu adapter (each library has its own GPUDevice)',
        log,
        onRow: (_row, partial) => {
          done++;
          statusEl.textContent = `Running… ${done} of ${partial.cells.length * libs.length} cells, ${((performance.now() - t0) / 1000).toFixed(0)} s`;
          render(partial);
        },
      },
      failures,
    );
    deviceEl.textContent = `Device (ours): ${deviceText(report)}`;
    render(report);
    window.__bench = report;
    window.__benchStatus = 'done';
    statusEl.textContent = `Done in ${report.totalSeconds.toFixed(0)} s: ${report.passed} passed, ${report.failed} failed.`;
    downloadBtn.disabled = false;
    downloadBtn.onclick = () => {
      const a = document.createElement('a');
      a.href = URL.createObjectURL(new Blob([JSON.stringify(report, null, 2)], { type: 'application/json' }));
      a.download = `${resultStem(report)}.json`;
      a.click();
    };
  } catch (e) {
    window.__benchError = (e as Error).stack ?? String(e);
    window.__benchStatus = 'error';
    statusEl.textContent = `Error: ${(e as Error).message}`;
    log(`ERROR ${window.__benchError}`);
  } finally {
    runBtn.disabled = false;
  }
}

const params = new URLSearchParams(location.search);
let initial: BenchOptions;
try {
  initial = parseOptions(params);
} catch (e) {
  statusEl.textContent = `Bad URL options: ${(e as Error).message}`;
  initial = parseOptions([]);
}
fillForm(initial);

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  let o: BenchOptions;
  try {
    o = readForm();
  } catch (e) {
    statusEl.textContent = `Bad options: ${(e as Error).message}`;
    return;
  }
  history.replaceState(null, '', `?${optionsToParams(o)}`);
  void run(o);
});

// Show the adapter before any run.
void (async () => {
  try {
    await initOnce(ours);
    const d = oursDevice();
    if (d)
      deviceEl.textContent = `Device (ours): ${[d.vendor, d.architecture, d.description].filter(Boolean).join(' / ')}${d.isFallback ? ' (software fallback)' : ''}`;
  } catch {
    /* reported by run() */
  }
  if (params.get('autorun') === '1') void run(initial);
})();
