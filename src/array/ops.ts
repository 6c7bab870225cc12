// The op functions users call. Each validates its arguments (shape rules,
// with errors that name the op and the shapes), then binds a primitive: makes
// a node of the lazy graph. Derived ops (mean, sumTo, matmul of vectors, ...)
// are compositions of primitives, written here in TypeScript.

import { IndexError, ShapeError, ValueError } from '../errors';
import { currentContext } from '../gpu/device';
import { NDArray, type NestedArray } from './ndarray';
import { makeNode, sizeOf, type Shape } from './node';
import type { Prim, PrimParams } from './prims';

/** An NDArray, or a number standing for a 0-d array. */
export type ArrayOrScalar = NDArray | number;

const fmt = (s: Shape) => `[${s.join(', ')}]`;

/** Make a node for primitive `prim` and return the user's handle to it. */
export function bind<P extends Prim>(prim: P, inputs: NDArray[], params: PrimParams[P], shape: Shape): NDArray {
  inputs.forEach((x, i) => need(x, prim, `argument ${i}`));
  if (shape.length > MAX_RANK)
    throw new ShapeError(`${prim}: rank ${shape.length} (shape ${fmt(shape)}) is over the ${MAX_RANK} dimensions the kernels index`);
  currentContext(); // throws DeviceLostError once the device is gone
  const nodes = inputs.map((x) => x.use());
  return new NDArray(makeNode(prim, nodes, params, shape));
}

/** Most dimensions an array may have (the kernels index up to 8). */
export const MAX_RANK = 8;

/** `x` must be an NDArray: else a ValueError naming the op and the argument (not a TypeError from inside). */
export function need(x: unknown, op: string, what = 'its argument'): NDArray {
  if (x instanceof NDArray) return x;
  const got = x === null ? 'null' : Array.isArray(x) ? 'a JS array (wrap it with array(...))' : typeof x;
  throw new ValueError(`${op}: ${what} must be an NDArray; got ${got}`);
}

function checkShape(shape: readonly number[], op: string): number[] {
  if (!Array.isArray(shape)) throw new ValueError(`${op}: shape must be an array of integers, got ${String(shape)}`);
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0) {
      throw new ValueError(`${op}: shape ${fmt(shape)} has an invalid size ${String(d)} (sizes are non-negative integers)`);
    }
  }
  if (shape.length > MAX_RANK) throw new ShapeError(`${op}: rank ${shape.length} is over the ${MAX_RANK} dimensions the kernels index`);
  return [...shape];
}

// ---------------------------------------------------------------- creation

/**
 * An array from nested JS arrays, a flat Float32Array/number[] plus shape, or
 * a number (a 0-d array). Data is uploaded lazily, with the first GPU work.
 */
export function array(data: NestedArray | Float32Array | ArrayLike<number> | NDArray, shape?: readonly number[]): NDArray {
  if (data instanceof NDArray) return shape ? reshape(data, shape) : data;
  let flat: Float32Array;
  let inferred: number[];
  if (typeof data === 'number') {
    flat = new Float32Array([data]);
    inferred = [];
  } else if (ArrayBuffer.isView(data) && !(data instanceof DataView)) {
    const view: unknown = data;
    if (view instanceof BigInt64Array || view instanceof BigUint64Array) {
      throw new ValueError(`array: a ${view.constructor.name} holds BigInts; convert it to numbers (a Float32Array) first`);
    }
    flat = Float32Array.from(data as unknown as ArrayLike<number>);
    inferred = [flat.length];
  } else if (Array.isArray(data)) {
    [flat, inferred] = flattenNested(data as NestedArray[]);
  } else {
    const got =
      data === null ? 'null' : typeof data === 'string' ? 'a string' : typeof data === 'object' ? 'an object that is not an array' : typeof data;
    throw new ValueError(`array: expected a number, nested arrays of numbers, a typed array (Float32Array, ...) or an NDArray; got ${got}`);
  }
  const s = shape ? checkShape(shape, 'array') : inferred;
  if (sizeOf(s) !== flat.length) {
    throw new ValueError(`array: ${flat.length} values do not fill shape ${fmt(s)} (${sizeOf(s)} elements)`);
  }
  currentContext();
  return new NDArray(makeNode('constant', [], {}, s, flat));
}

function flattenNested(data: NestedArray[]): [Float32Array, number[]] {
  const shape: number[] = [];
  for (let level: NestedArray = data; Array.isArray(level); level = level[0]!) {
    shape.push(level.length);
    if (shape.length > MAX_RANK) throw new ShapeError(`array: nested more than ${MAX_RANK} deep (the kernels index up to ${MAX_RANK} dimensions)`);
    if (level.length === 0) break;
  }
  const size = sizeOf(shape);
  const out = new Float32Array(size);
  let k = 0;
  const walk = (x: NestedArray, dim: number, path: string) => {
    if (dim === shape.length) {
      if (typeof x !== 'number')
        throw new ValueError(
          `array: ${x === undefined ? 'undefined' : `non-numeric data (${x === null ? 'null' : typeof x})`} at ${path || 'the top level'}`,
        );
      out[k++] = x;
      return;
    }
    if (!Array.isArray(x) || x.length !== shape[dim]) {
      throw new ValueError(`array: ragged nested data at ${path || 'the top level'}: expected length ${shape[dim]}`);
    }
    // A for loop, not forEach: forEach skips holes ([1, , 3]), which would shift every later value.
    for (let i = 0; i < x.length; i++) {
      if (!(i in x)) throw new ValueError(`array: a hole (missing element) at ${path}[${i}]`);
      walk(x[i]!, dim + 1, `${path}[${i}]`);
    }
  };
  walk(data, 0, '');
  return [out, shape];
}

/** An NDArray as is, or a number as a 0-d array. */
export function asArray(x: ArrayOrScalar): NDArray {
  if (x instanceof NDArray) return x;
  if (typeof x !== 'number') throw new ValueError(`expected an NDArray or a number; got ${x === null ? 'null' : typeof x}`);
  return array(x);
}

/** An array of `shape` filled with `value` (a number, or a 0-d array: then it is broadcast, and differentiable). */
export function full(shape: readonly number[], value: number | NDArray): NDArray {
  if (value instanceof NDArray) {
    if (value.ndim !== 0) throw new ShapeError(`full: the value must be a number or a 0-d array; got shape ${fmt(value.shape)}`);
    return broadcastTo(value, checkShape(shape, 'full'));
  }
  if (typeof value !== 'number') throw new ValueError(`full: the value must be a number; got ${value === null ? 'null' : typeof value}`);
  return bind('fill', [], { value }, checkShape(shape, 'full'));
}
/** An array of zeros of this shape. */
export const zeros = (shape: readonly number[]) => full(shape, 0);
/** An array of ones of this shape. */
export const ones = (shape: readonly number[]) => full(shape, 1);
/** Zeros of the shape of x. */
export const zerosLike = (x: NDArray) => full(likeShape(x, 'zerosLike'), 0);
/** Ones of the shape of x. */
export const onesLike = (x: NDArray) => full(likeShape(x, 'onesLike'), 1);
/** The shape of a usable array (a disposed one throws, as any op on it would). */
function likeShape(x: NDArray, op: string): number[] {
  need(x, op).use();
  return x.shape;
}

/** Like numpy.arange: [start, stop) by step. */
export function arange(start: number, stop?: number, step = 1): NDArray {
  if (stop === undefined) [start, stop] = [0, start];
  if (![start, stop, step].every(Number.isFinite) || step === 0) {
    throw new ValueError(`arange: start, stop and step must be finite and step non-zero (got ${start}, ${stop}, ${step})`);
  }
  const n = Math.max(0, Math.ceil((stop - start) / step));
  return bind('arange', [], { start, step }, [n]);
}

function seedOf(seed: number, op: string): number {
  if (!Number.isInteger(seed)) throw new ValueError(`${op}: seed must be an integer, got ${seed}`);
  return seed >>> 0;
}

/** Uniform samples in [low, high), reproducible from the seed (a counter-based hash on the GPU). */
export function randomUniform(shape: readonly number[], seed: number, low = 0, high = 1): NDArray {
  return bind('random_uniform', [], { seed: seedOf(seed, 'randomUniform'), low, high }, checkShape(shape, 'randomUniform'));
}

/** Normal samples, reproducible from the seed. */
export function randomNormal(shape: readonly number[], seed: number, mean = 0, std = 1): NDArray {
  return bind('random_normal', [], { seed: seedOf(seed, 'randomNormal'), mean, std }, checkShape(shape, 'randomNormal'));
}

// ---------------------------------------------------------------- elementwise

/** NumPy broadcasting of two shapes. */
export function broadcastShapes(a: Shape, b: Shape, op = 'broadcast'): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) {
      throw new ShapeError(`${op}: shapes ${fmt(a)} and ${fmt(b)} do not broadcast (axis ${i}: ${x} vs ${y})`);
    }
    out[i] = x === 1 ? y : x;
  }
  return out;
}

type Binary = 'add' | 'sub' | 'mul' | 'div' | 'maximum' | 'greater_equal';
type Unary = 'neg' | 'square' | 'sqrt' | 'exp' | 'log' | 'sin' | 'cos' | 'tanh' | 'relu' | 'logistic' | 'abs' | 'sign' | 'stop_gradient';
type WithConstant = 'scale' | 'add_scalar' | 'pow_scalar';

function binary(prim: Binary, a: ArrayOrScalar, b: ArrayOrScalar): NDArray {
  const x = asArray(a);
  const y = asArray(b);
  return bind(prim, [x, y], {}, broadcastShapes(x.shape, y.shape, prim));
}

function unary<P extends Unary | WithConstant>(prim: P, x: NDArray, ...params: P extends WithConstant ? [PrimParams[P]] : []): NDArray {
  need(x, prim);
  const c = (params[0] as { c?: unknown } | undefined)?.c;
  if (params.length && typeof c !== 'number') throw new ValueError(`${prim}: the constant must be a number; got ${c === null ? 'null' : typeof c}`);
  return bind(prim, [x], (params[0] ?? {}) as PrimParams[P], x.shape);
}

/** a + b, elementwise with NumPy broadcasting (numbers allowed). */
export function add(a: ArrayOrScalar, b: ArrayOrScalar): NDArray {
  if (typeof b === 'number' && a instanceof NDArray) return addScalar(a, b);
  if (typeof a === 'number' && b instanceof NDArray) return addScalar(b, a);
  return binary('add', a, b);
}
/** a - b, elementwise with NumPy broadcasting (numbers allowed). */
export function sub(a: ArrayOrScalar, b: ArrayOrScalar): NDArray {
  if (typeof b === 'number' && a instanceof NDArray) return addScalar(a, -b);
  if (typeof a === 'number' && b instanceof NDArray) return addScalar(neg(b), a);
  return binary('sub', a, b);
}
/** a * b, elementwise with NumPy broadcasting (numbers allowed). */
export function mul(a: ArrayOrScalar, b: ArrayOrScalar): NDArray {
  if (typeof b === 'number' && a instanceof NDArray) return scale(a, b);
  if (typeof a === 'number' && b instanceof NDArray) return scale(b, a);
  return binary('mul', a, b);
}
/** a / b, elementwise with NumPy broadcasting (numbers allowed). */
export const div = (a: ArrayOrScalar, b: ArrayOrScalar) => binary('div', a, b);
/** The larger of a and b, elementwise (NaN if either is); a tie splits the gradient. */
export const maximum = (a: ArrayOrScalar, b: ArrayOrScalar) => binary('maximum', a, b);
/** The smaller of a and b, elementwise (NaN if either is); a tie splits the gradient. */
export const minimum = (a: ArrayOrScalar, b: ArrayOrScalar) => neg(maximum(neg(asArray(a)), neg(asArray(b))));
/** 1 where a >= b, else 0 (no gradient). */
export const greaterEqual = (a: ArrayOrScalar, b: ArrayOrScalar) => binary('greater_equal', a, b);

/** -x. */
export const neg = (x: NDArray) => unary('neg', x);
/** x * x. */
export const square = (x: NDArray) => unary('square', x);
/** The square root (NaN below 0). */
export const sqrt = (x: NDArray) => unary('sqrt', x);
/** e^x. */
export const exp = (x: NDArray) => unary('exp', x);
/** The natural logarithm (-Inf at 0, NaN below). */
export const log = (x: NDArray) => unary('log', x);
/** sin(x), accurate to about 8e-8 for |x| < 1.6e6. */
export const sin = (x: NDArray) => unary('sin', x);
/** cos(x), accurate to about 8e-8 for |x| < 1.6e6. */
export const cos = (x: NDArray) => unary('cos', x);
/** tanh(x). */
export const tanh = (x: NDArray) => unary('tanh', x);
/** max(x, 0), keeping NaN; its derivative at 0 is 0, as in JAX. */
export const relu = (x: NDArray) => unary('relu', x);
/** |x|; its derivative at 0 is 1, as in JAX. */
export const abs = (x: NDArray) => unary('abs', x);
/** -1, 0 or 1 by the sign of x (NaN stays NaN); no gradient. */
export const sign = (x: NDArray) => unary('sign', x);
/** 1 / (1 + exp(-x)); its gradient is stable far from 0 (JAX's logistic). */
export const sigmoid = (x: NDArray) => unary('logistic', x);
/** x * c for a number c (a 0-d array c is a traced scalar: broadcast, and differentiable). */
export const scale = (x: NDArray, c: number | NDArray) => (c instanceof NDArray ? binary('mul', need(x, 'scale'), c) : unary('scale', x, { c }));
/** x + c for a number c (a 0-d array c is a traced scalar: broadcast, and differentiable). */
export const addScalar = (x: NDArray, c: number | NDArray) =>
  c instanceof NDArray ? binary('add', need(x, 'addScalar'), c) : unary('add_scalar', x, { c });
/** x ** c for a number c. */
export function pow(x: NDArray, c: number): NDArray {
  if (typeof c !== 'number') {
    const exponent: unknown = c;
    throw new ValueError(
      `pow: the exponent must be a number; got ${exponent === null ? 'null' : exponent instanceof NDArray ? 'an NDArray (a number leaf inside a differentiated pytree is a 0-d array: keep the exponent outside the params)' : typeof exponent}`,
    );
  }
  if (c === 2) return square(x);
  if (c === 1) return x;
  if (c === 0) return onesLike(x); // x^0 = 1 everywhere, NaN included (IEEE), with derivative 0 (not 0 * 0^-1)
  return unary('pow_scalar', x, { c });
}
export const powScalar = (x: NDArray, c: number) => (c === 1 ? x : c === 0 ? onesLike(x) : unary('pow_scalar', x, { c }));

/** The same values; gradients do not flow through it. */
export const stopGradient = (x: NDArray) => unary('stop_gradient', x);

/** x broadcast to `shape` (NumPy rules). */
export function broadcastTo(x: ArrayOrScalar, shape: readonly number[]): NDArray {
  const a = asArray(x);
  const target = checkShape(shape, 'broadcastTo');
  const b = broadcastShapes(a.shape, target, 'broadcastTo');
  if (b.length !== target.length || b.some((d, i) => d !== target[i])) {
    throw new ShapeError(`broadcastTo: cannot broadcast shape ${fmt(a.shape)} to ${fmt(target)}`);
  }
  if (a.shape.length === target.length && a.shape.every((d, i) => d === target[i])) return a;
  return bind('broadcast_to', [a], {}, target);
}

// ---------------------------------------------------------------- reductions

function normAxes(axes: number | readonly number[] | undefined, ndim: number, op: string): number[] {
  const list = axes === undefined ? [...Array(ndim).keys()] : typeof axes === 'number' ? [axes] : [...axes];
  const out = list.map((a) => {
    if (!Number.isInteger(a) || a < -ndim || a >= ndim) throw new ValueError(`${op}: axis ${a} is out of range for an array of rank ${ndim}`);
    return a < 0 ? a + ndim : a;
  });
  if (new Set(out).size !== out.length) throw new ValueError(`${op}: repeated axis in ${fmt(list)}`);
  return out.sort((a, b) => a - b);
}

/** Sum over `axes` (all by default), as a parallel tree reduction. */
export function sum(x: NDArray, axes?: number | readonly number[], keepdims = false): NDArray {
  need(x, 'sum');
  const ax = normAxes(axes, x.ndim, 'sum');
  const kept = x.shape.map((d, i) => (ax.includes(i) ? 1 : d));
  const outShape = x.shape.filter((_, i) => !ax.includes(i));
  let src = x;
  let run = ax;
  const contiguous = ax.every((a, i) => i === 0 || a === ax[i - 1]! + 1);
  if (!contiguous) {
    // Move the reduced axes to the end so they form one run.
    const perm = [...x.shape.keys()].filter((i) => !ax.includes(i)).concat(ax);
    src = transpose(x, perm);
    run = ax.map((_, i) => x.ndim - ax.length + i);
  }
  const out = ax.length === 0 ? x : bind('sum', [src], { axes: run }, outShape);
  return keepdims ? reshape(out, kept) : out;
}

/** The mean over `axes` (all by default). */
export function mean(x: NDArray, axes?: number | readonly number[], keepdims = false): NDArray {
  need(x, 'mean');
  const ax = normAxes(axes, x.ndim, 'mean');
  const count = ax.reduce((n, a) => n * x.shape[a]!, 1);
  return scale(sum(x, ax, keepdims), 1 / count);
}

/** Sum g down to `shape` (the reverse of broadcasting): the VJP of every broadcasting op. */
export function sumTo(g: NDArray, shape: Shape): NDArray {
  if (g.ndim === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const lead = g.ndim - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.ndim; i++) if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  const s = axes.length ? sum(g, axes) : g;
  return reshape(s, shape);
}
export const unbroadcast = sumTo;

// ---------------------------------------------------------------- shapes

/** The same values in a new shape (no copy). */
export function reshape(x: NDArray, shape: readonly number[]): NDArray {
  need(x, 'reshape');
  const s = [...shape];
  const infer = s.indexOf(-1);
  if (infer >= 0) {
    const rest = sizeOf(s.filter((_, i) => i !== infer));
    if (rest === 0 || x.size % rest !== 0) throw new ShapeError(`reshape: cannot reshape ${fmt(x.shape)} to ${fmt(shape)}`);
    s[infer] = x.size / rest;
  }
  checkShape(s, 'reshape');
  if (sizeOf(s) !== x.size) {
    throw new ShapeError(`reshape: cannot reshape ${fmt(x.shape)} (${x.size} elements) to ${fmt(shape)} (${sizeOf(s)} elements)`);
  }
  if (s.length === x.ndim && s.every((d, i) => d === x.shape[i])) return x;
  return bind('reshape', [x], {}, s);
}

/** Axes permuted (reversed by default). */
export function transpose(x: NDArray, perm?: readonly number[]): NDArray {
  need(x, 'transpose');
  const p = perm ? [...perm] : [...x.shape.keys()].reverse();
  if (p.length !== x.ndim || [...p].sort((a, b) => a - b).some((v, i) => v !== i)) {
    throw new ValueError(`transpose: ${fmt(p)} is not a permutation of the axes of an array of rank ${x.ndim}`);
  }
  if (p.every((v, i) => v === i)) return x;
  return bind(
    'transpose',
    [x],
    { perm: p },
    p.map((i) => x.shape[i]!),
  );
}

/** x[starts[0]:stops[0], starts[1]:stops[1], ...] with static bounds; missing axes are taken whole. */
export function slice(x: NDArray, starts: readonly number[], stops: readonly number[]): NDArray {
  need(x, 'slice');
  if (starts.length > x.ndim || stops.length !== starts.length) {
    throw new IndexError(`slice: ${starts.length} starts and ${stops.length} stops for an array of rank ${x.ndim}`);
  }
  const st = x.shape.map((_, d) => starts[d] ?? 0);
  const sp = x.shape.map((dim, d) => stops[d] ?? dim);
  x.shape.forEach((dim, d) => {
    if (!Number.isInteger(st[d]) || !Number.isInteger(sp[d]) || st[d]! < 0 || sp[d]! > dim || st[d]! > sp[d]!) {
      throw new IndexError(`slice: [${st[d]}:${sp[d]}] is out of range for axis ${d} of size ${dim} (shape ${fmt(x.shape)})`);
    }
  });
  const shape = sp.map((s, d) => s - st[d]!);
  if (shape.every((d, i) => d === x.shape[i])) return x;
  return bind('slice', [x], { starts: st }, shape);
}

/** Place x into zeros of `shape` at `starts` (the VJP of slice). */
export function pad(x: NDArray, starts: readonly number[], shape: readonly number[]): NDArray {
  need(x, 'pad');
  const s = checkShape(shape, 'pad');
  if (starts.length !== x.ndim || s.length !== x.ndim) {
    throw new ShapeError(`pad: starts ${fmt(starts)} and shape ${fmt(s)} must both have the rank of ${fmt(x.shape)}`);
  }
  if (x.shape.some((d, i) => !Number.isInteger(starts[i]) || starts[i]! < 0 || starts[i]! + d > s[i]!)) {
    throw new IndexError(`pad: shape ${fmt(x.shape)} at ${fmt(starts)} does not fit in ${fmt(s)}`);
  }
  return bind('pad', [x], { starts: [...starts] }, s);
}

/** Arrays joined along `axis`. */
export function concatenate(xs: NDArray[], axis = 0): NDArray {
  if (!Array.isArray(xs)) throw new ValueError(`concatenate: expected an array of NDArrays; got ${xs === null ? 'null' : typeof xs}`);
  xs.forEach((x, i) => need(x, 'concatenate', `element ${i}`));
  if (xs.length === 0) throw new ValueError('concatenate: needs at least one array');
  const nd = xs[0]!.ndim;
  const ax = normAxes(axis, nd, 'concatenate')[0]!;
  const total = xs.reduce((n, x) => {
    if (x.ndim !== nd || x.shape.some((d, i) => i !== ax && d !== xs[0]!.shape[i])) {
      throw new ShapeError(`concatenate: shape ${fmt(x.shape)} does not match ${fmt(xs[0]!.shape)} off axis ${ax}`);
    }
    return n + x.shape[ax]!;
  }, 0);
  const shape = xs[0]!.shape.map((d, i) => (i === ax ? total : d));
  let at = 0;
  let out: NDArray | null = null;
  for (const x of xs) {
    const starts = shape.map((_, i) => (i === ax ? at : 0));
    const part = pad(x, starts, shape);
    out = out ? add(out, part) : part;
    at += x.shape[ax]!;
  }
  return out!;
}

// ---------------------------------------------------------------- matmul

/** @internal op(a) @ op(b) for 2-D or batched 3-D operands, op = optional transpose of the last two axes. */
export function matmulT(a: NDArray, b: NDArray, transA: boolean, transB: boolean): NDArray {
  const [am, ak] = transA ? [a.shape[a.ndim - 1]!, a.shape[a.ndim - 2]!] : [a.shape[a.ndim - 2]!, a.shape[a.ndim - 1]!];
  const [bk, bn] = transB ? [b.shape[b.ndim - 1]!, b.shape[b.ndim - 2]!] : [b.shape[b.ndim - 2]!, b.shape[b.ndim - 1]!];
  if (ak !== bk) {
    throw new ShapeError(
      `matmul: inner dimensions differ: ${fmt(a.shape)}${transA ? 'ᵀ' : ''} @ ${fmt(b.shape)}${transB ? 'ᵀ' : ''} (${ak} vs ${bk})`,
    );
  }
  const ba = a.ndim === 3 ? a.shape[0]! : 1;
  const bb = b.ndim === 3 ? b.shape[0]! : 1;
  if (ba !== bb && ba !== 1 && bb !== 1) throw new ShapeError(`matmul: batch sizes ${ba} and ${bb} differ (${fmt(a.shape)} @ ${fmt(b.shape)})`);
  const shape = a.ndim === 3 || b.ndim === 3 ? [Math.max(ba, bb), am, bn] : [am, bn];
  // An outer product (K = 1, e.g. the cotangent of h @ w for a one-column w) is
  // a broadcast multiply: it fuses with the elementwise ops around it.
  if (ak === 1 && a.ndim === 2 && b.ndim === 2) return mul(reshape(a, [am, 1]), reshape(b, [1, bn]));
  return bind('matmul', [a, b], { transA, transB }, shape);
}

/** Matrix product with NumPy's rules for 1-D operands: (N,d)@(d,) is a matrix-vector product, (d,)@(d,) a dot. */
export function matmul(a: NDArray, b: NDArray): NDArray {
  need(a, 'matmul', 'a');
  need(b, 'matmul', 'b');
  if (!(a instanceof NDArray) || !(b instanceof NDArray)) throw new ValueError('matmul: both operands must be NDArrays');
  if (a.ndim === 0 || b.ndim === 0 || a.ndim > 3 || b.ndim > 3) {
    throw new ShapeError(`matmul: operands must have rank 1, 2 or 3, got ${fmt(a.shape)} @ ${fmt(b.shape)}`);
  }
  const a2 = a.ndim === 1 ? reshape(a, [1, a.shape[0]!]) : a;
  const b2 = b.ndim === 1 ? reshape(b, [b.shape[0]!, 1]) : b;
  if (a2.shape[a2.ndim - 1] !== b2.shape[b2.ndim - 2]) {
    throw new ShapeError(`matmul: inner dimensions differ: ${fmt(a.shape)} @ ${fmt(b.shape)} (${a2.shape[a2.ndim - 1]} vs ${b2.shape[b2.ndim - 2]})`);
  }
  const c = matmulT(a2, b2, false, false);
  if (a.ndim > 1 && b.ndim > 1) return c;
  const shape = c.shape.filter((_, i) => !((a.ndim === 1 && i === c.ndim - 2) || (b.ndim === 1 && i === c.ndim - 1)));
  return reshape(c, shape);
}

/** Dot product of two vectors, or sum(a * b) over all elements of equal shapes. */
export const dot = (a: NDArray, b: NDArray) => (a.ndim === 1 && b.ndim === 1 ? matmul(a, b) : sum(mul(a, b)));
