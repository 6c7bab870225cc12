// On-device loops: lax.fori_loop and lax.scan.
//
// The body is recorded once (as jit records a function) and its recipe is
// replayed once per iteration, each iteration's carry feeding the next, all in
// one graph: the whole loop is planned, fused and submitted together, so K
// training steps cost one submission and the body's JavaScript (its VJP rules,
// broadcasting, pytree walks) runs once instead of K times. A loop whose graph
// would pass LOOP_CHUNK_NODES nodes is cut into chunks of whole iterations, one
// submission each, so the pending graph stays bounded however long the loop.
//
// Inside a trace (grad, vjp, or an enclosing jit recording) the body is simply
// called once per iteration: the loop unrolls into the trace, so gradients flow
// through it and an enclosing jit records the unrolled loop.

import { DTypeError, ShapeError, TreeStructureError, ValueError } from '../errors';
import { NDArray } from '../array/ndarray';
import { traceKind, withNodeScope, type Node } from '../array/node';
import { array, full, reshape, slice } from '../array/ops';
import { concatenate, stack } from '../array/shape-ops';
import { sealScope } from '../array/lifetime';
import { evaluator } from '../array/evaluator';
import { flatten, unflatten, type TreeDef } from '../tree/tree';
import { describeCall, record, replayNodes } from './jit';

/** Past this many nodes a loop's graph is submitted and the next iterations start a new one. */
export const LOOP_CHUNK_NODES = 32768;

const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

/** The carry as arrays (a number leaf becomes a 0-d float32 array, as JAX makes it a traced scalar). */
function carryLeaves(init: unknown, who: string): [NDArray[], TreeDef] {
  const [leaves, def] = flatten(init, { rootName: 'the carry' });
  const paths = def.paths();
  const arrays = leaves.map((l, i) => {
    if (l instanceof NDArray) return l;
    if (typeof l === 'number') return array(l);
    throw new ValueError(`${who}: the carry's leaf ${paths[i] || '(root)'} is ${l === null ? 'null' : typeof l}, not an array or a number`);
  });
  return [arrays, def];
}

/**
 * Check a body's output carry against the carry that went in (JAX: "body_fun
 * output and input must have identical types"); numbers become arrays where
 * the carry holds a 0-d float32 array. Returns the carry as arrays.
 */
function checkCarry(out: unknown, def: TreeDef, like: readonly NDArray[], who: string): NDArray[] {
  const [leaves, outDef] = flatten(out, { rootName: 'the carry' });
  if (outDef.toString() !== def.toString()) {
    throw new TreeStructureError(`${who}: the body returned a carry of structure ${outDef.toString()}; it went in as ${def.toString()}`);
  }
  const paths = def.paths();
  return leaves.map((l, i) => {
    const want = like[i]!;
    const name = paths[i] || 'the carry';
    const a = typeof l === 'number' && want.ndim === 0 && want.dtype === 'float32' ? array(l) : l;
    if (!(a instanceof NDArray)) throw new ValueError(`${who}: the body returned ${typeof l} for ${name}, which went in as an array`);
    if (a.ndim !== want.ndim || a.shape.some((d, k) => d !== want.shape[k])) {
      throw new ShapeError(`${who}: the body returned ${name} with shape ${fmt(a.shape)}; it went in as ${fmt(want.shape)}`);
    }
    if (a.dtype !== want.dtype) throw new DTypeError(`${who}: the body returned ${name} as ${a.dtype}; it went in as ${want.dtype}`);
    return a;
  });
}

function loopIndex(k: number): NDArray {
  return array(Int32Array.of(k), []);
}

/**
 * Run `body(i, carry)` for i = lower … upper - 1 (an int32 0-d array), each
 * call's result the next one's carry; returns the last carry (`init` if the
 * range is empty). The carry is any pytree of arrays (numbers become 0-d
 * float32 arrays); the body must return the same structure, shapes and dtypes.
 * The body is traced once and the loop goes to the GPU as one submission (per
 * LOOP_CHUNK_NODES nodes). JAX's lax.fori_loop.
 */
export function foriLoop<C>(lower: number, upper: number, body: (i: NDArray, carry: C) => C, init: C): C {
  if (!Number.isInteger(lower) || !Number.isInteger(upper)) {
    throw new ValueError(`foriLoop: lower and upper must be integers; got ${String(lower)} and ${String(upper)}`);
  }
  if (typeof body !== 'function') throw new ValueError('foriLoop: body must be a function (i, carry) => carry');
  if (upper <= lower) return init;
  const [carry0, def] = carryLeaves(init, 'foriLoop');
  const out = runLoop({
    K: upper - lower,
    carry0,
    body: (c, [i]) => [checkCarry(body(i!, unflatten(def, c) as C), def, carry0, 'foriLoop'), []],
    inputsAt: (k) => [loopIndex(lower + k)],
    standIns: () => [loopIndex(lower)],
  });
  return unflatten(def, out.carry) as C;
}

/**
 * JAX's lax.scan: for each slice x of `xs` along its leading axis (every leaf
 * of the pytree `xs` has the same length; `length` when xs is null),
 * `[carry, y] = f(carry, x)`; returns the last carry and the ys stacked along
 * a new leading axis. K minibatches stacked in one array train K steps in one
 * call, returning the K losses. Traced once; one submission (per
 * LOOP_CHUNK_NODES nodes).
 */
export function scan<C, X, Y>(f: (carry: C, x: X) => [C, Y], init: C, xs: X, length?: number): [C, Y] {
  if (typeof f !== 'function') throw new ValueError('scan: f must be a function (carry, x) => [carry, y]');
  const [carry0, def] = carryLeaves(init, 'scan');
  const [xLeaves, xDef] = flatten(xs ?? null, { rootName: 'xs' });
  const xPaths = xDef.paths();
  xLeaves.forEach((l, i) => {
    if (!(l instanceof NDArray) || l.ndim === 0) {
      throw new ValueError(`scan: xs leaf ${xPaths[i] || '(root)'} must be an array with a leading axis to scan over`);
    }
  });
  const xsArrays = xLeaves as NDArray[];
  if (length !== undefined && (!Number.isInteger(length) || length < 0)) {
    throw new ValueError(`scan: length must be a non-negative integer; got ${String(length)}`);
  }
  const lengths = new Set([...xsArrays.map((x) => x.shape[0]!), ...(length !== undefined ? [length] : [])]);
  if (lengths.size === 0) throw new ValueError('scan: xs has no arrays, so pass length');
  if (lengths.size > 1) throw new ShapeError(`scan: xs leaves and length disagree on the number of steps: ${[...lengths].join(', ')}`);
  let yDef: TreeDef | null = null;
  const out = runLoop({
    K: [...lengths][0]!,
    carry0,
    body: (c, x) => {
      const res = f(unflatten(def, c) as C, unflatten(xDef, x) as X);
      if (!Array.isArray(res) || res.length !== 2) throw new ValueError('scan: f must return [carry, y]');
      const [yLeaves, d] = flatten(res[1], { rootName: 'y' });
      if (yDef && d.toString() !== yDef.toString()) {
        throw new TreeStructureError(`scan: f returned y of structure ${d.toString()}, then ${yDef.toString()}`);
      }
      yDef = d;
      const ys = yLeaves.map((l) => {
        if (l instanceof NDArray) return l;
        if (typeof l === 'number') return array(l);
        throw new ValueError(`scan: every leaf of y must be an array or a number; got ${l === null ? 'null' : typeof l}`);
      });
      return [checkCarry(res[0], def, carry0, 'scan'), ys];
    },
    inputsAt: (k) => xsArrays.map((x) => reshape(slice(x, [k], [k + 1]), x.shape.slice(1))),
    // Shaped like one slice, for the record (and an empty scan's ys); never computed.
    standIns: () => xsArrays.map((x) => full(x.shape.slice(1), 0, x.dtype)),
  });
  return [unflatten(def, out.carry) as C, unflatten(yDef!, out.ys) as Y];
}

interface Loop {
  K: number;
  carry0: NDArray[];
  /** One iteration over flat leaves: the carry and this iteration's inputs in, the carry and its ys out. */
  body: (carry: NDArray[], x: NDArray[]) => [NDArray[], NDArray[]];
  /** Iteration k's inputs besides the carry (foriLoop: i; scan: the slices of xs). */
  inputsAt: (k: number) => NDArray[];
  /** Arrays shaped like one iteration's inputs, to record the body over. */
  standIns: () => NDArray[];
}

/** Run a loop: unrolled inside a trace, else recorded once and replayed per iteration in chunks. */
function runLoop(l: Loop): { carry: NDArray[]; ys: NDArray[] } {
  if (traceKind() !== null) {
    let c = l.carry0;
    const ys: NDArray[][] = [];
    for (let k = 0; k < l.K; k++) {
      const [next, y] = l.body(c, l.inputsAt(k));
      c = next;
      ys.push(y);
    }
    if (l.K === 0) return { carry: c, ys: l.body(c, l.standIns())[1].map((y) => full([0, ...y.shape], 0, y.dtype)) };
    return { carry: c, ys: stackEach(ys) };
  }

  const nC = l.carry0.length;
  const stand = l.standIns();
  const args = [l.carry0, stand];
  let recipe;
  try {
    recipe = record((c, x) => l.body(c as NDArray[], x as NDArray[]), args, describeCall(args, new Set()), new Set());
  } finally {
    for (const s of stand) s.dispose();
  }
  const outs = recipe.outputs.map((o) => ('step' in o ? recipe.steps[o.step]! : null));
  if (l.K === 0) return { carry: l.carry0, ys: outs.slice(nC).map((s) => full([0, ...s!.shape], 0, s!.dtype)) };

  const perIteration = recipe.steps.length + 2 * stand.length + 1;
  const chunk = Math.max(1, Math.floor(LOOP_CHUNK_NODES / perIteration));
  let carry = l.carry0.map((a) => a.use());
  let owned: NDArray[] = []; // the loop's own handles on a chunk's last carry (not the user's init)
  const yChunks: NDArray[][] = [];
  for (let start = 0; start < l.K; start += chunk) {
    const end = Math.min(l.K, start + chunk);
    const [res, created] = withNodeScope(() => {
      let c = carry;
      const ys: Node[][] = [];
      for (let k = start; k < end; k++) {
        const made = replayNodes(recipe, [...c, ...l.inputsAt(k).map((a) => a.use())], true) as Node[];
        c = made.slice(0, nC);
        for (const n of c) n.materialize = true;
        ys.push(made.slice(nC));
      }
      const stacked = stackEach(ys.map((y) => y.map((n) => new NDArray(n))));
      return { c, stacked };
    });
    const outNodes = [...res.c, ...res.stacked.map((s) => s.node)];
    sealScope(created, outNodes);
    for (const n of outNodes) n.group = outNodes; // computed together: one submission
    const next = res.c.map((n) => new NDArray(n));
    for (const h of owned) h.dispose(); // pending readers keep its value until they have run
    owned = next;
    carry = res.c;
    yChunks.push(res.stacked);
    evaluator().flush();
  }
  if (yChunks.length === 1) return { carry: owned, ys: yChunks[0]! };
  const ys = yChunks[0]!.map((_, j) => concatenate(yChunks.map((c) => c[j]!)));
  for (const c of yChunks) for (const y of c) y.dispose();
  return { carry: owned, ys };
}

/** Per y leaf, its value from every iteration (ys[k][j]: iteration k, leaf j) stacked along a new leading axis. */
function stackEach(ys: NDArray[][]): NDArray[] {
  return ys[0]!.map((_, j) => stack(ys.map((y) => y[j]!)));
}
