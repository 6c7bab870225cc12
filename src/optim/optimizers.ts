// Optax-style optimizers: a GradientTransformation is { init, update } over
// pytrees, and optimizers are chains of small transformations
// (adam = chain(scaleByAdam, scaleByLearningRate)).
//
// Memory without bookkeeping: update() consumes (donates) the grads and the
// old state it is given, and applyUpdates() consumes the old params and the
// updates, as JAX's buffer donation does. Their buffers return to the pool as
// soon as the new values have been computed from them; reading a consumed
// array afterwards throws DisposedArrayError. The canonical loop therefore
// keeps GPU memory flat with no dispose() calls.

import { NDArray } from '../array/ndarray';
import { makeNode } from '../array/node';
import { sealed } from '../array/lifetime';
import { evaluator } from '../array/evaluator';
import { add, addScalar, array, cos, div, exp, full, maximum, minimum, mul, scale, sqrt, square, sub, sum } from '../array/ops';
import { assertSameStructure, flatten, leaves, leavesWithPath, map, unflatten, type MapLeaves } from '../tree/tree';
import { DisposedArrayError, ShapeError, ValueError } from '../errors';

export type Params = unknown;
/**
 * A learning rate as a function of the step count (from 0). Inside `scan`,
 * `foriLoop` or `jit` the count is a 0-d array; a schedule that can run there
 * carries `onDevice`, the same function written with array ops.
 */
export type Schedule = ((step: number) => number) & {
  /** The same schedule of a 0-d array step count, written with array ops (for scan, foriLoop and jit). */
  onDevice?: (step: NDArray) => NDArray;
};
/** The step count in an optimizer's state: a number, or a 0-d array where the update is traced (scan, jit). */
export type StepCount = number | NDArray;
/** A learning rate: a number, or a schedule of the step count. */
export type LearningRate = number | Schedule;

/**
 * Optax's cosine_decay_schedule: from `initValue` at step 0 down a half cosine
 * to `alpha * initValue` at `decaySteps`, and there after.
 */
export function cosineDecaySchedule(initValue: number, decaySteps: number, alpha = 0): Schedule {
  if (!(decaySteps > 0)) throw new ValueError(`cosineDecaySchedule: decaySteps must be positive; got ${decaySteps}`);
  const schedule: Schedule = (step) => {
    const cosine = 0.5 * (1 + Math.cos((Math.PI * Math.min(step, decaySteps)) / decaySteps));
    return initValue * ((1 - alpha) * cosine + alpha);
  };
  schedule.onDevice = (step) => {
    const cosine = scale(addScalar(cos(scale(minimum(step, decaySteps), Math.PI / decaySteps)), 1), 0.5);
    return scale(addScalar(scale(cosine, 1 - alpha), alpha), initValue);
  };
  return schedule;
}

/** An Optax-style optimizer or transformation: init makes the state, update transforms grads. */
export interface GradientTransformation<S = unknown> {
  /** The initial state for these params (zeros shaped like them, a step count, ...). */
  init(params: Params): S;
  /**
   * [updates, newState]. Consumes grads and state. params is needed by some transformations
   * (weight decay). Every check runs before anything is consumed: an update that throws leaves
   * grads, state and params exactly as they were, so it can be retried.
   */
  update<G>(grads: G, state: S, params?: Params): [MapLeaves<G, NDArray>, S];
  /** The checks `update` makes before it consumes anything (chain runs every part's first). Optional for your own transformations. */
  check?(grads: unknown, state: S, params?: Params): void;
}

/** A transformation whose update runs `check` first, and exposes it for chain. */
function transformation<S>(t: {
  init: (params: Params) => S;
  check: (grads: unknown, state: S, params?: Params) => void;
  apply: (grads: unknown, state: S, params?: Params) => [unknown, S];
}): GradientTransformation<S> {
  return {
    init: t.init,
    check: t.check,
    update: (grads, state, params) => {
      t.check(grads, state, params);
      return t.apply(grads, state, params) as never;
    },
  };
}

/** `name.path` for error messages. */
const at = (name: string, path: string) => (!path ? name : path.startsWith('[') ? `${name}${path}` : `${name}.${path}`);
const shapeOf = (x: unknown) => (x instanceof NDArray ? x.shape : []);
const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

/** Every array leaf can still be used (not disposed or donated): else a DisposedArrayError naming it. */
function usable(t: unknown, name: string): void {
  for (const [path, l] of leavesWithPath(t)) {
    if (!(l instanceof NDArray)) continue;
    try {
      l.use();
    } catch (e) {
      throw new DisposedArrayError(`${at(name, path)}: ${(e as Error).message}`);
    }
  }
}

/** `a` and `b` have the same structure, and leaf by leaf the same shape (numbers are 0-d). */
function sameLeaves(a: unknown, b: unknown, names: [string, string]): void {
  assertSameStructure(a, b, { rootName: names[0], names });
  const bl = leaves(b);
  leavesWithPath(a).forEach(([path, l], i) => {
    const [sa, sb] = [shapeOf(l), shapeOf(bl[i])];
    if (sa.join() !== sb.join()) throw new ShapeError(`${at(names[0], path)} has shape ${fmt(sa)}, but ${at(names[1], path)} has shape ${fmt(sb)}`);
  });
}

function finite(v: number, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ValueError(`${what} must be a finite number; got ${String(v)}`);
  return v;
}

/** The state an init made, with these fields: else a ValueError saying so (not a TypeError). */
function stateWith<S>(state: S, name: string, fields: string[]): S {
  const ok = state !== null && typeof state === 'object' && fields.every((f) => f in (state as object));
  if (!ok)
    throw new ValueError(
      `${name}: the optimizer state must be the one init() (or the last update) returned, with ${fields.join(', ')}; got ${String(state)}`,
    );
  return state;
}

const CONSUMED_BY_UPDATE = 'consumed by optimizer.update (donated: read values before the update, or keep a copy)';
const CONSUMED_BY_APPLY = 'consumed by applyUpdates (donated: the returned params replace it)';

function donate(t: unknown, reason: string): void {
  for (const l of leaves(t)) if (l instanceof NDArray) l.revoke(reason);
}

function asArrayLeaf(x: unknown): NDArray {
  return x instanceof NDArray ? x : array(x as number);
}

/** The learning rate at this step (an array for a traced count); `probe`: only check that it can be computed. */
function lrAt(lr: LearningRate, step: StepCount, probe = false): number | NDArray {
  if (step instanceof NDArray) {
    if (typeof lr !== 'function') return lr;
    if (!lr.onDevice) {
      throw new ValueError(
        'learning rate: inside scan, foriLoop or jit the step count is an array, and this schedule only takes a number (give it an onDevice form, as cosineDecaySchedule has, or use a constant rate)',
      );
    }
    return probe ? 0 : lr.onDevice(step);
  }
  const v = typeof lr === 'function' ? lr(step) : lr;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ValueError(`learning rate must be a finite number; got ${String(v)} at step ${step}`);
  return v;
}

/** Multiply updates by a constant. */
export function scaleBy(step: number): GradientTransformation<Record<string, never>> {
  finite(step, 'scaleBy: the factor');
  return transformation({
    init: () => ({}),
    check: (grads) => usable(grads, 'grads'),
    apply: (grads, state) => [map((g: unknown) => scale(asArrayLeaf(g), step), grads), state],
  });
}

/**
 * Multiply updates by -lr (lr a number or a schedule of the step count). As in
 * Optax, only a schedule keeps a step count: a constant rate's state is empty,
 * so a jitted step does not spend a kernel counting for it.
 */
export function scaleByLearningRate(lr: LearningRate, flipSign = true): GradientTransformation<{ count?: StepCount }> {
  const sign = flipSign ? -1 : 1;
  if (typeof lr === 'number') {
    finite(lr, 'the learning rate');
    return transformation({
      init: () => ({}),
      check: (grads, state) => {
        stateWith(state, 'scaleByLearningRate', []);
        usable(grads, 'grads');
      },
      apply: (grads, state) => [map((g: unknown) => scale(asArrayLeaf(g), lr * sign), grads), state],
    });
  }
  return transformation({
    init: (): { count?: StepCount } => ({ count: 0 }),
    check: (grads, state) => {
      usable(grads, 'grads');
      lrAt(lr, stateWith(state, 'scaleByLearningRate', ['count']).count!, true); // a schedule that throws or gives NaN fails here
    },
    apply: (grads, state) => {
      const rate = lrAt(lr, state.count!);
      const by = (g: NDArray) => (typeof rate === 'number' ? scale(g, rate * sign) : mul(g, scale(rate, sign)));
      return [map((g: unknown) => by(asArrayLeaf(g)), grads), { count: nextCount(state.count!) }];
    },
  });
}

/** Adam's constants (Optax's names and defaults). */
export interface AdamOptions {
  b1?: number;
  b2?: number;
  eps?: number;
  epsRoot?: number;
}

/** Adam's state: the step count and the moment estimates. */
export interface AdamState {
  count: StepCount;
  mu: unknown;
  nu: unknown;
}

/** Adam's moment estimates and bias-corrected update: elementwise ops that fuse into the parameter's update kernel (adamLeaf). */
export function scaleByAdam(opts: AdamOptions = {}): GradientTransformation<AdamState> {
  const { b1 = 0.9, b2 = 0.999, eps = 1e-8, epsRoot = 0 } = opts;
  for (const [k, v] of Object.entries({ b1, b2, eps, epsRoot })) finite(v, `adam: ${k}`);
  return transformation({
    init: (params): AdamState => ({
      count: 0,
      mu: map((p: unknown) => full(asArrayLeaf(p).shape, 0), params),
      nu: map((p: unknown) => full(asArrayLeaf(p).shape, 0), params),
    }),
    check: (grads, state) => {
      stateWith(state, 'scaleByAdam', ['count', 'mu', 'nu']);
      sameLeaves(grads, state.mu, ['grads', 'optimizer state (mu)']);
      sameLeaves(grads, state.nu, ['grads', 'optimizer state (nu)']);
      usable(grads, 'grads');
      usable(state.mu, 'optimizer state (mu)');
      usable(state.nu, 'optimizer state (nu)');
    },
    apply: (grads, state) => {
      const t = nextCount(state.count);
      const [gl, def] = flatten(grads);
      const [ml] = flatten(state.mu);
      const [vl] = flatten(state.nu);
      const out = gl.map((g, i) => adamLeaf(asArrayLeaf(g), ml[i] as NDArray, vl[i] as NDArray, t, { b1, b2, eps, epsRoot }));
      donate(state.mu, CONSUMED_BY_UPDATE);
      donate(state.nu, CONSUMED_BY_UPDATE);
      const part = (k: number) =>
        unflatten(
          def,
          out.map((o) => o[k]!),
        );
      return [part(2), { count: t, mu: part(0), nu: part(1) }];
    },
  });
}

/** The step count after this update: a number stays a number, a traced count stays on the device. */
function nextCount(c: StepCount): StepCount {
  return typeof c === 'number' ? c + 1 : addScalar(c, 1);
}

/**
 * Adam's moments and update for one leaf, as elementwise ops: the fusion
 * pass makes them one kernel with the parameter's update (applyUpdates),
 * writing the moments out too, and runs it as the epilogue of the kernel
 * that computes the gradient. The update is ordered so that no step
 * overflows unless the update itself does: sqrt(v'/bc2 + epsRoot) as
 * sqrt(v' + epsRoot bc2) / sqrt(bc2) (v'/bc2 overflowed once v' > bc2 *
 * 3.4e38, making the update 0), and the division by bc1 <= 1 last (m'/bc1
 * overflowed once |m'| > bc1 * 3.4e38). The bias corrections bc = 1 - b^t
 * are numbers for a numeric count t, and computed on the device as
 * 1 - exp(t log b) for a 0-d array t (inside scan or jit).
 */
function adamLeaf(g: NDArray, m: NDArray, v: NDArray, t: StepCount, c: Required<AdamOptions>): [NDArray, NDArray, NDArray] {
  // (A numeric correction is a 0-d fill: a constant inside the kernel, not an uploaded array.)
  const bc = (b: number) => (typeof t === 'number' ? full([], 1 - b ** t) : sub(1, exp(scale(t, Math.log(b)))));
  const [bc1, bc2] = [bc(c.b1), bc(c.b2)];
  const m1 = add(scale(m, c.b1), scale(g, 1 - c.b1));
  const v1 = add(scale(v, c.b2), mul(scale(g, 1 - c.b2), g));
  const d = addScalar(div(sqrt(add(v1, scale(bc2, c.epsRoot))), sqrt(bc2)), c.eps);
  // The new moments are state the next step reads: written out (by the update's kernel), never
  // left pending inside it as a held intermediate would be, which would keep this step's gradient.
  m1.node.materialize = true;
  v1.node.materialize = true;
  return [m1, v1, div(div(m1, d), bc1)];
}

/** Momentum (Optax's trace): t = g + decay * t; with nesterov the update is g + decay * t. */
export function traceMomentum(decay: number, nesterov = false): GradientTransformation<{ trace: unknown }> {
  finite(decay, 'momentum');
  return transformation({
    init: (params) => ({ trace: map((p: unknown) => full(asArrayLeaf(p).shape, 0), params) }),
    check: (grads, state) => {
      sameLeaves(grads, stateWith(state, 'traceMomentum', ['trace']).trace, ['grads', 'optimizer state (trace)']);
      usable(grads, 'grads');
      usable(state.trace, 'optimizer state (trace)');
    },
    apply: (grads, state) => {
      const tr = map((g: unknown, t: NDArray) => add(asArrayLeaf(g), scale(t, decay)), grads, state.trace);
      const upd = nesterov ? map((g: unknown, t: NDArray) => add(asArrayLeaf(g), scale(t, decay)), grads, tr) : tr;
      donate(state.trace, CONSUMED_BY_UPDATE);
      return [upd, { trace: tr }];
    },
  });
}

/** Adds weightDecay * params to the updates (AdamW's decoupled decay). */
export function addDecayedWeights(weightDecay: number): GradientTransformation<Record<string, never>> {
  finite(weightDecay, 'weightDecay');
  return transformation({
    init: () => ({}),
    check: (grads, _state, params) => {
      if (params === undefined) throw new ValueError('addDecayedWeights (adamw) needs params: call update(grads, state, params)');
      sameLeaves(grads, params, ['grads', 'params']);
      usable(grads, 'grads');
      usable(params, 'params');
    },
    apply: (grads, state, params) => [map((g: unknown, p: unknown) => add(asArrayLeaf(g), scale(asArrayLeaf(p), weightDecay)), grads, params), state],
  });
}

/** Scale all updates so their global L2 norm is at most maxNorm. */
export function clipByGlobalNorm(maxNorm: number): GradientTransformation<Record<string, never>> {
  if (!(finite(maxNorm, 'clipByGlobalNorm: maxNorm') > 0)) throw new ValueError(`clipByGlobalNorm: maxNorm must be positive; got ${maxNorm}`);
  return transformation({
    init: () => ({}),
    check: (grads) => usable(grads, 'grads'),
    apply: (grads, state) => {
      const ls = leaves(grads).map(asArrayLeaf);
      if (ls.length === 0) return [grads, state];
      const sq = ls.map((g) => sum(square(g))).reduce((a, b) => add(a, b));
      const norm = sqrt(sq);
      // factor = maxNorm / max(norm, maxNorm): 1 when under the limit.
      const factor = div(maxNorm, maximum(norm, maxNorm));
      return [map((g: unknown) => mul(asArrayLeaf(g), factor), grads), state];
    },
  });
}

/** Apply transformations in order; the state is the array of their states. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each part has its own state type
export function chain(...ts: GradientTransformation<any>[]): GradientTransformation<unknown[]> {
  const check = (grads: unknown, state: unknown[], params?: Params) => {
    if (!Array.isArray(state) || state.length !== ts.length) {
      throw new ValueError(`chain: expected a state of ${ts.length} parts (from init), got ${Array.isArray(state) ? state.length : typeof state}`);
    }
    // Grads must fit the params they are for, whatever the parts need (plain sgd needs nothing else).
    if (params !== undefined) sameLeaves(grads, params, ['grads', 'params']);
    // Every part's checks before any part consumes anything (the updates between parts have the grads' structure and shapes).
    ts.forEach((t, i) => t.check?.(grads, state[i], params));
  };
  return {
    init: (params) => ts.map((t) => t.init(params)),
    check,
    update: (grads, state, params) => {
      check(grads, state, params);
      return sealed(() => {
        let u: unknown = grads;
        const next = ts.map((t, i) => {
          const [nu, s] = t.update(u, state[i], params);
          u = nu;
          return s;
        });
        if (u === grads) u = map((g: unknown) => asArrayLeaf(g), grads);
        donateInputs(grads, u);
        return [u as never, next] as [never, unknown[]];
      }, arraysIn);
    },
  };
}

/** The nodes of every NDArray in a result (what a sealed scope hands back). */
function arraysIn(result: unknown): ReturnType<typeof makeNode>[] {
  return leaves(result, { isLeaf: (x) => typeof x !== 'object' || x === null })
    .filter((x): x is NDArray => x instanceof NDArray)
    .map((a) => a.node);
}

/** The grads given to update are consumed, unless an update leaf is the very same array. */
function donateInputs(grads: unknown, updates: unknown): void {
  const keep = new Set(leaves(updates));
  for (const g of leaves(grads)) if (g instanceof NDArray && !keep.has(g)) g.revoke(CONSUMED_BY_UPDATE);
}

/** Stochastic gradient descent, with optional (Nesterov) momentum. */
export function sgd(lr: LearningRate, opts: { momentum?: number; nesterov?: boolean } = {}): GradientTransformation<unknown[]> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each part has its own state type
  const parts: GradientTransformation<any>[] = [];
  if (opts.momentum) parts.push(traceMomentum(opts.momentum, opts.nesterov));
  parts.push(scaleByLearningRate(lr));
  return chain(...parts);
}

/** Adam (Optax's adam): scaleByAdam then scaleByLearningRate. */
export function adam(lr: LearningRate, opts: AdamOptions = {}): GradientTransformation<unknown[]> {
  return chain(scaleByAdam(opts), scaleByLearningRate(lr));
}

/** AdamW: Adam with decoupled weight decay (addDecayedWeights). */
export function adamw(lr: LearningRate, opts: AdamOptions & { weightDecay?: number } = {}): GradientTransformation<unknown[]> {
  return chain(scaleByAdam(opts), addDecayedWeights(opts.weightDecay ?? 1e-4), scaleByLearningRate(lr));
}

/** params + updates, leaf by leaf. Consumes both (their buffers are reused for the result). */
export function applyUpdates<P>(params: P, updates: unknown): MapLeaves<P, NDArray> {
  sameLeaves(updates, params, ['updates', 'params']);
  usable(updates, 'updates');
  usable(params, 'params');
  const out = sealed(() => map((p: unknown, u: unknown) => add(asArrayLeaf(p), asArrayLeaf(u)), params, updates), arraysIn);
  donate(params, CONSUMED_BY_APPLY);
  donate(updates, CONSUMED_BY_APPLY);
  // The end of a training step: dispatch it (src/exec/dispatch.ts), so the graph never spans steps.
  evaluator().flush();
  return out as MapLeaves<P, NDArray>;
}
