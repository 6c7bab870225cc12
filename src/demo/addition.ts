// Section 5: the small transformer of src/models/transformer.ts learns
// two-digit addition live; a box takes prompts ("47+38") and the model
// answers them, greedy or sampled with random.categorical.

import uPlot from 'uplot';
import { NDArray, random } from '../index';
import { ADDITION_VOCAB, additionSplit, additionTrainer, solveAddition, type TransformerParams } from '../models/transformer';
import type { MinibatchTrainer } from '../models/training';
import { $, demo, fmt, h, nextFrame, showError } from './page';

const CONFIG = { vocab: ADDITION_VOCAB, context: 8, dim: 32, heads: 4, layers: 2 };
const EVAL_EVERY = 250;
const READ_EVERY = 25;
const heldOut = additionSplit().test;
const isHeldOut = new Set(heldOut.map(([a, b]) => 100 * a + b));

let trainer: MinibatchTrainer<TransformerParams>;
let maxSteps = Infinity;
let loop: Promise<void> = Promise.resolve();
let gpu: Promise<unknown> = Promise.resolve();
let chart: uPlot;
const lossXY: [number[], number[]] = [[], []];
let sampleKey = random.key(7);
const a = () => demo.addition;

function exclusive<T>(f: () => Promise<T>): Promise<T> {
  const next = gpu.then(f);
  gpu = next.catch(() => undefined);
  return next;
}

/** Exact match on the 1,000 held-out problems (greedy). */
async function evaluate(): Promise<void> {
  const got = await solveAddition(trainer.params, heldOut, CONFIG.heads);
  const exact = got.filter((v, i) => v === heldOut[i]![0] + heldOut[i]![1]).length / heldOut.length;
  a().exact.push(exact);
  $('add-exact').textContent = `${(100 * exact).toFixed(1)}%`;
}

function setRunning(on: boolean): void {
  a().running = on;
  $('add-start').textContent = on ? 'Pause' : a().steps > 0 ? 'Resume' : 'Start';
  $('add-status').textContent = on ? 'training…' : a().done ? `done (${a().steps} steps)` : a().steps > 0 ? 'paused' : 'idle';
}

async function trainLoop(): Promise<void> {
  let rate = { t: performance.now(), steps: a().steps };
  while (a().running) {
    const loss = await exclusive(async () => {
      const t0 = performance.now();
      const read = () => trainer.steps % READ_EVERY === 0 || trainer.steps === 1 || trainer.steps >= maxSteps; // the first, then one in READ_EVERY
      let last: NDArray;
      do {
        last = trainer.step();
        if (!read()) last.dispose();
      } while (!read() && performance.now() - t0 < 30);
      if (!read()) return null;
      const v = await last.item();
      last.dispose();
      return v;
    });
    a().steps = trainer.steps;
    if (loss !== null) {
      a().losses.push(loss);
      lossXY[0].push(a().steps);
      lossXY[1].push(loss);
      chart.setData(lossXY);
      $('add-loss').textContent = fmt(loss, 4);
    }
    const finished = a().steps >= maxSteps;
    if (a().steps % EVAL_EVERY === 0 || finished) await exclusive(evaluate);
    $('add-step').textContent = String(a().steps);
    const now = performance.now();
    if (now - rate.t > 1000) {
      $('add-sps').textContent = ((a().steps - rate.steps) / ((now - rate.t) / 1000)).toFixed(1);
      rate = { t: now, steps: a().steps };
    }
    if (finished) {
      a().done = true;
      maxSteps = Infinity;
      setRunning(false);
    }
    await nextFrame();
  }
}

function start(): void {
  if (a().running) return;
  a().done = false;
  setRunning(true);
  loop = trainLoop().catch((e) => {
    setRunning(false);
    showError(e);
  });
}

/** "47+38", "47 + 38 =" and the like: two numbers below 100. */
function parse(text: string): [number, number] | null {
  const m = text.match(/^\s*(\d{1,2})\s*\+\s*(\d{1,2})\s*=?\s*$/);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

async function ask(): Promise<void> {
  const input = $<HTMLInputElement>('add-prompt');
  const problem = parse(input.value);
  if (!problem) {
    $('add-hint').textContent = 'Type two numbers below 100 with a plus sign, e.g. 47+38.';
    return;
  }
  $('add-hint').textContent = '';
  const temperature = Number($<HTMLSelectElement>('add-temp').value);
  const [k, next] = random.split(sampleKey);
  sampleKey = next!;
  const [sum] = await exclusive(() => solveAddition(trainer.params, [problem], CONFIG.heads, temperature > 0 ? { key: k!, temperature } : undefined));
  k!.dispose();
  const [x, y] = problem;
  const right = sum === x + y;
  const prompt = `${x}+${y}=`;
  const answer = String(sum);
  a().answers.push({ prompt, answer });
  const where = isHeldOut.has(100 * x + y) ? 'held out: never trained on' : 'in the training set';
  $('add-answers').prepend(
    h(
      'li',
      { class: right ? 'ok' : 'bad' },
      h('code', {}, `${prompt}${answer}`),
      ` ${right ? '✓' : `✗ (${x + y})`} · step ${a().steps} · ${temperature > 0 ? `sampled at T = ${temperature}` : 'greedy'} · ${where}`,
    ),
  );
}

/** `?addition=N` trains N steps at once. */
export function setupAddition(query: URLSearchParams): void {
  trainer = additionTrainer({ config: CONFIG, batch: 64, learningRate: 3e-3, key: random.key(0) });
  const el = $('add-chart');
  const size = () => ({ width: Math.max(280, el.clientWidth), height: 220 });
  chart = new uPlot(
    {
      ...size(),
      axes: [
        { stroke: '#555', grid: { stroke: '#eee' } },
        { stroke: '#555', grid: { stroke: '#eee' } },
      ],
      legend: { live: false },
      cursor: { show: false },
      scales: { x: { time: false }, y: { distr: 3 } },
      series: [{ label: 'step' }, { label: 'cross-entropy on the answer digits', stroke: '#1c7ed6', width: 2, points: { show: false } }],
    },
    lossXY,
    el,
  );
  new ResizeObserver(() => requestAnimationFrame(() => chart.setSize(size()))).observe(el); // next frame, as in mnist.ts
  $('add-start').addEventListener('click', async () => {
    if (!a().running) return start();
    setRunning(false);
    await loop;
  });
  const submit = () => void ask().catch(showError);
  $('add-ask').addEventListener('click', submit);
  $('add-prompt').addEventListener('keydown', (e) => e.key === 'Enter' && submit());
  for (const id of ['add-start', 'add-ask']) $<HTMLButtonElement>(id).disabled = false;
  setRunning(false);
  const n = Number(query.get('addition'));
  if (Number.isInteger(n) && n > 0) {
    maxSteps = n;
    start();
  }
}
