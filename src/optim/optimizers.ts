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
import type { PrimParams } from '../array/prims';
import { sealed } from '../array/lifetime';
import { evaluator } from '../array/evaluator';
import { add, array, bind, div, full, maximum, mul, scale, sqrt, square, sum } from '../array/ops';
import { assertSameStructure, flatten, leaves, map, unflatten, type MapLeaves } from '../tree/tree';
import { ValueError } from '../errors';

export type Params = unknown;
export type Schedule = (step: number) => number;
export type LearningRate = number | Schedule;

export interface GradientTransformation<S = unknown> {
  init(params: Params): S;
  /** [updates, newState]. Consumes grads and state. params is needed by some transformations (weight decay). */
  update<G>(grads: G, state: S, params?: Params): [MapLeaves<G, NDArray>, S];
}

const CONSUMED_BY_UPDATE = 'consumed by optimizer.update (donated: read values before the update, or keep a copy)';
const CONSUMED_BY_APPLY = 'consumed by applyUpdates (donated: the returned params replace it)';

function donate(t: unknown, reason: string): void {
  for (const l of leaves(t)) if (l instanceof NDArray) l.revoke(reason);
}

function asArrayLeaf(x: unknown): NDArray {
  return x instanceof NDArray ? x : array(x as number);
}

function lrAt(lr: LearningRate, step: number): number {
  const v = typeof lr === 'function' ? lr(step) : lr;
  if (!Number.isFinite(v)) throw new ValueError(`learning rate must be a finite number; got ${v} at step ${step}`);
  return v;
}

/** Multiply updates by a constant. */
export function scaleBy(step: number): GradientTransformation<Record<string, never>> {
  return {
    init: () => ({}),
    update: (grads, state) => [map((g: unknown) => scale(asArrayLeaf(g), step), grads) as never, state],
  };
}

/** Multiply updates by -lr (lr a number or a schedule of the step count). */
export function scaleByLearningRate(lr: LearningRate, flipSign = true): GradientTransformation<{ count: number }> {
  return {
    init: () => ({ count: 0 }),
    update: (grads, state) => {
      const s = lrAt(lr, state.count) * (flipSign ? -1 : 1);
      return [map((g: unknown) => scale(asArrayLeaf(g), s), grads) as never, { count: state.count + 1 }];
    },
  };
}

export interface AdamOptions {
  b1?: number;
  b2?: number;
  eps?: number;
  epsRoot?: number;
}

export interface AdamState {
  count: number;
  mu: unknown;
  nu: unknown;
}

/** Adam's moment estimates and bias-corrected update, one fused WGSL kernel per leaf (shaders/optim.wgsl). */
export function scaleByAdam(opts: AdamOptions = {}): GradientTransformation<AdamState> {
  const { b1 = 0.9, b2 = 0.999, eps = 1e-8, epsRoot = 0 } = opts;
  return {
    init: (params) => ({
      count: 0,
      mu: map((p: unknown) => full(asArrayLeaf(p).shape, 0), params),
      nu: map((p: unknown) => full(asArrayLeaf(p).shape, 0), params),
    }),
    update: (grads, state) => {
      assertSameStructure(grads, state.mu, { rootName: 'grads', names: ['grads', 'optimizer state'] });
      const t = state.count + 1;
      const [gl, def] = flatten(grads);
      const [ml] = flatten(state.mu);
      const [vl] = flatten(state.nu);
      const out = gl.map((g, i) => fusedAdam(asArrayLeaf(g), ml[i] as NDArray, vl[i] as NDArray,
        { b1, b2, eps, epsRoot, bc1: 1 - b1 ** t, bc2: 1 - b2 ** t, scale: 1 }));
      donate(state.mu, CONSUMED_BY_UPDATE);
      donate(state.nu, CONSUMED_BY_UPDATE);
      return [unflatten(def, out.map((o) => o[2])) as never,
        { count: t, mu: unflatten(def, out.map((o) => o[0])), nu: unflatten(def, out.map((o) => o[1])) }];
    },
  };
}

function fusedAdam(g: NDArray, m: NDArray, v: NDArray, p: Omit<PrimParams['adam'], 'n' | 'seg'>): [NDArray, NDArray, NDArray] {
  const n = g.size;
  const seg = Math.ceil(n / 64) * 64; // 256-byte aligned segments
  const packed = bind('adam', [g, m, v], { ...p, n, seg }, [3 * seg]);
  packed.node.internal = true;
  const view = (k: number) => new NDArray(makeNode('view', [packed.node], { offset: k * seg * 4 }, g.shape));
  const out: [NDArray, NDArray, NDArray] = [view(0), view(1), view(2)];
  return out;
}

/** Momentum (Optax's trace): t = g + decay * t; with nesterov the update is g + decay * t. */
export function traceMomentum(decay: number, nesterov = false): GradientTransformation<{ trace: unknown }> {
  return {
    init: (params) => ({ trace: map((p: unknown) => full(asArrayLeaf(p).shape, 0), params) }),
    update: (grads, state) => {
      assertSameStructure(grads, state.trace, { rootName: 'grads', names: ['grads', 'optimizer state'] });
      const tr = map((g: unknown, t: NDArray) => add(asArrayLeaf(g), scale(t, decay)), grads, state.trace);
      const upd = nesterov ? map((g: unknown, t: NDArray) => add(asArrayLeaf(g), scale(t, decay)), grads, tr) : tr;
      donate(state.trace, CONSUMED_BY_UPDATE);
      return [upd as never, { trace: tr }];
    },
  };
}

/** Adds weightDecay * params to the updates (AdamW's decoupled decay). */
export function addDecayedWeights(weightDecay: number): GradientTransformation<Record<string, never>> {
  return {
    init: () => ({}),
    update: (grads, state, params) => {
      if (params === undefined) throw new ValueError('addDecayedWeights (adamw) needs params: call update(grads, state, params)');
      assertSameStructure(grads, params, { rootName: 'grads', names: ['grads', 'params'] });
      return [map((g: unknown, p: unknown) => add(asArrayLeaf(g), scale(asArrayLeaf(p), weightDecay)), grads, params) as never, state];
    },
  };
}

/** Scale all updates so their global L2 norm is at most maxNorm. */
export function clipByGlobalNorm(maxNorm: number): GradientTransformation<Record<string, never>> {
  return {
    init: () => ({}),
    update: (grads, state) => {
      const ls = leaves(grads).map(asArrayLeaf);
      if (ls.length === 0) return [grads as never, state];
      const sq = ls.map((g) => sum(square(g))).reduce((a, b) => add(a, b));
      const norm = sqrt(sq);
      // factor = maxNorm / max(norm, maxNorm): 1 when under the limit.
      const factor = div(maxNorm, maximum(norm, maxNorm));
      return [map((g: unknown) => mul(asArrayLeaf(g), factor), grads) as never, state];
    },
  };
}

/** Apply transformations in order; the state is the array of their states. */
export function chain(...ts: GradientTransformation<any>[]): GradientTransformation<unknown[]> {
  return {
    init: (params) => ts.map((t) => t.init(params)),
    update: (grads, state, params) => sealed(() => {
      if (!Array.isArray(state) || state.length !== ts.length) {
        throw new ValueError(`chain: expected a state of ${ts.length} parts (from init), got ${Array.isArray(state) ? state.length : typeof state}`);
      }
      let u: unknown = grads;
      const next = ts.map((t, i) => {
        const [nu, s] = t.update(u, state[i], params);
        u = nu;
        return s;
      });
      if (u === grads) u = map((g: unknown) => asArrayLeaf(g), grads);
      donateInputs(grads, u);
      return [u as never, next] as [never, unknown[]];
    }, arraysIn),
  };
}

/** The nodes of every NDArray in a result (what a sealed scope hands back). */
function arraysIn(result: unknown): ReturnType<typeof makeNode>[] {
  return leaves(result, { isLeaf: (x) => typeof x !== 'object' || x === null }).filter((x): x is NDArray => x instanceof NDArray).map((a) => a.node);
}

/** The grads given to update are consumed, unless an update leaf is the very same array. */
function donateInputs(grads: unknown, updates: unknown): void {
  const keep = new Set(leaves(updates));
  for (const g of leaves(grads)) if (g instanceof NDArray && !keep.has(g)) g.revoke(CONSUMED_BY_UPDATE);
}

export function sgd(lr: LearningRate, opts: { momentum?: number; nesterov?: boolean } = {}): GradientTransformation<unknown[]> {
  const parts: GradientTransformation<any>[] = [];
  if (opts.momentum) parts.push(traceMomentum(opts.momentum, opts.nesterov));
  parts.push(scaleByLearningRate(lr));
  return chain(...parts);
}

export function adam(lr: LearningRate, opts: AdamOptions = {}): GradientTransformation<unknown[]> {
  return chain(scaleByAdam(opts), scaleByLearningRate(lr));
}

export function adamw(lr: LearningRate, opts: AdamOptions & { weightDecay?: number } = {}): GradientTransformation<unknown[]> {
  return chain(scaleByAdam(opts), addDecayedWeights(opts.weightDecay ?? 1e-4), scaleByLearningRate(lr));
}

/** params + updates, leaf by leaf. Consumes both (their buffers are reused for the result). */
export function applyUpdates<P>(params: P, updates: unknown): MapLeaves<P, NDArray> {
  assertSameStructure(updates, params, { rootName: 'updates', names: ['updates', 'params'] });
  const out = sealed(() => map((p: unknown, u: unknown) => add(asArrayLeaf(p), asArrayLeaf(u)), params, updates), arraysIn);
  donate(params, CONSUMED_BY_APPLY);
  donate(updates, CONSUMED_BY_APPLY);
  // The end of a training step: dispatch it (src/exec/dispatch.ts), so the graph never spans steps.
  evaluator().flush();
  return out as MapLeaves<P, NDArray>;
}
