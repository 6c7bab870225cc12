// Section 4: MNIST trained live (the MLP or the CNN of src/models/classifier.ts),
// with loss and held-out accuracy curves, a grid of held-out digits with the
// model's guesses, and a pad to draw a digit on and see the class probabilities.

import uPlot from 'uplot';
import { NDArray, array, argmax, memoryStats, random, nn } from '../index';
import { accuracy, classifierLoss, cnnLogits, initCnn, initMlp, mlpLogits } from '../models/classifier';
import { MinibatchTrainer } from '../models/training';
import { DrawPad, loadDigits, paintDigit, type Digits } from './digits';
import { $, demo, fmt, h, nextFrame, showError } from './page';

const GRID = 40; // held-out digits shown
const MODELS = {
  mlp: { init: () => initMlp(random.key(0)), logits: mlpLogits, evalEvery: 20 },
  cnn: { init: () => initCnn(random.key(0)), logits: cnnLogits, evalEvery: 31 },
} as const;
type ModelName = keyof typeof MODELS;

let data: Digits;
let train: NDArray[];
let xTest: NDArray;
let yTest: NDArray;
let trainer: MinibatchTrainer<unknown>;
let model: (typeof MODELS)[ModelName];
let maxSteps = Infinity;
let loop: Promise<void> = Promise.resolve();
let gpu: Promise<unknown> = Promise.resolve(); // one GPU job at a time: a step, an evaluation or a drawn digit
let pad: DrawPad;
let lossChart: uPlot;
let accChart: uPlot;
const lossXY: [number[], number[]] = [[], []];
const accXY: [number[], number[]] = [[], []];
let rate = { t: 0, steps: 0 };

/** Run f after every earlier GPU job of this section (training steps are donated: nothing may read them mid-step). */
function exclusive<T>(f: () => Promise<T>): Promise<T> {
  const next = gpu.then(f);
  gpu = next.catch(() => undefined);
  return next;
}

const m = () => demo.mnist;

function rebuild(): void {
  const name = $<HTMLSelectElement>('mnist-model').value as ModelName;
  model = MODELS[name];
  trainer?.dispose();
  trainer = new MinibatchTrainer<unknown>({
    init: model.init(),
    loss: classifierLoss(model.logits as (p: unknown, x: NDArray) => NDArray),
    data: train,
    batch: 128,
    learningRate: 3e-3,
    key: random.key(1),
  });
  Object.assign(m(), { model: name, steps: 0, epoch: 0, losses: [], accuracy: [], done: false, predicted: [], mistakes: 0, probabilities: [] });
  lossXY[0].length = lossXY[1].length = accXY[0].length = accXY[1].length = 0;
  lossChart.setData(lossXY);
  accChart.setData(accXY);
  for (const id of ['mnist-step', 'mnist-epoch', 'mnist-loss', 'mnist-acc', 'mnist-sps']) $(id).textContent = '–';
}

/** Held-out accuracy and the grid's guesses, one read each. */
async function evaluate(): Promise<void> {
  const logits = model.logits(trainer.params as never, xTest);
  const acc = accuracy(logits, yTest);
  const guess = argmax(logits, -1);
  const [a, g] = await Promise.all([acc.item(), guess.data('int32')]);
  acc.dispose();
  guess.dispose();
  m().accuracy.push(a);
  accXY[0].push(m().steps);
  accXY[1].push(100 * a);
  accChart.setData(accXY);
  $('mnist-acc').textContent = `${(100 * a).toFixed(2)}%`;
  m().predicted = Array.from(g.subarray(0, GRID));
  const cells = $('mnist-grid').children;
  m().predicted.forEach((p, i) => {
    const cell = cells[i] as HTMLElement;
    const wrong = p !== data.testY[i];
    cell.classList.toggle('wrong', wrong);
    cell.querySelector('span')!.textContent = wrong ? `${p} (is ${data.testY[i]})` : String(p);
  });
  m().mistakes = $('mnist-grid').querySelectorAll('.wrong').length;
  if (pad.inked) await predictDrawn();
}

/** Class probabilities of the drawn digit under the current params. */
async function predictDrawn(): Promise<void> {
  const px = pad.pixels();
  const bars = $('mnist-probs');
  if (!px) {
    m().probabilities = [];
    bars.querySelectorAll('i').forEach((b) => (b.style.width = '0'));
    return;
  }
  const probs = nn.softmax(model.logits(trainer.params as never, array(px, [1, 784])));
  const p = await probs.data('float32');
  probs.dispose();
  m().probabilities = Array.from(p);
  const best = p.indexOf(Math.max(...p));
  Array.from(bars.children).forEach((row, k) => {
    (row.querySelector('i') as HTMLElement).style.width = `${(100 * p[k]!).toFixed(1)}%`;
    row.classList.toggle('best', k === best);
    row.querySelector('b')!.textContent = `${(100 * p[k]!).toFixed(1)}%`;
  });
}

function setRunning(on: boolean): void {
  m().running = on;
  $('mnist-start').textContent = on ? 'Pause' : m().steps > 0 ? 'Resume' : 'Start';
  $('mnist-status').textContent = on ? 'training…' : m().done ? `done (${m().steps} steps)` : m().steps > 0 ? 'paused' : 'idle';
}

async function trainLoop(): Promise<void> {
  rate = { t: performance.now(), steps: m().steps };
  while (m().running) {
    // A few steps, then one read of their losses: reading every step would wait for the GPU each time.
    const losses = await exclusive(async () => {
      const ls: NDArray[] = [];
      const t0 = performance.now();
      do ls.push(trainer.step());
      while (ls.length < 8 && performance.now() - t0 < 30 && trainer.steps % model.evalEvery !== 0 && trainer.steps < maxSteps);
      const v = await Promise.all(ls.map((l) => l.item()));
      ls.forEach((l) => l.dispose());
      return v;
    });
    for (const l of losses) {
      m().losses.push(l);
      lossXY[0].push(lossXY[0].length);
      lossXY[1].push(l);
    }
    m().steps = trainer.steps;
    m().epoch = trainer.epochs;
    const finished = m().steps >= maxSteps;
    if (m().steps % model.evalEvery === 0 || finished) await exclusive(evaluate);
    draw();
    if (finished) {
      m().done = true;
      maxSteps = Infinity;
      setRunning(false);
    }
    await nextFrame();
  }
}

function draw(): void {
  lossChart.setData(lossXY);
  $('mnist-step').textContent = String(m().steps);
  $('mnist-epoch').textContent = `${m().epoch} (+${m().steps % trainer.stepsPerEpoch}/${trainer.stepsPerEpoch})`;
  $('mnist-loss').textContent = fmt(m().losses.at(-1)!, 4);
  const mem = memoryStats();
  m().gpuBuffers = mem.liveBuffers;
  $('mnist-mem').textContent = `${mem.liveBuffers} · ${(mem.liveBytes / 2 ** 20).toFixed(1)} MiB`;
  const now = performance.now();
  if (now - rate.t > 1000) {
    $('mnist-sps').textContent = ((m().steps - rate.steps) / ((now - rate.t) / 1000)).toFixed(1);
    rate = { t: now, steps: m().steps };
  }
}

function start(): void {
  if (m().running) return;
  m().done = false;
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

function charts(): void {
  const size = (el: HTMLElement) => ({ width: Math.max(280, el.clientWidth), height: 220 });
  const grid = { stroke: '#eee' };
  const axes: uPlot.Axis[] = [
    { stroke: '#555', grid },
    { stroke: '#555', grid },
  ];
  const common = { axes, legend: { live: false }, cursor: { show: false } };
  const lossEl = $('mnist-chart-loss');
  const accEl = $('mnist-chart-acc');
  lossChart = new uPlot(
    {
      ...size(lossEl),
      ...common,
      scales: { x: { time: false } },
      series: [{ label: 'step' }, { label: 'cross-entropy', stroke: '#1c7ed6', width: 1.5, points: { show: false } }],
    },
    lossXY,
    lossEl,
  );
  accChart = new uPlot(
    {
      ...size(accEl),
      ...common,
      scales: { x: { time: false }, y: { range: [0, 100] } },
      series: [{ label: 'step' }, { label: 'held-out accuracy %', stroke: '#1a7f37', width: 2, points: { show: true, size: 5 } }],
    },
    accXY,
    accEl,
  );
  // Resize on the next frame: resizing inside the observer's callback re-triggers it (a console error).
  new ResizeObserver(() =>
    requestAnimationFrame(() => {
      lossChart.setSize(size(lossEl));
      accChart.setSize(size(accEl));
    }),
  ).observe(lossEl);
}

/** Load the digits, build the page's pieces; `?mnist=N` trains N steps at once (`&mnistModel=cnn` for the CNN). */
export async function setupMnist(query: URLSearchParams): Promise<void> {
  $('mnist-status').textContent = 'loading the digits…';
  data = await loadDigits();
  train = [array(data.trainX, [data.trainY.length, 784]), array(data.trainY)];
  xTest = array(data.testX, [data.testY.length, 784]);
  yTest = array(data.testY);
  m().labels = Array.from(data.testY.subarray(0, GRID));
  const grid = $('mnist-grid');
  for (let i = 0; i < GRID; i++) {
    const c = h('canvas', { width: '28', height: '28' }) as HTMLCanvasElement;
    paintDigit(c, data.testX.subarray(784 * i, 784 * (i + 1)));
    grid.append(h('figure', {}, c, h('span', {}, '?')));
  }
  $('mnist-probs').append(...Array.from({ length: 10 }, (_, k) => h('div', {}, h('span', {}, String(k)), h('i'), h('b', {}, ''))));
  pad = new DrawPad($<HTMLCanvasElement>('mnist-pad'), () => void exclusive(predictDrawn).catch(showError));
  $('mnist-clear').addEventListener('click', () => {
    pad.clear();
    void exclusive(predictDrawn).catch(showError);
  });
  const sel = $<HTMLSelectElement>('mnist-model');
  if (query.get('mnistModel') === 'cnn') sel.value = 'cnn';
  charts();
  rebuild();
  sel.addEventListener('change', async () => {
    const was = m().running;
    await stop();
    await gpu;
    rebuild();
    setRunning(false);
    if (was) start();
  });
  $('mnist-start').addEventListener('click', () => (m().running ? void stop() : start()));
  $<HTMLButtonElement>('mnist-start').disabled = false;
  setRunning(false);
  const n = Number(query.get('mnist'));
  if (Number.isInteger(n) && n > 0) {
    maxSteps = n;
    start();
  }
}
