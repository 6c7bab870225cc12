// Section 3: an MLP over a pytree, trained live with valueAndGrad + Adam/SGD.

import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { NDArray, adam, leaves, leavesWithPath, memoryStats, sgd, structure, type GradientTransformation } from '../index';
import { curveData, initMlp, trainStep, type Mlp } from './models';
import { $, demo, fmt, h, nextFrame, showError } from './page';

const DEFAULT_LR = { adam: 0.02, sgd: 0.03 } as const; // SGD at 0.1 diverges from width 64 up
type OptName = keyof typeof DEFAULT_LR;

const data = curveData(256);
let lr: number = DEFAULT_LR.adam;
let params: Mlp;
let optState: unknown[];
let opt: GradientTransformation<unknown[]>;
let resets = 0;
let stepsAxis: number[] = [];
let lossPlot: (number | null)[] = []; // demo.losses for the chart, diverged values as gaps
let maxSteps = Infinity;
let loop: Promise<void> = Promise.resolve();
let lastFit = 0;
let rate = { t: 0, steps: 0 };
let lossChart: uPlot;
let fitChart: uPlot;
const fitY: (number | null)[] = Array.from(data.xs, () => null);

const disposeTree = (t: unknown) => leaves(t).forEach((l) => l instanceof NDArray && l.dispose());
const optimizer = (name: OptName) => (name === 'adam' ? adam : sgd)(() => lr); // a schedule: lr can change live

function rebuild(): void {
  if (params) disposeTree([params, optState]);
  const width = Number($<HTMLSelectElement>('sel-width').value);
  opt = optimizer($<HTMLSelectElement>('sel-opt').value as OptName);
  params = initMlp(width, 11 + 10 * resets++);
  optState = opt.init(params);
  demo.losses = [];
  stepsAxis = [];
  lossPlot = [];
  demo.steps = 0;
  demo.done = false;
  fitY.fill(null);
  lossChart.setData([stepsAxis, lossPlot]);
  fitChart.setData([data.xs, data.ys, data.xs.map(Math.sin), fitY] as uPlot.AlignedData);
  $('st-step').textContent = '0';
  $('st-loss').textContent = '–';
  $('st-sps').textContent = '–';
  $('trees-body').textContent = 'Start training to see the trees.';
}

/** Read the params and grads trees (before update() and applyUpdates() consume them) and show them side by side. */
async function showTrees(p: Mlp, g: Mlp): Promise<void> {
  const sp = structure(p).toString();
  const sg = structure(g).toString();
  const gl = new Map(leavesWithPath(g));
  const rows: HTMLElement[] = [];
  for (const [path, leaf] of leavesWithPath(p)) {
    const pv = await (leaf as NDArray).data('float32');
    const gv = await (gl.get(path) as NDArray).data('float32');
    const few = (v: Float32Array) => `[${Array.from(v.subarray(0, 4), (x) => fmt(x, 3)).join(', ')}${v.length > 4 ? ', …' : ''}]`;
    rows.push(
      h(
        'tr',
        {},
        h('td', {}, h('code', {}, path)),
        h('td', {}, `[${(leaf as NDArray).shape.join(', ')}]`),
        h('td', {}, few(pv)),
        h('td', {}, `[${(gl.get(path) as NDArray).shape.join(', ')}]`),
        h('td', {}, few(gv)),
      ),
    );
  }
  $('trees-body').className = '';
  $('trees-body').replaceChildren(
    h(
      'p',
      {},
      `At step ${demo.steps}. `,
      h('code', {}, `structure(params) = ${sp}`),
      h('br'),
      h('code', {}, `structure(grads)  = ${sg}`),
      ' ',
      h('span', { class: sp === sg ? 'ok' : 'bad' }, sp === sg ? '✓ same' : '✗ different'),
    ),
    h(
      'table',
      { class: 'num trees' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', {}, 'leaf path'),
          h('th', {}, 'params shape'),
          h('th', {}, 'params values'),
          h('th', {}, 'grads shape'),
          h('th', {}, 'grads values'),
        ),
      ),
      h('tbody', {}, ...rows),
    ),
  );
}

function setRunning(on: boolean): void {
  demo.running = on;
  const b = $<HTMLButtonElement>('btn-start');
  b.textContent = on ? 'Pause' : demo.done ? 'Continue' : demo.steps > 0 ? 'Resume' : 'Start';
  $('st-status').textContent = on ? 'training…' : demo.done ? `done (${demo.steps} steps)` : demo.steps > 0 ? 'paused' : 'idle';
}

async function trainLoop(): Promise<void> {
  rate = { t: performance.now(), steps: demo.steps };
  while (demo.running) {
    const frameStart = performance.now();
    let fit: Float32Array | null = null;
    // Several steps per animation frame when they are fast, at least one.
    do {
      const inspect = demo.steps % ($<HTMLDetailsElement>('trees').open ? 10 : 50) === 0 ? showTrees : undefined;
      const r = await trainStep(opt, params, optState, data.x, data.y, inspect);
      params = r.params;
      optState = r.state;
      const loss = await r.loss.item(); // one readback; the step ran as one submission
      if (performance.now() - lastFit > 150) {
        fit = await r.pred.data('float32');
        lastFit = performance.now();
      }
      r.pred.dispose(); // unread predictions: give the buffer back (after the read above)
      r.loss.dispose();
      stepsAxis.push(demo.steps++);
      demo.losses.push(loss);
      lossPlot.push(loss > 0 && loss < 1e6 ? loss : null); // keep the log axis sane when training diverges
      if (!Number.isFinite(loss)) {
        setRunning(false);
        $('st-status').textContent = 'diverged: lower the learning rate, Reset';
      } else if (demo.steps >= maxSteps) {
        demo.done = true;
        maxSteps = Infinity;
        setRunning(false);
      }
    } while (demo.running && performance.now() - frameStart < 30);
    draw(fit);
    await nextFrame();
  }
}

function draw(fit: Float32Array | null): void {
  lossChart.setData([stepsAxis, lossPlot]);
  if (fit) {
    for (let i = 0; i < fit.length; i++) fitY[i] = fit[i]!;
    fitChart.setData([data.xs, data.ys, data.xs.map(Math.sin), fitY] as uPlot.AlignedData);
  }
  $('st-step').textContent = String(demo.steps);
  $('st-loss').textContent = demo.losses.length ? fmt(demo.losses.at(-1)!, 5) : '–';
  const m = memoryStats();
  demo.gpuBuffers = m.liveBuffers;
  $('st-mem').textContent = `${m.liveBuffers} · ${(m.liveBytes / 1024).toFixed(0)} KiB`;
  const now = performance.now();
  if (now - rate.t > 500) {
    $('st-sps').textContent = ((demo.steps - rate.steps) / ((now - rate.t) / 1000)).toFixed(1);
    rate = { t: now, steps: demo.steps };
  }
}

function start(): void {
  if (demo.running) return;
  demo.done = false;
  setRunning(true);
  loop = trainLoop().catch((e) => {
    setRunning(false);
    showError(e);
  });
}

async function stop(): Promise<void> {
  setRunning(false);
  await loop;
}

async function reset(): Promise<void> {
  const was = demo.running;
  await stop();
  rebuild();
  setRunning(false);
  if (was) start();
}

function charts(): void {
  const size = (el: HTMLElement) => ({ width: Math.max(280, el.clientWidth), height: 260 });
  const fitEl = $('chart-fit');
  const lossEl = $('chart-loss');
  const grid = { stroke: '#eee' };
  const axes: uPlot.Axis[] = [
    { stroke: '#555', grid },
    { stroke: '#555', grid },
  ];
  // Log axis: labels and grid lines at powers of ten, at most ~6 of them.
  const decades = (_: uPlot, _i: number, min: number, max: number) => {
    const [lo, hi] = [Math.floor(Math.log10(min)), Math.ceil(Math.log10(max))];
    const stride = Math.max(1, Math.ceil((hi - lo) / 6));
    const out: number[] = [];
    for (let k = lo; k <= hi; k += stride) if (10 ** k >= min * 0.999 && 10 ** k <= max * 1.001) out.push(10 ** k);
    return out;
  };
  const logLabel = (_: uPlot, splits: number[]) =>
    splits.map((v) => (v == null ? '' : v >= 1e4 || v < 1e-3 ? v.toExponential(0) : String(+v.toPrecision(1))));
  const logAxes: uPlot.Axis[] = [axes[0]!, { stroke: '#555', grid, splits: decades, filter: (_, v) => v, values: logLabel }];
  fitChart = new uPlot(
    {
      ...size(fitEl),
      axes,
      legend: { live: false },
      cursor: { show: false },
      scales: { x: { time: false }, y: { range: [-1.6, 1.6] } },
      series: [
        { label: 'x' },
        { label: 'data', stroke: '#9aa5b1', paths: () => null, points: { show: true, size: 4, fill: '#9aa5b1', stroke: '#9aa5b1' } },
        { label: 'sin(x)', stroke: '#c9ced6', dash: [4, 4], width: 1.5, points: { show: false } },
        { label: 'MLP fit', stroke: '#e8590c', width: 2.5, points: { show: false } },
      ],
    },
    [data.xs, data.ys, data.xs.map(Math.sin), fitY] as uPlot.AlignedData,
    fitEl,
  );
  lossChart = new uPlot(
    {
      ...size(lossEl),
      axes: logAxes,
      legend: { live: false },
      cursor: { show: false },
      scales: { x: { time: false }, y: { distr: 3 } },
      series: [{ label: 'step' }, { label: 'MSE', stroke: '#1c7ed6', width: 2, points: { show: false } }],
    },
    [[], []],
    lossEl,
  );
  new ResizeObserver(() => {
    fitChart.setSize(size(fitEl));
    lossChart.setSize(size(lossEl));
  }).observe(fitEl);
}

export function setupMlp(query: URLSearchParams): { autostart: boolean } {
  const optSel = $<HTMLSelectElement>('sel-opt');
  const widthSel = $<HTMLSelectElement>('sel-width');
  const lrIn = $<HTMLInputElement>('rng-lr');
  const setLr = (v: number) => {
    lr = v;
    lrIn.value = String(Math.log10(v));
    $('out-lr').textContent = String(+v.toPrecision(2));
  };
  if (query.get('opt') === 'sgd' || query.get('opt') === 'adam') optSel.value = query.get('opt')!;
  if (Array.from(widthSel.options).some((o) => o.value === query.get('width'))) widthSel.value = query.get('width')!;
  const qlr = Number(query.get('lr'));
  setLr(qlr > 0 && qlr < 10 ? qlr : DEFAULT_LR[optSel.value as OptName]);
  const n = Number(query.get('steps'));
  if (Number.isInteger(n) && n > 0) maxSteps = n;

  charts();
  rebuild();
  $('btn-start').addEventListener('click', () => (demo.running ? void stop() : start()));
  $('btn-reset').addEventListener('click', () => void reset());
  optSel.addEventListener('change', () => {
    setLr(DEFAULT_LR[optSel.value as OptName]);
    void reset();
  });
  widthSel.addEventListener('change', () => void reset());
  lrIn.addEventListener('input', () => setLr(10 ** Number(lrIn.value)));
  return { autostart: query.get('autostart') === '1' };
}

export function enableMlp(autostart: boolean): void {
  for (const id of ['btn-start', 'btn-reset']) $<HTMLButtonElement>(id).disabled = false;
  if (autostart) start();
}
