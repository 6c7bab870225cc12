// grad, valueAndGrad and vjp: JAX's transformations over pytrees.
//
// Tracing is just running f: ops record nodes of the lazy graph. Each leaf
// of the differentiated arguments is replaced by a fresh identity node (the
// target), backward() records the VJP graph, and the outputs (value, aux,
// gradients) form one evaluation group, so reading any of them runs forward
// and backward as one submission. Every other node the trace created is
// marked internal: nobody outside can read it, so its buffer is recycled as
// soon as its last reader is encoded.

import { DTypeError, GradError, TreeError } from '../errors';
import { NDArray } from '../array/ndarray';
import { isComputed, withNodeScope, type Node } from '../array/node';
import { array, bind, full } from '../array/ops';
import { flatten, isContainer, unflatten, leaves as treeLeaves, type MapLeaves } from '../tree/tree';
import { backward } from './backward';
import { pinWhileAlive, sealScope } from '../array/lifetime';

/** Options of grad and valueAndGrad: argnums and hasAux, as in JAX. */
export interface GradOptions {
  /** Which positional argument(s) to differentiate: a number (default 0) or an array of numbers. */
  argnums?: number | readonly number[];
  /** f returns [loss, aux]; aux is passed through undifferentiated. */
  hasAux?: boolean;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any argument list and result (pytrees); typed by the overloads
type Fn = (...args: any[]) => any;
type Grads<F extends Fn, A> = A extends number
  ? MapLeaves<Parameters<F>[A], NDArray>
  : A extends readonly number[]
    ? { [K in keyof A]: A[K] extends number ? MapLeaves<Parameters<F>[A[K]], NDArray> : never }
    : MapLeaves<Parameters<F>[0], NDArray>;
/** One gradient pytree per primal (a homomorphic mapped type over a type parameter, so a tuple maps to a tuple). */
type PrimalGrads<P> = { [K in keyof P]: MapLeaves<P[K], NDArray> };
/** aux's type: the second element of f's [loss, aux] (a tuple, readonly or not; an array literal inferred as an array gives its element type). */
type AuxOf<F extends Fn> =
  ReturnType<F> extends readonly [unknown, infer X]
    ? X
    : ReturnType<F> extends readonly (infer E)[]
      ? [Exclude<E, NDArray>] extends [never]
        ? E
        : Exclude<E, NDArray>
      : never;

function checkFn(f: unknown, name: string): void {
  if (typeof f !== 'function') throw new GradError(`${name}: f must be a function; got ${f === null ? 'null' : typeof f}`);
}

function checkArgnums(argnums: number | readonly number[], nargs: number, name: string): number[] {
  const list = typeof argnums === 'number' ? [argnums] : [...argnums];
  if (list.length === 0) throw new GradError(`${name}: argnums must not be empty`);
  for (const a of list) {
    if (!Number.isInteger(a) || a < 0 || a >= nargs) {
      throw new GradError(`${name}: argnums ${a} is out of range for a call with ${nargs} positional argument${nargs === 1 ? '' : 's'}`);
    }
  }
  if (new Set(list).size !== list.length) throw new GradError(`${name}: repeated argnums [${list.join(', ')}]`);
  return list;
}

/** Replace every leaf of args[i] (i in argnums) with a fresh identity node to differentiate against. */
function makeTargets(args: unknown[], argnums: number[], name: string) {
  const newArgs = [...args];
  const targets: Node[][] = [];
  const defs = argnums.map((i) => {
    let leaves: unknown[];
    let def;
    try {
      [leaves, def] = flatten(args[i], { rootName: `argument ${i}` });
    } catch (e) {
      if (e instanceof TreeError) throw new GradError(`${name}: cannot differentiate argument ${i}: ${e.message}`);
      throw e;
    }
    if (leaves.length === 0) throw new GradError(`${name}: argument ${i} (argnums) contains no arrays to differentiate`);
    leaves.forEach((l, k) => {
      if (l instanceof NDArray && l.dtype !== 'float32') {
        const path = def.paths()[k];
        throw new DTypeError(
          `${name}: argument ${i}${path ? ` at ${path}` : ''} is ${l.dtype}; gradients are defined for float32 inputs only (as in JAX). ` +
            'Leave integer data out of argnums, or astype it to float32',
        );
      }
    });
    const ids = leaves.map((l) => bind('identity', [l instanceof NDArray ? l : array(l as number)], {}, l instanceof NDArray ? l.shape : []));
    targets.push(ids.map((a) => a.node));
    newArgs[i] = unflatten(def, ids);
    return def;
  });
  return { newArgs, targets, defs };
}

function splitOutput(out: unknown, hasAux: boolean, name: string): [NDArray, unknown] {
  if (out !== null && typeof out === 'object' && typeof (out as PromiseLike<unknown>).then === 'function') {
    // What an async function does after its first await runs later, on arrays this trace has
    // already dropped: whatever it throws then is caught here, so it cannot end the process.
    void Promise.resolve(out).catch(() => {});
    throw new GradError(
      `${name}: f returned a Promise: the function must be synchronous (an async function's awaits resume after the trace has ended)`,
    );
  }
  let loss = out;
  let aux: unknown;
  if (hasAux) {
    if (!Array.isArray(out) || out.length !== 2) {
      throw new GradError(
        `${name} with hasAux: f must return a pair [loss, aux]; got ${Array.isArray(out) ? `an array of length ${out.length}` : typeof out}`,
      );
    }
    [loss, aux] = out;
  }
  if (!(loss instanceof NDArray)) {
    throw new GradError(
      `${name} requires f to return a scalar NDArray${hasAux ? ' as the first element' : ''}; got ${loss === null ? 'null' : typeof loss}`,
    );
  }
  if (loss.dtype !== 'float32') throw new DTypeError(`${name} requires a float32 output; got ${loss.dtype} (astype it to float32)`);
  if (loss.ndim !== 0) {
    throw new GradError(
      `${name} requires a scalar output; got shape [${loss.shape.join(', ')}] (reduce it with sum or mean; shape [1] is not a scalar, as in JAX)`,
    );
  }
  return [loss, aux];
}

/** Mark what the trace created as internal, except the outputs, which become one evaluation group. */
function seal(created: Node[], outputs: NDArray[]): void {
  const group = [...new Set(outputs.map((a) => a.node))];
  sealScope(created, group);
  for (const n of group) n.group = group;
}

/**
 * withNodeScope, except that when fn throws, what it had traced is dropped
 * (else those pending nodes would pin their inputs: a later dispose of the
 * params could never free their buffers).
 */
function scoped<T>(fn: () => T): [T, Node[]] {
  let failure: { error: unknown } | null = null;
  const [res, created] = withNodeScope(() => {
    try {
      return fn();
    } catch (error) {
      failure = { error };
      return null;
    }
  }, true);
  if (failure) {
    sealScope(created, []);
    throw (failure as { error: unknown }).error;
  }
  return [res as T, created];
}

/**
 * One node per gradient leaf. A cotangent that passes through rules unchanged
 * (add, add_scalar, identity) can reach several targets as the same node, or
 * be the caller's own cotangent (vjp); handed out as one shared handle,
 * disposing or donating one leaf (an optimizer update does) would kill the
 * others. Every leaf whose node is shared (with another leaf or with a node
 * in `taken`) becomes its own identity node: the same buffer, no kernel. All
 * of them, the first included, so the shared node is only read through
 * aliases and is materialised once, never fused into one reader's kernel
 * while another reader is still pending.
 */
function distinct(gs: NDArray[], taken: ReadonlySet<Node>): NDArray[] {
  const count = new Map<Node, number>();
  for (const g of gs) count.set(g.node, (count.get(g.node) ?? 0) + 1);
  return gs.map((g) => (count.get(g.node)! > 1 || taken.has(g.node) ? bind('identity', [g], {}, g.shape) : g));
}

/** Trace f and its VJP. `withValue`: the loss is an output too (valueAndGrad); grad drops the forward's tail. */
function trace(f: Fn, opts: GradOptions, args: unknown[], name: string, withValue: boolean) {
  const argnums = opts.argnums ?? 0;
  const list = checkArgnums(argnums, args.length, name);
  const [res, created] = scoped(() => {
    const { newArgs, targets, defs } = makeTargets(args, list, name);
    const [loss, aux] = splitOutput(f(...newArgs), !!opts.hasAux, name);
    const all = new Set(targets.flat());
    const cts = backward([loss.node], [full([], 1)], all);
    const flat = distinct(
      targets.flat().map((t) => cts.get(t) ?? full(t.shape, 0)),
      new Set([loss.node]),
    );
    let at = 0;
    const grads = targets.map((ids, k) => unflatten(defs[k]!, flat.slice(at, (at += ids.length))));
    return { loss, aux, grads: typeof argnums === 'number' ? grads[0] : grads };
  });
  // aux may hold anything (as in JAX, an object that is not a container is a leaf): only its arrays matter here.
  let auxArrays: NDArray[];
  try {
    auxArrays = treeLeaves(res.aux ?? null, { isLeaf: (x) => !isContainer(x) }).filter((x): x is NDArray => x instanceof NDArray);
  } catch (e) {
    sealScope(created, []); // (a cyclic aux) drop the trace, so it pins no buffer
    throw e instanceof TreeError ? new GradError(`${name} with hasAux: ${e.message}`) : e;
  }
  seal(created, [...(withValue ? [res.loss] : []), ...auxArrays, ...(treeLeaves(res.grads) as NDArray[])]);
  return res;
}

/** The gradient of a scalar function with respect to argument(s) `argnums`, in the same pytree structure. */
export function grad<F extends Fn, const A extends number | readonly number[] = 0>(
  f: F,
  opts?: GradOptions & { argnums?: A; hasAux?: false },
): (...args: Parameters<F>) => Grads<F, A>;
export function grad<F extends Fn, const A extends number | readonly number[] = 0>(
  f: F,
  opts: GradOptions & { argnums?: A; hasAux: true },
): (...args: Parameters<F>) => [Grads<F, A>, AuxOf<F>];
export function grad(f: Fn, opts: GradOptions = {}) {
  checkFn(f, 'grad');
  return (...args: unknown[]) => {
    const r = trace(f, opts, args, 'grad', false);
    return opts.hasAux ? [r.grads, r.aux] : r.grads;
  };
}

/** [value, grads], or [[value, aux], grads] with hasAux. */
export function valueAndGrad<F extends Fn, const A extends number | readonly number[] = 0>(
  f: F,
  opts?: GradOptions & { argnums?: A; hasAux?: false },
): (...args: Parameters<F>) => [NDArray, Grads<F, A>];
export function valueAndGrad<F extends Fn, const A extends number | readonly number[] = 0>(
  f: F,
  opts: GradOptions & { argnums?: A; hasAux: true },
): (...args: Parameters<F>) => [[NDArray, AuxOf<F>], Grads<F, A>];
export function valueAndGrad(f: Fn, opts: GradOptions = {}) {
  checkFn(f, 'valueAndGrad');
  return (...args: unknown[]) => {
    const r = trace(f, opts, args, 'valueAndGrad', true);
    return opts.hasAux ? [[r.loss, r.aux], r.grads] : [r.loss, r.grads];
  };
}

/**
 * `[out, vjpFn]`: out = f(...primals); vjpFn(cotangent shaped like out) returns
 * one gradient pytree per primal. The trace's intermediates stay alive while
 * vjpFn is reachable.
 */
export function vjp<F extends Fn>(
  f: F,
  ...primals: Parameters<F>
): [ReturnType<F>, (ct: MapLeaves<ReturnType<F>, NDArray>) => PrimalGrads<Parameters<F>>] {
  const argnums = primals.map((_, i) => i);
  const [res, created] = scoped(() => {
    const { newArgs, targets, defs } = makeTargets(primals, argnums, 'vjp');
    return { out: f(...newArgs), targets, defs };
  });
  const [outLeaves, outDef] = flatten(res.out);
  outLeaves.forEach((o, i) => {
    if (!(o instanceof NDArray)) {
      sealScope(created, []);
      throw new GradError(`vjp: f must return NDArrays (in any pytree); output leaf ${i} (${outDef.paths()[i] || 'the output'}) is a ${typeof o}`);
    }
  });
  // The graph as traced: reading `out` before calling vjpFn computes these
  // nodes, and the executor then drops their input edges.
  const savedInputs = new Map(created.map((n) => [n, [...n.inputs]] as const));
  const vjpFn = (ct: unknown) => {
    const [ctLeaves, ctDef] = flatten(ct);
    if (!ctDef.equals(outDef)) {
      throw new GradError(`vjp: the cotangent's structure ${ctDef.toString()} does not match the output's ${outDef.toString()}`);
    }
    (outLeaves as NDArray[]).forEach((o, i) => {
      const c = ctLeaves[i] as NDArray;
      if (!(c instanceof NDArray) || c.shape.join() !== o.shape.join()) {
        throw new GradError(
          `vjp: cotangent leaf ${i} has shape [${c instanceof NDArray ? c.shape.join(', ') : typeof c}], expected [${o.shape.join(', ')}]`,
        );
      }
    });
    const all = new Set(res.targets.flat());
    const cts = backward(
      (outLeaves as NDArray[]).map((o) => o.node),
      ctLeaves as NDArray[],
      all,
      savedInputs,
    );
    const flat = distinct(
      res.targets.flat().map((t) => cts.get(t) ?? full(t.shape, 0)),
      new Set((ctLeaves as NDArray[]).map((c) => c.node)),
    );
    // One evaluation group, as for grad: reading any gradient computes them all in one submission.
    const group = [...new Set(flat.map((g) => g.node))].filter((n) => !isComputed(n));
    for (const n of group) n.group = group;
    let at = 0;
    return res.targets.map((ids, k) => unflatten(res.defs[k]!, flat.slice(at, (at += ids.length))));
  };
  pinWhileAlive(vjpFn, created);
  return [res.out, vjpFn as never];
}
