// jit: record a function's graph once per kind of input, then replay it.
//
// A call of a transformed function (valueAndGrad, an optimizer update) spends
// most of its JavaScript time deciding what to build: broadcasting and shape
// checks, the backward pass's VJP rules, pytree walks. For the same input
// structure, shapes and dtypes it builds the same nodes every time. jit runs f
// once under a trace, keeps the nodes it made as a flat recipe (primitive,
// params, shape, dtype and where each input comes from), and from then on a
// call only makes those nodes again over the new inputs and dispatches them:
// one submission per call, f itself never runs again.
//
// What keys a recipe (as JAX's jit): the arguments' tree structure, each array
// leaf's shape and dtype, and the value of each static argument (a constant of
// the recipe: a new value records a new one). A number leaf is traced, as JAX
// traces a Python scalar: f sees a 0-d float32 array, so an optimizer's step
// count or a learning rate passed in changes every call without retracing. Host data (a Float32Array, Int32Array or Uint8Array
// leaf) is an input like an array: it is uploaded with the call's submission and
// freed after it, so a loop feeding a fresh batch each step leaves nothing for
// the garbage collector.

import { DisposedArrayError, ValueError } from '../errors';
import { NDArray } from '../array/ndarray';
import { inScope, isComputed, makeNode, pruneUnsent, withNodeScope, type Node, type Shape } from '../array/node';
import { array, bind } from '../array/ops';
import { sealScope } from '../array/lifetime';
import { evaluator } from '../array/evaluator';
import { flatten, unflatten, type TreeDef } from '../tree/tree';
import type { DType, HostArray } from '../array/dtype';
import type { Prim } from '../array/prims';
import { plan } from '../exec/plan';
import { fitsHost } from '../exec/host-backend';
import { MAX_IN_FLIGHT, waitForQueue } from '../exec/dispatch';
import { checkFits } from '../gpu/backend';
import { runtimeNow, type Runtime } from '../gpu/runtime';
import { compileProgram, programsAllowed, runProgram, type Program, type ProgramInput } from '../gpu/program';

/** Options of jit: which arguments are static (keys of the recipe) and which are donated. */
export interface JitOptions {
  /** Positional arguments passed through as they are and keyed by value (any JS value; compared by JSON form). */
  staticArgnums?: number | readonly number[];
  /**
   * Positional arguments whose arrays the call consumes: they read as disposed
   * afterwards and their buffers go back to the pool once the call has read
   * them (as JAX's donation). Donate the old params and optimizer state of a
   * training step, and memory stays flat without dispose calls.
   */
  donateArgnums?: number | readonly number[];
}

/** How many recipes one jitted function keeps (least recently used dropped first). */
export const JIT_CACHE_SIZE = 16;

/** Where a recorded node's input comes from. */
type Source =
  | { kind: 'step'; index: number } // an earlier step of the recipe
  | { kind: 'input'; index: number } // the call's k-th array or host-data leaf
  | { kind: 'captured'; node: Node }; // an array from outside (a closure's constant)

interface Step {
  prim: Prim;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a primitive's own params, passed through untouched
  params: Record<string, any>;
  shape: Shape;
  dtype: DType;
  /** A constant made inside f: its host data. */
  cpu: HostArray | null;
  inputs: Source[];
}

export interface Recipe {
  steps: Step[];
  /** Output leaves: a step's index, or a constant (a non-array leaf f returned). */
  outputs: Array<{ step: number } | { value: unknown }>;
  outDef: TreeDef;
  /** The recipe compiled for the GPU (gpu/program.ts), once a call could; null until then. */
  program: Program | null;
  /** Calls whose recipe could not be compiled (pending inputs): past a few, it is not tried again. */
  failedCompiles: number;
  /** Its work is small enough for the host backend, which the general path uses (no program then). */
  onHost: boolean;
}

/** Compiling a recipe is given up after this many calls that could not compile it. */
const MAX_FAILED_COMPILES = 3;

/** An input leaf that is host data (uploaded by the call), not an array. */
function isHostData(x: unknown): x is Float32Array | Int32Array | Uint8Array {
  return x instanceof Float32Array || x instanceof Int32Array || x instanceof Uint8Array;
}

function argnumList(v: number | readonly number[] | undefined, what: string): number[] {
  const list = v === undefined ? [] : typeof v === 'number' ? [v] : [...v];
  for (const a of list) if (!Number.isInteger(a) || a < 0) throw new ValueError(`jit: ${what} must be non-negative integers; got ${String(a)}`);
  return list;
}

function staticKey(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'function' ? `fn:${x.name}` : x instanceof NDArray ? 'NDArray' : x)) ?? String(v);
  } catch {
    return String(v); // cyclic: fall back to identity-free text (two such values share a recipe only if they print alike)
  }
}

/** One flattened call: the dynamic leaves (arrays and host data), the treedef, and the cache key. */
export interface Call {
  leaves: unknown[];
  def: TreeDef;
  dynamic: number[]; // indices of array / host-data leaves
  key: string;
}

export function describeCall(args: unknown[], statics: ReadonlySet<number>): Call {
  const dynamicArgs = args.map((a, i) => (statics.has(i) ? null : a));
  const [leaves, def] = flatten(dynamicArgs, { isLeaf: isHostData, rootName: 'arguments' });
  const dynamic: number[] = [];
  const parts = leaves.map((l, i) => {
    if (l instanceof NDArray) {
      dynamic.push(i);
      return `a${l.dtype}[${l.shape.join(',')}]`;
    }
    if (isHostData(l)) {
      dynamic.push(i);
      return `h${l.constructor.name}[${l.length}]`;
    }
    if (typeof l === 'number') {
      dynamic.push(i);
      return 'afloat32[]'; // traced as a 0-d float32 input: the same recipe as for such an array
    }
    return `c${String(l)}`; // anything else (null, a string, a boolean): a constant of the recipe
  });
  const st = [...statics].sort((a, b) => a - b).map((i) => `${i}=${staticKey(args[i])}`);
  return { leaves, def, dynamic, key: `${def.toString()}|${parts.join(';')}|${st.join(';')}` };
}

/** Run f under a jit trace on stand-ins for the call's inputs and write down what it made. */
export function record(f: (...a: unknown[]) => unknown, args: unknown[], call: Call, statics: ReadonlySet<number>): Recipe {
  const inputOf = new Map<Node, number>();
  let outLeaves: unknown[] = [];
  let outDef: TreeDef | null = null;
  let failure: { error: unknown } | null = null;
  const [, created] = withNodeScope(() => {
    try {
      // Stand-ins: an identity node per array leaf, a constant of the right shape per host-data leaf.
      const stand = call.leaves.map((l, i) => {
        if (!call.dynamic.includes(i)) return l;
        const a = l instanceof NDArray ? bind('identity', [l], {}, l.shape) : array(l as HostArray | number);
        inputOf.set(a.node, call.dynamic.indexOf(i));
        return a;
      });
      const rebuilt = unflatten(call.def, stand) as unknown[];
      const traced = args.map((a, i) => (statics.has(i) ? a : rebuilt[i]));
      const out = f(...traced);
      if (out !== null && typeof out === 'object' && typeof (out as PromiseLike<unknown>).then === 'function') {
        void Promise.resolve(out).catch(() => {});
        throw new ValueError('jit: f returned a Promise: the function must be synchronous');
      }
      [outLeaves, outDef] = flatten(out, { rootName: 'the output' });
    } catch (error) {
      failure = { error };
    }
  }, 'jit');
  if (failure) {
    sealScope(created, []);
    throw (failure as { error: unknown }).error;
  }

  const index = new Map<Node, number>();
  const steps: Step[] = [];
  const mine = new Set(created);
  const needed = new Set<Node>();
  const stack = outLeaves.filter((l): l is NDArray => l instanceof NDArray).map((l) => l.node);
  while (stack.length) {
    const n = stack.pop()!;
    if (needed.has(n) || !mine.has(n)) continue;
    needed.add(n);
    if (!inputOf.has(n)) stack.push(...n.inputs);
  }
  const source = (n: Node): Source => {
    const k = index.get(n);
    return k !== undefined ? { kind: 'step', index: k } : { kind: 'captured', node: n };
  };
  for (const n of created) {
    if (!needed.has(n)) continue;
    index.set(n, steps.length);
    const input = inputOf.get(n);
    steps.push({
      // An input's stand-in (an identity node, or a constant for host data) replays as an identity over the input.
      prim: input !== undefined ? 'identity' : n.prim,
      params: input !== undefined ? {} : n.params,
      shape: n.shape,
      dtype: n.dtype,
      cpu: input === undefined && n.inputs.length === 0 ? n.cpu : null,
      inputs: input !== undefined ? [{ kind: 'input', index: input }] : n.inputs.map(source),
    });
  }
  const outputs = outLeaves.map((l) => {
    if (!(l instanceof NDArray)) return { value: l };
    const k = index.get(l.node);
    if (k === undefined) {
      // An array from outside returned as it is: an identity step, so the output is a handle of its own.
      steps.push({ prim: 'identity', params: {}, shape: l.node.shape, dtype: l.node.dtype, cpu: null, inputs: [{ kind: 'captured', node: l.node }] });
      return { step: steps.length - 1 };
    }
    return { step: k };
  });
  // The trace itself computes nothing: drop all of it (the call replays the recipe instead).
  sealScope(created, []);
  return { steps, outputs, outDef: outDef!, program: null, failedCompiles: 0, onHost: false };
}

/**
 * Make the recipe's nodes over these inputs, in the caller's scope: the output
 * leaves, a node per array leaf (each its own, even where f returned one
 * value twice) and the value of each constant leaf.
 */
export function replayNodes(r: Recipe, inputs: readonly Node[], bareInputs = false): Array<Node | { value: unknown }> {
  const made: Node[] = [];
  // bareInputs (a loop's iterations): an input's stand-in that is not returned as it is replays as
  // the input itself, so that the previous iteration's kernels see their readers (an identity
  // between them would hide them from fusion).
  const returned = bareInputs ? new Set(r.outputs.map((o) => ('step' in o ? o.step : -1))) : null;
  for (const [k, s] of r.steps.entries()) {
    const bare = s.prim === 'identity' && s.inputs.length === 1 && s.inputs[0]!.kind === 'input' && returned && !returned.has(k);
    if (bare) {
      made.push(inputs[(s.inputs[0] as { index: number }).index]!);
      continue;
    }
    const ins = s.inputs.map((src) => {
      if (src.kind === 'step') return made[src.index]!;
      if (src.kind === 'input') return inputs[src.index]!;
      if (src.node.dead) {
        throw new DisposedArrayError(`jit: an array the function captured (shape [${src.node.shape.join(', ')}]) was ${src.node.dead}`);
      }
      return src.node;
    });
    made.push(makeNode(s.prim, ins, s.params as never, s.shape, s.dtype, s.cpu));
  }
  const seen = new Set<number>();
  return r.outputs.map((o) => {
    if (!('step' in o)) return o;
    const n = made[o.step]!;
    const out = seen.has(o.step) ? makeNode('identity', [n], {}, n.shape, n.dtype) : n;
    seen.add(o.step);
    return out;
  });
}

/** Replay the recipe as one sealed scope whose outputs are computed together; returns the output tree. */
function replay(r: Recipe, inputs: Node[]): unknown {
  const [outLeaves, created] = withNodeScope(() => replayNodes(r, inputs));
  const outNodes = outLeaves.filter((o): o is Node => !('value' in o));
  sealScope(created, outNodes);
  for (const n of outNodes) n.group = outNodes; // computed together: one submission
  return outputTree(r, outLeaves);
}

/** The output tree of a call whose array outputs are these nodes. */
function outputTree(r: Recipe, nodes: Array<Node | { value: unknown }>): unknown {
  return unflatten(
    r.outDef,
    nodes.map((o) => ('value' in o ? o.value : new NDArray(o))),
  );
}

/**
 * The fast path: run the recipe's compiled program, compiling it first if
 * this call can (every input computed, nothing in a transformation). Null
 * when the call must take the general path (replay the nodes, dispatch).
 */
function runCompiled(recipe: Recipe, inputs: ProgramInput[], consumed: ReadonlySet<Node>): unknown {
  const r = runtimeNow();
  if (!r || inScope() || !programsAllowed(r)) return null;
  if (!recipe.program || recipe.program.runtime !== r) {
    if (recipe.onHost || recipe.failedCompiles >= MAX_FAILED_COMPILES) return null;
    recipe.program = compileRecipe(recipe, inputs, r);
    if (!recipe.program) {
      recipe.failedCompiles++;
      return null;
    }
  }
  const outs = runProgram(recipe.program, inputs, consumed);
  if (!outs) return null;
  if (r.submitted - r.finished >= MAX_IN_FLIGHT) waitForQueue(r); // keep the count of finished submissions current
  let k = 0;
  return outputTree(
    recipe,
    recipe.outputs.map((o) => ('step' in o ? outs[k++]! : o)),
  );
}

/** Make the recipe's nodes over the inputs, plan them and record the plan as a program; the nodes are then dropped. */
function compileRecipe(recipe: Recipe, inputs: ProgramInput[], r: Runtime): Program | null {
  if (inputs.some((x) => 'prim' in x && !isComputed(x))) return null;
  const [[nodes, outs], created] = withNodeScope(() => {
    const ns = inputs.map((x) => ('prim' in x ? x : array(x).node));
    return [ns, replayNodes(recipe, ns).filter((o): o is Node => !('value' in o))] as const;
  });
  try {
    const p = plan(outs);
    checkFits(p, [], r);
    if (fitsHost(p, [])) {
      recipe.onHost = true; // a GPU round trip would cost more than the work
      return null;
    }
    return compileProgram(r, p, new Set(created), nodes, outs);
  } catch {
    return null; // the general path plans it again and reports the error
  } finally {
    sealScope(created, []);
    pruneUnsent();
  }
}

/** An argument of a jitted function: where f takes an NDArray, host data and numbers are accepted too. */
export type JitArg<T> = T extends NDArray
  ? NDArray | Float32Array | Int32Array | Uint8Array | number
  : T extends (...a: never[]) => unknown
    ? T
    : T extends object
      ? { [K in keyof T]: JitArg<T[K]> }
      : T;

/**
 * A jitted f: f's results, host data accepted for its arrays, and the number of recipes it holds.
 * @typeParam F - the type of the function that was jitted
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any argument list and result (pytrees)
export type Jitted<F extends (...args: any[]) => any> = ((...args: JitArg<Parameters<F>>) => ReturnType<F>) & {
  /** How many recipes (kinds of input) this function holds now, at most JIT_CACHE_SIZE. */
  cacheSize: () => number;
};

/**
 * JAX's jit: `jit(f)` returns a function with f's results that records f's
 * graph on the first call for each kind of input (tree structure, shapes,
 * dtypes, static arguments' values) and replays it afterwards, without
 * running f. Results are the same numbers as calling f (the same kernels
 * run). Inside f, reading an array's values is a ConcretizationError. Number
 * leaves are traced as 0-d float32 arrays (list an argument in staticArgnums
 * to keep it a number); host data leaves (Float32Array, Int32Array,
 * Uint8Array) are inputs, uploaded per call, as 1-D arrays (reshape them
 * inside f).
 * @typeParam F - the type of the function to jit
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any argument list and result (pytrees)
export function jit<F extends (...args: any[]) => any>(f: F, opts: JitOptions = {}): Jitted<F> {
  if (typeof f !== 'function') throw new ValueError(`jit: f must be a function; got ${f === null ? 'null' : typeof f}`);
  const statics = new Set(argnumList(opts.staticArgnums, 'staticArgnums'));
  const donated = argnumList(opts.donateArgnums, 'donateArgnums');
  for (const d of donated) if (statics.has(d)) throw new ValueError(`jit: argument ${d} cannot be both static and donated`);
  const cache = new Map<string, Recipe>();
  const jitted = (...args: unknown[]) => {
    for (const d of donated) {
      if (d >= args.length) throw new ValueError(`jit: donateArgnums ${d} is out of range for a call with ${args.length} arguments`);
    }
    const call = describeCall(args, statics);
    // Every input usable before anything is made (a disposed leaf is an error naming it).
    const inputs = call.dynamic.map((i) => {
      const l = call.leaves[i];
      if (!(l instanceof NDArray)) return null;
      try {
        return l.use();
      } catch (e) {
        if (e instanceof DisposedArrayError) throw new DisposedArrayError(`jit: ${call.def.paths()[i] || 'the argument'}: ${e.message}`);
        throw e;
      }
    });
    let recipe = cache.get(call.key);
    if (recipe) {
      cache.delete(call.key); // most recently used last
    } else {
      recipe = record(f as (...a: unknown[]) => unknown, args, call, statics);
      if (cache.size >= JIT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
    }
    cache.set(call.key, recipe);
    const host = call.dynamic.map((i, k) => {
      if (inputs[k]) return inputs[k];
      const l = call.leaves[i] as HostArray | number;
      return typeof l === 'number' ? Float32Array.of(l) : l;
    });
    // Donated arrays nothing else reads: freed after their last reader, inside the call.
    const donatedLeaves = donated.flatMap((d) => flatten(args[d], { isLeaf: isHostData })[0].filter((l): l is NDArray => l instanceof NDArray));
    const consumed = new Set<Node>();
    if (donatedLeaves.length) {
      const kept = new Set(
        call.dynamic
          .map((i) => call.leaves[i])
          .filter((l) => l instanceof NDArray && !donatedLeaves.includes(l))
          .map((l) => (l as NDArray).node),
      );
      for (const l of donatedLeaves) if (l.isHolder && l.node.consumers === 0 && !kept.has(l.node)) consumed.add(l.node);
    }
    let out = runCompiled(recipe, host, consumed);
    if (out === null) {
      // Host data and numbers: constants no handle holds, freed once the call's kernels have read them.
      const uploads: Node[] = [];
      const nodes = host.map((x) => {
        if ('prim' in x) return x;
        const n = array(x).node;
        uploads.push(n);
        return n;
      });
      out = replay(recipe, nodes);
      sealScope(uploads, []);
    }
    for (const l of donatedLeaves) l.revoke('donated to a jitted function (donateArgnums)');
    evaluator().flush();
    return out;
  };
  return Object.assign(jitted, { cacheSize: () => cache.size }) as unknown as Jitted<F>;
}
