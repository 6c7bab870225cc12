// The benchmark harness, shared by Node (bench/node.ts) and the browser page
// (bench.html -> bench/browser.ts). Browser-safe: no Node imports.
//
// Every library implements the `Rival` interface (bench/rivals/spec.ts; ours
// is bench/ours.ts). For each workload cell and library the harness
//   1. prepares the workload (inputs uploaded once, not timed),
//   2. runs it once and verifies the answer against a float64 reference
//      (a failure is recorded in the row, never thrown),
//   3. warms up, then times calls (wall clock: compute + readback) until
//      about `budgetMs` has passed or `maxReps` calls were made,
//   4. verifies the last timed answer again and samples the library's live
//      buffer/tensor count before and after the timed calls.

import { matmul64, refCnnLosses, refMatmul, refMatmulVjp, refMlpLosses, refSeed, refTinyChain, verify, VerifyError } from './rivals/reference';
import { refTransformerLosses } from './rivals/reference-transformer';
import {
  classifierInputs,
  cnnInputs,
  matmulInputs,
  mlpInputs,
  type Rival,
  type Runner,
  seedInputs,
  tinyChainInput,
  transformerInputs,
  uniform,
} from './rivals/spec';

export type Group = 'seed' | 'matmul' | 'mlp' | 'models' | 'loop' | 'overhead';
export const GROUPS: readonly Group[] = ['seed', 'matmul', 'mlp', 'models', 'loop', 'overhead'];

export interface BenchOptions {
  /** Tiny sizes, ours + plain-js only (CI smoke). */
  quick: boolean;
  /** Workload groups to run (null: all). */
  only: Group[] | null;
  /** Library filter: names or slugs, prefix match on slugs (null: all, or ours + plain-js with quick). */
  libs: string[] | null;
  /** 'large' adds 2048/4096 matmuls (for real GPUs). */
  sizes: 'default' | 'large';
  /** Stop timing a cell after about this many ms (at least minReps calls). */
  budgetMs: number;
  maxReps: number;
  minReps: number;
  /** Untimed calls after the verified first call (fewer when a call is slow). */
  warmup: number;
  /** Timed MLP steps (after 5 verified and 5 warm-up steps). */
  mlpSteps: number;
  /** A single call taking longer than this is an error (ms). */
  callTimeoutMs: number;
  /**
   * Skip a seed/matmul cell for a library when its calls would take longer than
   * this (ms), estimated from the same library's smaller/simpler cells
   * measured earlier in the run (keeps a CPU-fallback run bounded; no effect on a GPU).
   */
  maxCallMs: number;
}

export const DEFAULT_OPTIONS: BenchOptions = {
  quick: false,
  only: null,
  libs: null,
  sizes: 'default',
  budgetMs: 2000,
  maxReps: 20,
  minReps: 3,
  warmup: 2,
  mlpSteps: 100,
  callTimeoutMs: 180_000,
  maxCallMs: 10_000,
};

/**
 * Options from command-line flags (`--quick --only=seed,matmul --libs=ours,tfjs
 * --sizes=large --budget=2000 --reps=20 --mlp-steps=100`) or URL parameters
 * (`?quick=1&only=seed,matmul&libs=...&sizes=large`).
 */
export function parseOptions(input: readonly string[] | URLSearchParams): BenchOptions {
  const kv = new Map<string, string>();
  if (input instanceof URLSearchParams) {
    for (const [k, v] of input) kv.set(k, v);
  } else {
    for (const a of input) {
      const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
      if (m) kv.set(m[1]!, m[2] ?? '1');
    }
  }
  const flag = (k: string) => kv.has(k) && !['0', 'false', 'no'].includes(kv.get(k)!.toLowerCase());
  const list = (k: string) => {
    const v = kv.get(k);
    return v
      ? v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : null;
  };
  const num = (k: string, d: number) => {
    const v = Number(kv.get(k));
    return kv.has(k) && Number.isFinite(v) && v > 0 ? v : d;
  };
  const only = list('only');
  if (only) {
    const bad = only.filter((g) => !(GROUPS as readonly string[]).includes(g));
    if (bad.length) throw new Error(`--only: unknown group(s) ${bad.join(', ')}; use ${GROUPS.join(', ')}`);
  }
  const quick = flag('quick');
  return {
    quick,
    only: only as Group[] | null,
    libs: list('libs'),
    sizes: kv.get('sizes') === 'large' ? 'large' : 'default',
    budgetMs: num('budget', quick ? 300 : DEFAULT_OPTIONS.budgetMs),
    maxReps: num('reps', quick ? 5 : DEFAULT_OPTIONS.maxReps),
    minReps: num('min-reps', quick ? 2 : DEFAULT_OPTIONS.minReps),
    warmup: num('warmup', quick ? 1 : DEFAULT_OPTIONS.warmup),
    mlpSteps: num('mlp-steps', quick ? 10 : DEFAULT_OPTIONS.mlpSteps),
    callTimeoutMs: num('call-timeout', DEFAULT_OPTIONS.callTimeoutMs),
    maxCallMs: num('max-call', DEFAULT_OPTIONS.maxCallMs),
  };
}

/** Options back to URL parameters (for the browser page), defaults omitted. */
export function optionsToParams(o: BenchOptions): URLSearchParams {
  const p = new URLSearchParams();
  if (o.quick) p.set('quick', '1');
  if (o.only) p.set('only', o.only.join(','));
  if (o.libs) p.set('libs', o.libs.join(','));
  if (o.sizes !== 'default') p.set('sizes', o.sizes);
  const base = parseOptions(o.quick ? ['--quick'] : []);
  if (o.budgetMs !== base.budgetMs) p.set('budget', String(o.budgetMs));
  if (o.maxReps !== base.maxReps) p.set('reps', String(o.maxReps));
  if (o.minReps !== base.minReps) p.set('min-reps', String(o.minReps));
  if (o.warmup !== base.warmup) p.set('warmup', String(o.warmup));
  if (o.mlpSteps !== base.mlpSteps) p.set('mlp-steps', String(o.mlpSteps));
  if (o.callTimeoutMs !== base.callTimeoutMs) p.set('call-timeout', String(o.callTimeoutMs));
  if (o.maxCallMs !== base.maxCallMs) p.set('max-call', String(o.maxCallMs));
  return p;
}

export const slug = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');

/** Libraries selected by --libs (prefix match on slugs: 'tfjs' picks both TF.js variants). */
export function selectLibs(all: Rival[], o: BenchOptions): Rival[] {
  const want = o.libs ?? (o.quick ? ['ours', 'plain-js'] : null);
  if (!want) return all;
  const picked = all.filter((r) => want.some((w) => slug(r.name).startsWith(slug(w))));
  if (!picked.length) throw new Error(`--libs=${want.join(',')} matches none of: ${all.map((r) => slug(r.name)).join(', ')}`);
  return picked;
}

// ---------------------------------------------------------------------------
// Report types

export interface DeviceSummary {
  vendor: string;
  architecture: string;
  description: string;
  isFallback: boolean;
  backend?: string;
}

export type Status = 'ok' | 'verify-failed' | 'error' | 'skipped';

export interface Row {
  cell: string;
  label: string;
  groups: Group[];
  lib: string;
  status: Status;
  /** The VerifyError / exception message, or why the cell was skipped. */
  error?: string;
  /** Wall time per call, ms: median, min, max, mean over `reps` timed calls. */
  medianMs?: number;
  minMs?: number;
  maxMs?: number;
  meanMs?: number;
  reps?: number;
  /** Calls per timed sample (sub-millisecond calls are timed in batches); 1 when absent. */
  callsPerSample?: number;
  /** The first (verified) call, pipeline compilation included. */
  firstCallMs?: number;
  prepareMs?: number;
  /** Floating-point operations per call, and the rate at the median time. */
  flops?: number;
  gflops?: number;
  /** Largest relative error against the float64 reference over the checked calls. */
  relErr?: number;
  /** GPU time from timestamp queries over the timed calls (mean per call), where the library offers it. */
  gpu?: { msPerCall: number; submissionsPerCall: number };
  /** Live buffers/tensors before and after the timed calls (growth is GC-dependent for ours). */
  live?: [number, number];
  /** MLP: loss of the first and last step, and whether it fell. */
  loss?: { first: number; last: number; falls: boolean; steps: number };
  /** Our adapter (all GPU libraries share the machine); plain-js runs on the CPU. */
  device: DeviceSummary;
  date: string;
}

export interface CellInfo {
  id: string;
  label: string;
  /** A few characters, for chart axes. */
  short: string;
  groups: Group[];
  /** For charts: the matmul size and kind. */
  n?: number;
  kind: 'seed' | 'matmul' | 'vjp' | 'mlp' | 'loop' | 'tiny';
  chain?: number;
  /** Loop cells: training steps per call, and how often the loss is read (0: never). */
  steps?: number;
  readEvery?: number;
  flops?: number;
  rtol: number;
}

export interface BenchReport {
  version: 1;
  /** ISO timestamp of the start of the run. */
  date: string;
  env: 'node' | 'chrome';
  /** Node / browser version and OS. */
  platform: string;
  options: BenchOptions;
  device: DeviceSummary;
  /** The adapter the rival libraries got (Node: their own Dawn instance). */
  rivalAdapter?: string;
  libs: { name: string; notes: string; initError?: string }[];
  cells: CellInfo[];
  rows: Row[];
  totalSeconds: number;
  passed: number;
  failed: number;
  /** Node: 1-minute load average at the start and end of the run (other work on the machine skews timings). */
  loadAverage?: [number, number];
}

// ---------------------------------------------------------------------------
// Cells

interface Prepared {
  run: Runner<unknown>;
  /** Verify one result (callIndex counts calls from 0); returns the relative error, throws VerifyError. */
  check(result: unknown, callIndex: number): number;
  /** MLP: fixed warm-up and timed step counts instead of the adaptive ones. */
  fixed?: { warmup: number; reps: number };
  /** MLP: extra row fields once timing is done. */
  finish?(row: Row): void;
}

interface Cell extends CellInfo {
  prepare(lib: Rival): Promise<Prepared>;
}

/**
 * Expected ms per call of a cell for one library, from the median call of a
 * cheaper cell of the same library measured earlier in this run: a matmul/VJP
 * from the same kind of cell at the largest smaller n, scaled by n^3, else
 * from its single matmul of the largest size <= n, scaled by n^3 and by the
 * number of products (chain, or 2 for a VJP); a seed from the largest smaller
 * seed (at least 1e6 flops, so fixed overhead does not dominate), scaled by
 * N*d. Undefined without such a row.
 */
export function estimateMs(cell: CellInfo, lib: string, rows: Row[], cells: CellInfo[]): number | undefined {
  const measured = rows
    .filter((r) => r.lib === lib && r.status === 'ok')
    .map((r) => ({ r, c: cells.find((x) => x.id === r.cell)! }))
    .filter((x) => x.c);
  const largest = (xs: typeof measured, size: (c: CellInfo) => number) =>
    xs.reduce<(typeof measured)[number] | undefined>((best, x) => (!best || size(x.c) > size(best.c) ? x : best), undefined);
  if (cell.kind === 'seed' && cell.flops) {
    const b = largest(
      measured.filter(({ c }) => c.kind === 'seed' && c.flops! >= 1e6 && c.flops! < cell.flops!),
      (c) => c.flops!,
    );
    return b && b.r.medianMs! * (cell.flops / b.c.flops!);
  }
  if ((cell.kind !== 'matmul' && cell.kind !== 'vjp') || !cell.n) return undefined;
  const n = cell.n;
  const same = largest(
    measured.filter(({ c }) => c.kind === cell.kind && c.chain === cell.chain && c.n! < n),
    (c) => c.n!,
  );
  if (same) return same.r.medianMs! * (n / same.c.n!) ** 3;
  const single = largest(
    measured.filter(({ c }) => c.kind === 'matmul' && c.chain === 1 && c.n! <= n),
    (c) => c.n!,
  );
  if (!single) return undefined;
  const products = cell.kind === 'vjp' ? 2 : (cell.chain ?? 1);
  return single.r.medianMs! * (n / single.c.n!) ** 3 * products;
}

function lazy<T>(f: () => T): () => T {
  let v: { x: T } | undefined;
  return () => (v ??= { x: f() }).x;
}

function seedCell(n: number, d: number, groups: Group[]): Cell {
  const inputs = lazy(() => seedInputs(n, d));
  const want = lazy(() => {
    const { flatParams, x } = inputs();
    return refSeed(flatParams, x, n, d);
  });
  const rtol = 1e-4;
  return {
    id: `seed-${n}x${d}`,
    label: `seed N=${n} d=${d}`,
    short: `seed ${n}×${d}`,
    groups,
    kind: 'seed',
    flops: 4 * n * d,
    rtol,
    async prepare(lib) {
      const { flatParams, x } = inputs();
      want();
      const run = await lib.prepareSeed(flatParams, x, n, d);
      return { run, check: (got) => verify(`${lib.name} seed ${n}x${d}`, got as Float32Array, want(), rtol) };
    },
  };
}

/**
 * Check C = A @ B^chain. Small problems against the full float64 product;
 * large ones (where the float64 reference would take longer than the
 * benchmark) by projection: C V against A (B (... (B V))) for a random n x 4
 * V, normwise. A wrong tile or a transposed operand still shows up as an
 * error far above rtol.
 */
function matmulChecker(a: Float32Array, b: Float32Array, n: number, chain: number): (got: Float32Array) => [ArrayLike<number>, ArrayLike<number>] {
  if (n ** 3 * chain <= 256 ** 3 * 10) {
    const want = refMatmul(a, b, n, chain);
    return (got) => [got, want];
  }
  const k = 4;
  const v = Float64Array.from(uniform(n * k, 99));
  let w: Float64Array = v;
  for (let c = 0; c < chain; c++) w = matmul64(b, w, n, n, k);
  const want = matmul64(a, w, n, n, k);
  return (got) => [matmul64(got, v, n, n, k), want];
}

function matmulCell(n: number, chain: number): Cell {
  const inputs = lazy(() => matmulInputs(n));
  const checker = lazy(() => {
    const { a, b } = inputs();
    return matmulChecker(a, b, n, chain);
  });
  const rtol = chain === 1 ? 1e-4 : 1e-3;
  return {
    id: chain === 1 ? `matmul-${n}` : `matmul-${n}-x${chain}`,
    label: chain === 1 ? `matmul ${n}` : `matmul ${n} x${chain} chain`,
    short: chain === 1 ? `mm ${n}` : `mm ${n} ×${chain}`,
    groups: ['matmul'],
    kind: 'matmul',
    n,
    chain,
    flops: 2 * n ** 3 * chain,
    rtol,
    async prepare(lib) {
      const { a, b } = inputs();
      const check = checker();
      const run = await lib.prepareMatmul(a, b, n, chain);
      return {
        run,
        check: (got) => {
          const [g, w] = check(got as Float32Array);
          return verify(`${lib.name} ${this.label}`, g, w, rtol);
        },
      };
    },
  };
}

function vjpCell(n: number): Cell {
  const inputs = lazy(() => matmulInputs(n, 5));
  const want = lazy(() => {
    const { a, b } = inputs();
    return refMatmulVjp(a, b, n);
  });
  const rtol = 1e-4;
  return {
    id: `vjp-${n}`,
    label: `matmul vjp ${n}`,
    short: `vjp ${n}`,
    groups: ['matmul'],
    kind: 'vjp',
    n,
    flops: 4 * n ** 3,
    rtol,
    async prepare(lib) {
      const { a, b } = inputs();
      const [wA, wB] = want();
      const run = await lib.prepareMatmulVjp(a, b, n);
      return {
        run,
        check: (got) => {
          const [dA, dB] = got as [Float32Array, Float32Array];
          return Math.max(verify(`${lib.name} vjp ${n} dA`, dA, wA, rtol), verify(`${lib.name} vjp ${n} dB`, dB, wB, rtol));
        },
      };
    },
  };
}

const MLP_VERIFIED = 5;
const MLP_WARMUP = 5;
const mlpBatch = new Map<number, { inputs: () => ReturnType<typeof mlpInputs>; want: (steps: number) => number[] }>();

/** The MLP's inputs and float64 losses, shared by the step cell and the loop cells (computed once, for the most steps asked). */
function mlpData(batch: number) {
  let d = mlpBatch.get(batch);
  if (!d) {
    const inputs = lazy(() => mlpInputs(batch, 64, 256, 1));
    let losses: number[] = [];
    const want = (steps: number) => {
      if (losses.length < steps) {
        const { init, xs, ys } = inputs();
        losses = refMlpLosses(init, xs, ys, steps);
      }
      return losses;
    };
    mlpBatch.set(batch, (d = { inputs, want }));
  }
  return d;
}

export class SkipCell extends Error {}

/**
 * The MLP training loop, `steps` steps per call, reading the loss every
 * `readEvery` steps or never (0): how the execution model copes with loops
 * that read rarely. The first call's last loss is checked against float64;
 * later calls must stay finite and below it (training goes on across calls).
 */
function loopCell(batch: number, steps: number, readEvery: number, verifySteps: number): Cell {
  const data = mlpData(batch);
  const rtol = 1e-3;
  const how = readEvery ? `reading the loss every ${readEvery}` : 'never reading (then waiting)';
  return {
    id: `mlp-loop-${readEvery || 'never'}`,
    label: `MLP loop, ${steps} steps a call, ${how}`,
    short: `loop ${readEvery || 'never'}`,
    groups: ['loop'],
    kind: 'loop',
    steps,
    readEvery,
    flops: steps * 3 * (2 * batch * 64 * 256 + 2 * batch * 256),
    rtol,
    async prepare(lib) {
      if (!lib.prepareMlpLoop) throw new SkipCell(`${lib.name} has no loop runner (bench/rivals)`);
      const { init, xs, ys } = data.inputs();
      const want = data.want(verifySteps);
      const run = await lib.prepareMlpLoop(init, xs, ys, readEvery, steps);
      let first = NaN;
      return {
        run,
        check: (got, call) => {
          const loss = got as number;
          if (call === 0) {
            first = loss;
            return verify(`${lib.name} loop loss after ${steps} steps`, loss, want[steps - 1]!, rtol);
          }
          if (!(Number.isFinite(loss) && loss < first))
            throw new VerifyError(`${lib.name} loop: loss ${loss} after ${call + 1} calls, not below ${first}`);
          return 0;
        },
      };
    },
  };
}

interface StepSpec {
  id: string;
  label: string;
  short: string;
  flops: number;
  /** The library's one-step runner (SkipCell where it has none). */
  prepare(lib: Rival): Promise<Runner<number>>;
  /** float64 losses of the first `steps` steps. */
  want(steps: number): number[];
  groups?: Group[];
}

/**
 * One training step a call, each library with its own ops: the first
 * MLP_VERIFIED losses must match the float64 run closely, later ones (float32
 * Adam drifting a little over many steps) more loosely, and the loss must fall.
 */
function stepCell(spec: StepSpec, steps: number): Cell {
  const total = MLP_VERIFIED + MLP_WARMUP + steps; // prepare's verified steps, warm-up (first call included), timed
  const rtolFirst = 1e-4;
  const rtolLater = 1e-3;
  return {
    id: spec.id,
    label: spec.label,
    short: spec.short,
    groups: spec.groups ?? ['mlp'],
    kind: 'mlp',
    flops: spec.flops,
    rtol: rtolFirst,
    async prepare(lib) {
      const step = await spec.prepare(lib); // (first: a library without this runner skips before the float64 run)
      const w = spec.want(total);
      const losses: number[] = [];
      for (let i = 0; i < MLP_VERIFIED; i++) losses.push(await step());
      let relErr = verify(`${lib.name} ${spec.id} losses 1-${MLP_VERIFIED}`, losses, w.slice(0, MLP_VERIFIED), rtolFirst);
      let k = MLP_VERIFIED;
      const run: Runner<unknown> = Object.assign(
        async () => {
          const loss = await step();
          losses.push(loss);
          return [k++, loss] as const;
        },
        { dispose: step.dispose },
      );
      return {
        run,
        fixed: { warmup: MLP_WARMUP - 1, reps: steps }, // the first timed-loop call is warm-up step 1
        check: (got) => {
          const [i, loss] = got as [number, number];
          relErr = Math.max(relErr, verify(`${lib.name} ${spec.id} loss step ${i + 1}`, loss, w[i]!, rtolLater));
          return relErr;
        },
        finish(row) {
          const first = losses[0]!;
          const last = losses[losses.length - 1]!;
          row.loss = { first, last, falls: last < first, steps: losses.length };
          if (!(last < first) && row.status === 'ok') {
            row.status = 'verify-failed';
            row.error = `loss did not fall: ${first} -> ${last} over ${losses.length} steps`;
          }
        },
      };
    },
  };
}

function mlpCell(batch: number, steps: number): Cell {
  const data = mlpData(batch);
  return stepCell(
    {
      id: 'mlp',
      label: `MLP step (${batch}x64 -> 256 tanh -> 1, MSE, Adam)`,
      short: 'MLP step',
      // forward 2BDH + 2BH, backward about twice that
      flops: 3 * (2 * batch * 64 * 256 + 2 * batch * 256),
      prepare: (lib) => {
        const { init, xs, ys } = data.inputs();
        return lib.prepareMlp(init, xs, ys);
      },
      want: data.want,
    },
    steps,
  );
}

/** One training step of the MNIST-shaped classifier (784 -> 256 relu -> 10, softmax cross-entropy, Adam). */
function classifierCell(batch: number, steps: number): Cell {
  const inputs = lazy(() => classifierInputs(batch));
  let losses: number[] = [];
  return stepCell(
    {
      id: 'classifier',
      groups: ['mlp', 'models'],
      label: `MNIST MLP step (${batch}x784 -> 256 relu -> 10, cross-entropy, Adam)`,
      short: 'MNIST MLP',
      flops: 3 * (2 * batch * 784 * 256 + 2 * batch * 256 * 10),
      prepare: (lib) => {
        if (!lib.prepareClassifier) throw new SkipCell(`${lib.name} has no classifier runner (bench/rivals)`);
        const { init, xs, labels, onehot } = inputs();
        return lib.prepareClassifier(init, xs, labels, onehot);
      },
      want: (steps) => {
        if (losses.length < steps) {
          const { init, xs, labels } = inputs();
          losses = refMlpLosses(init, xs, new Float32Array(0), steps, labels);
        }
        return losses;
      },
    },
    steps,
  );
}

/** One training step of the MNIST CNN (conv 3x3 8 and 16 channels with relu and 2x2 max pools, dense; cross-entropy, Adam). */
function cnnCell(batch: number, steps: number): Cell {
  const inputs = lazy(() => cnnInputs(batch));
  let losses: number[] = [];
  // conv1 2*B*784*9*8, conv2 2*B*196*72*16, dense 2*B*784*10; backward about twice the forward
  const forward = 2 * batch * (784 * 9 * 8 + 196 * 72 * 16 + 784 * 10);
  return stepCell(
    {
      id: 'cnn',
      groups: ['models'],
      label: `MNIST CNN step (${batch}x28x28, conv 3x3 8 + pool, conv 3x3 16 + pool, dense 10, cross-entropy, Adam)`,
      short: 'MNIST CNN',
      flops: 3 * forward,
      prepare: (lib) => {
        if (!lib.prepareCnn) throw new SkipCell(`${lib.name} has no CNN runner (bench/rivals)`);
        const { init, xs, labels, onehot } = inputs();
        return lib.prepareCnn(init, xs, labels, onehot);
      },
      want: (steps) => {
        if (losses.length < steps) {
          const { init, xs, labels } = inputs();
          losses = refCnnLosses(init, xs, labels, steps);
        }
        return losses;
      },
    },
    steps,
  );
}

/** One training step of the small transformer (the demo's addition model's size), Adam. */
function transformerCell(batch: number, steps: number): Cell {
  const inputs = lazy(() => transformerInputs(batch));
  let losses: number[] = [];
  const { vocab: V, context: T, dim: D, layers } = transformerInputs(1).init.config;
  // per layer: q, k, v, o projections, scores and att @ v, the MLP; then the head. Backward about twice.
  const forward = 2 * batch * T * (layers * (4 * D * D + 2 * T * D + 8 * D * D) + D * V);
  return stepCell(
    {
      id: 'transformer',
      groups: ['models'],
      label: `transformer step (${batch}x${T} tokens, ${layers} layers, dim ${D}, 4 heads, causal attention, gelu, Adam)`,
      short: 'transformer',
      flops: 3 * forward,
      prepare: (lib) => {
        if (!lib.prepareTransformer) throw new SkipCell(`${lib.name} has no transformer runner (bench/rivals)`);
        const { init, data } = inputs();
        return lib.prepareTransformer(init, data);
      },
      want: (steps) => {
        if (losses.length < steps) {
          const { init, data } = inputs();
          losses = refTransformerLosses(init, data, steps);
        }
        return losses;
      },
    },
    steps,
  );
}

function tinyCell(len: number): Cell {
  const v = tinyChainInput(len);
  const want = refTinyChain(v);
  // WGSL only guarantees sin/cos to 2^-11 absolute error; the chain feeds 10 sins through x1.5 gains.
  const rtol = 5e-3;
  return {
    id: 'tiny-chain',
    label: `tiny chain, 50 elementwise ops on ${len} values`,
    short: 'tiny chain',
    groups: ['overhead'],
    kind: 'tiny',
    flops: 50 * len,
    rtol,
    async prepare(lib) {
      const run = await lib.prepareTinyChain(v);
      return { run, check: (got) => verify(`${lib.name} tiny chain`, got as Float32Array, want, rtol) };
    },
  };
}

export function buildCells(o: BenchOptions): Cell[] {
  const cells: Cell[] = [];
  const seedSizes: [number, number][] = o.quick
    ? [
        [1, 2],
        [1024, 64],
      ]
    : [
        [1, 2],
        [1024, 64],
        [16384, 256],
        [65536, 512],
      ];
  for (const [n, d] of seedSizes) cells.push(seedCell(n, d, n === 1 && d === 2 ? ['seed', 'overhead'] : ['seed']));
  const mmSizes = o.quick ? [64, 128] : o.sizes === 'large' ? [256, 512, 1024, 2048, 4096] : [256, 512, 1024];
  for (const n of mmSizes) cells.push(matmulCell(n, 1));
  for (const n of mmSizes) cells.push(matmulCell(n, 10));
  for (const n of mmSizes) cells.push(vjpCell(n));
  cells.push(mlpCell(256, o.mlpSteps));
  cells.push(classifierCell(128, o.mlpSteps));
  cells.push(cnnCell(128, o.quick ? 2 : Math.min(o.mlpSteps, 10)));
  cells.push(transformerCell(64, o.quick ? 3 : Math.min(o.mlpSteps, 20)));
  const loopSteps = o.quick ? 20 : 100;
  for (const every of [1, 10, 100, 0]) cells.push(loopCell(256, loopSteps, every, Math.max(loopSteps, MLP_VERIFIED + MLP_WARMUP + o.mlpSteps)));
  cells.push(tinyCell(16));
  return cells.filter((c) => !o.only || c.groups.some((g) => o.only!.includes(g)));
}

// ---------------------------------------------------------------------------
// Running

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout>;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<never>((_, rej) => {
      t = setTimeout(() => rej(new Error(`${what}: no answer after ${(ms / 1000).toFixed(0)} s`)), ms);
    }),
  ]);
}

function stats(samples: number[]): { median: number; min: number; max: number; mean: number } {
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, mean: s.reduce((a, b) => a + b, 0) / s.length };
}

const nextTick = () => new Promise<void>((r) => setTimeout(r, 0));

async function runCell(cell: Cell, lib: Rival, o: BenchOptions, row: Row): Promise<void> {
  const t0 = performance.now();
  const p = await withTimeout(cell.prepare(lib), o.callTimeoutMs * 4, `${lib.name} prepare ${cell.label}`);
  row.prepareMs = performance.now() - t0;
  const call = () => withTimeout(p.run(), o.callTimeoutMs, `${lib.name} ${cell.label}`);
  try {
    let calls = 0;
    // 1. the verified first call (compilation included)
    const t1 = performance.now();
    const first = await call();
    row.firstCallMs = performance.now() - t1;
    let relErr = p.check(first, calls++);
    // 2. warm-up, cut short when calls are slow
    const warmup = p.fixed?.warmup ?? o.warmup;
    let warmMs = 0;
    let lastCall = row.firstCallMs; // the fastest warm-up call (the first call if there was none)
    let warmed = false;
    const slow = row.firstCallMs >= o.budgetMs; // the verified call already warmed it up
    for (let i = 0; i < warmup && (p.fixed || (!slow && warmMs < o.budgetMs)); i++) {
      const t = performance.now();
      const res = await call();
      const dt = performance.now() - t;
      lastCall = warmed ? Math.min(lastCall, dt) : dt;
      warmed = true;
      warmMs += dt;
      if (p.fixed) relErr = Math.max(relErr, p.check(res, calls));
      calls++;
    }
    // Calls under 2 ms: time batches of `inner` back-to-back calls (each still
    // awaited), at least 5 ms a batch, so the browser's coarse timer (0.1 ms
    // without cross-origin isolation) does not quantise them; a sample is batch/inner.
    let inner = 1;
    if (!p.fixed && lastCall < 2) {
      for (;;) {
        const t = performance.now();
        for (let i = 0; i < inner; i++) await call();
        const dt = performance.now() - t;
        calls += inner;
        if (dt >= 5 || inner >= 4096) break;
        inner *= 2;
      }
    }
    // 3. timed samples: at least minReps (1 when a call alone exceeds the budget), then until the budget or maxReps
    const live0 = lib.liveCount?.();
    const stopGpuTimer = lib.gpuTimer?.();
    const samples: number[] = [];
    const minReps = lastCall > o.budgetMs ? 1 : lastCall * 2 > o.budgetMs ? 2 : o.minReps;
    let last: unknown;
    let spent = 0;
    const results: unknown[] = [];
    for (;;) {
      if (p.fixed ? samples.length >= p.fixed.reps : samples.length >= o.maxReps || (samples.length >= minReps && spent >= o.budgetMs)) break;
      const t = performance.now();
      for (let i = 0; i < inner; i++) last = await call();
      const dt = performance.now() - t;
      samples.push(dt / inner);
      spent += dt;
      if (p.fixed) results.push(last);
    }
    const live1 = lib.liveCount?.();
    if (stopGpuTimer) {
      const gpu = await stopGpuTimer();
      const calls = samples.length * inner;
      row.gpu = { msPerCall: gpu.reduce((a, b) => a + b, 0) / calls, submissionsPerCall: gpu.length / calls };
    }
    // 4. verify what the timed calls returned (every MLP step; otherwise the last call)
    if (p.fixed) for (const r of results) relErr = Math.max(relErr, p.check(r, calls++));
    else relErr = Math.max(relErr, p.check(last, calls + samples.length * inner - 1));
    const s = stats(samples);
    Object.assign(row, { status: 'ok', medianMs: s.median, minMs: s.min, maxMs: s.max, meanMs: s.mean, reps: samples.length, relErr });
    if (inner > 1) row.callsPerSample = inner;
    if (cell.flops) row.gflops = cell.flops / (s.median * 1e6);
    if (live0 !== undefined && live1 !== undefined) row.live = [live0, live1];
    p.finish?.(row);
  } finally {
    try {
      p.run.dispose?.();
    } catch {
      /* already broken */
    }
  }
}

export interface RunContext {
  env: 'node' | 'chrome';
  platform: string;
  device: DeviceSummary;
  rivalAdapter?: string;
  log?: (line: string) => void;
  /** Called after each row (progress display). */
  onRow?: (row: Row, report: BenchReport) => void;
}

/** Initialise each library; one that fails gets error rows instead of stopping the run. */
export async function initLibs(libs: Rival[], log: (s: string) => void = () => {}): Promise<Map<Rival, string>> {
  const failed = new Map<Rival, string>();
  for (const r of libs) {
    try {
      await r.init();
      log(`  ${r.name}: ${r.notes}`);
    } catch (e) {
      const msg = (e as Error).message ?? String(e);
      failed.set(r, msg);
      log(`  ${r.name}: init failed: ${msg}`);
    }
  }
  return failed;
}

export const isFailure = (r: Row) => r.status === 'verify-failed' || r.status === 'error';

export async function runBench(o: BenchOptions, libs: Rival[], ctx: RunContext, initFailures = new Map<Rival, string>()): Promise<BenchReport> {
  const log = ctx.log ?? (() => {});
  const start = performance.now();
  const cells = buildCells(o);
  const report: BenchReport = {
    version: 1,
    date: new Date().toISOString(),
    env: ctx.env,
    platform: ctx.platform,
    options: o,
    device: ctx.device,
    rivalAdapter: ctx.rivalAdapter,
    libs: libs.map((l) => ({ name: l.name, notes: l.notes, ...(initFailures.has(l) ? { initError: initFailures.get(l) } : {}) })),
    cells: cells.map(({ id, label, short, groups, n, kind, chain, steps, readEvery, flops, rtol }) => ({
      id,
      label,
      short,
      groups,
      n,
      kind,
      chain,
      steps,
      readEvery,
      flops,
      rtol,
    })),
    rows: [],
    totalSeconds: 0,
    passed: 0,
    failed: 0,
  };
  const cpuDevice: DeviceSummary = { vendor: '', architecture: '', description: 'CPU (JavaScript)', isFallback: false };
  for (const cell of cells) {
    log(`${cell.label}`);
    for (const lib of libs) {
      const row: Row = {
        cell: cell.id,
        label: cell.label,
        groups: cell.groups,
        lib: lib.name,
        status: 'error',
        flops: cell.flops,
        device: lib.name === 'plain-js' ? cpuDevice : ctx.device,
        date: new Date().toISOString(),
      };
      const est = estimateMs(cell, lib.name, report.rows, report.cells);
      const skip =
        est !== undefined && est > o.maxCallMs
          ? `too slow here: about ${(est / 1000).toFixed(0)} s per call expected (from its smaller cells), over the ${(o.maxCallMs / 1000).toFixed(0)} s limit (--max-call)`
          : undefined;
      if (initFailures.has(lib)) {
        row.error = `init failed: ${initFailures.get(lib)}`;
      } else if (skip) {
        row.status = 'skipped';
        row.error = skip;
      } else {
        try {
          await runCell(cell, lib, o, row);
        } catch (e) {
          row.status = e instanceof VerifyError ? 'verify-failed' : e instanceof SkipCell ? 'skipped' : 'error';
          const msg = (e as Error).message ?? String(e);
          row.error = msg.length > 600 ? `${msg.slice(0, 600)}…` : msg;
        }
      }
      report.rows.push(row);
      if (row.status === 'ok') report.passed++;
      else if (isFailure(row)) report.failed++;
      const what =
        row.status === 'ok'
          ? `${fmtMs(row.medianMs!)} ms median of ${row.reps}${row.callsPerSample ? `x${row.callsPerSample}` : ''} [${fmtMs(row.minMs!)}-${fmtMs(row.maxMs!)}]` +
            (row.gflops !== undefined && cell.kind !== 'seed' && cell.kind !== 'tiny' ? `, ${row.gflops.toFixed(2)} GFLOP/s` : '') +
            `, first call ${fmtMs(row.firstCallMs!)} ms, rel err ${row.relErr!.toExponential(1)}` +
            (row.loss ? `, loss ${row.loss.first.toFixed(4)} -> ${row.loss.last.toFixed(4)}` : '')
          : `${row.status.toUpperCase()}: ${row.error}`;
      log(`  ${lib.name.padEnd(26)} ${what}`);
      ctx.onRow?.(row, report);
      await nextTick(); // let the page repaint / GC run between cells
    }
  }
  report.totalSeconds = (performance.now() - start) / 1000;
  return report;
}

export function fmtMs(ms: number): string {
  if (ms >= 1000) return ms.toFixed(0);
  if (ms >= 100) return ms.toFixed(1);
  if (ms >= 10) return ms.toFixed(2);
  if (ms >= 1) return ms.toFixed(3);
  return ms.toPrecision(3);
}
