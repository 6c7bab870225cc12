// Shared page state (also exposed as window.__demo for the e2e test) and small DOM helpers.

export interface DemoState {
  state: 'loading' | 'ready' | 'no-webgpu' | 'error';
  adapter: { vendor: string; architecture: string; description: string; isFallback: boolean } | null;
  /** What the GPU returned for the two worked examples. */
  examples: number[][];
  /** Linear model (flat params): loss per gradient-descent step. */
  linear: { losses: number[]; params: number[] };
  /** MLP: loss per step (since the last reset), steps taken, and whether the loop runs. */
  losses: number[];
  steps: number;
  running: boolean;
  /** Live GPU buffers (library memoryStats), sampled while training: flat when nothing leaks. */
  gpuBuffers: number;
  /** True once a bounded run (?steps=N) has taken its N steps. */
  done: boolean;
  error: string | null;
  cspViolations: string[];
  /** MNIST: the model, steps, per-step losses, held-out accuracy per evaluation, the grid's guesses, the drawn digit's probabilities. */
  mnist: {
    model: string;
    steps: number;
    epoch: number;
    losses: number[];
    accuracy: number[];
    predicted: number[];
    labels: number[];
    mistakes: number;
    probabilities: number[];
    running: boolean;
    done: boolean;
    gpuBuffers: number;
  };
  /** The transformer: steps, losses (one per read), held-out exact match per evaluation, the prompts answered. */
  addition: { steps: number; losses: number[]; exact: number[]; answers: Array<{ prompt: string; answer: string }>; running: boolean; done: boolean };
}

declare global {
  interface Window {
    __demo: DemoState;
  }
}

export const demo: DemoState = (window.__demo = {
  state: 'loading',
  adapter: null,
  examples: [],
  linear: { losses: [], params: [] },
  losses: [],
  steps: 0,
  running: false,
  gpuBuffers: 0,
  done: false,
  error: null,
  cspViolations: [],
  mnist: {
    model: 'mlp',
    steps: 0,
    epoch: 0,
    losses: [],
    accuracy: [],
    predicted: [],
    labels: [],
    mistakes: 0,
    probabilities: [],
    running: false,
    done: false,
    gpuBuffers: 0,
  },
  addition: { steps: 0, losses: [], exact: [], answers: [], running: false, done: false },
});

export const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`demo page: #${id} is missing from index.html`);
  return el as T;
};

/** Create an element with text or child nodes. */
export function h(tag: string, attrs: Record<string, string> = {}, ...kids: (Node | string)[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  el.append(...kids);
  return el;
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' };
export const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ENTITIES[c]!);

export function showBanner(kind: 'warn' | 'error', html: string): void {
  const b = $('banner');
  b.className = `banner ${kind}`;
  b.innerHTML = html;
  b.hidden = false;
}

export function showError(err: unknown): void {
  const e = err instanceof Error ? err : new Error(String(err));
  console.error(e);
  if (demo.state === 'no-webgpu') return;
  demo.state = 'error';
  demo.error = `${e.name}: ${e.message}`;
  demo.running = false;
  showBanner(
    'error',
    `<h2>Something went wrong</h2><p><b>${esc(e.name)}</b>: ${esc(e.message)}</p>` +
      (e.stack ? `<details><summary>details for developers</summary><pre>${esc(e.stack)}</pre></details>` : '') +
      '<p>Reload the page to try again.</p>',
  );
}

const HOW_TO = `
  <p>Use a browser with WebGPU: <b>Chrome or Edge 113+</b> on Windows, macOS or ChromeOS, recent Safari or
  Firefox with WebGPU enabled. On <b>Linux</b>, Chrome needs it switched on: open <code>chrome://flags</code>,
  enable <i>Unsafe WebGPU Support</i> (and <i>Vulkan</i>), relaunch — or start it with
  <code>--enable-unsafe-webgpu --enable-features=Vulkan</code>.</p>
  <p>WebGPU only exists on secure pages: open this page over <code>https://</code> or from
  <code>localhost</code> / <code>127.0.0.1</code>. You can check your browser at <code>chrome://gpu</code>.</p>`;

export function noWebGpu(why: string): void {
  demo.state = 'no-webgpu';
  document.getElementById('adapter')!.textContent = 'No WebGPU adapter.';
  document.getElementById('content')!.hidden = true;
  showBanner('warn', `<h2>WebGPU is not available here</h2><p>${why}</p>${HOW_TO}`);
}

/** Format a number for tables: fixed for moderate values, exponent otherwise. */
export function fmt(v: number, digits = 4): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(2) : v.toFixed(digits);
}

export const nextFrame = () => new Promise<void>((r) => requestAnimationFrame(() => r()));
