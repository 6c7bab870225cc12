// The op functions users call. Each validates its arguments (shape rules,
// with errors that name the op and the shapes), then binds a primitive: makes
// a node of the lazy graph. Derived ops (mean, sumTo, matmul of vectors, ...)
// are compositions of primitives, written here in TypeScript.

import { DTypeError, IndexError, ShapeError, ValueError } from '../errors';
import { currentContext } from '../gpu/device';
import { NDArray, type NestedArray } from './ndarray';
import { makeNode, sizeOf, type Shape } from './node';
import type { Prim, PrimParams } from './prims';
import { foldFills } from './fold';
import { DTYPES, promote, weakDtype, type DType, type HostArray } from './dtype';

/** An NDArray, or a number standing for a 0-d array. */
export type ArrayOrScalar = NDArray | number;

const fmt = (s: Shape) => `[${s.join(', ')}]`;

/** Make a node for primitive `prim` and return the user's handle to it (dtype: the first input's unless given). */
export function bind<P extends Prim>(prim: P, inputs: NDArray[], params: PrimParams[P], shape: Shape, dtype?: DType): NDArray {
  inputs.forEach((x, i) => need(x, prim, `argument ${i}`));
  if (shape.length > MAX_RANK)
    throw new ShapeError(`${prim}: rank ${shape.length} (shape ${fmt(shape)}) is over the ${MAX_RANK} dimensions the kernels index`);
  currentContext(); // throws DeviceLostError once the device is gone
  const nodes = inputs.map((x) => x.use());
  const out = dtype ?? nodes[0]?.dtype ?? 'float32';
  const folded = out === 'float32' ? foldFills(prim, nodes, params) : undefined;
  if (folded !== undefined) return new NDArray(makeNode('fill', [], { value: folded }, shape, 'float32'));
  return new NDArray(makeNode(prim, nodes, params, shape, out));
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

/** Options of array(): the shape (else inferred) and the dtype (else from the data). */
export interface ArrayOptions {
  shape?: readonly number[];
  dtype?: DType;
}

/**
 * An array from nested JS arrays, a flat typed array or number[] plus shape,
 * or a number (a 0-d array). The dtype comes from the data unless given: a
 * Float32Array, Float64Array, numbers and nested numbers are float32 (a JS
 * number does not say whether it is an integer type); an Int32Array (or
 * another integer typed array, Uint8Array included) is int32, values kept;
 * nested booleans are bool. Data is uploaded lazily, with the first GPU work.
 * An NDArray is returned as it is (use copy(x) for a new one), or cast.
 */
export function array(data: NestedArray | Float32Array | ArrayLike<number> | NDArray, shapeOrOptions?: readonly number[] | ArrayOptions): NDArray {
  const opts: ArrayOptions = Array.isArray(shapeOrOptions) ? { shape: shapeOrOptions } : ((shapeOrOptions ?? {}) as ArrayOptions);
  const { shape } = opts;
  if (opts.dtype !== undefined && !DTYPES.includes(opts.dtype)) {
    throw new ValueError(`array: unknown dtype ${JSON.stringify(opts.dtype)} (one of ${DTYPES.join(', ')})`);
  }
  if (data instanceof NDArray) {
    const x = shape ? reshape(data, shape) : data;
    return opts.dtype ? astype(x, opts.dtype) : x;
  }
  let flat: ArrayLike<number>;
  let inferred: number[];
  let natural: DType = 'float32';
  if (typeof data === 'number' || typeof data === 'boolean') {
    flat = [Number(data)];
    inferred = [];
    if (typeof data === 'boolean') natural = 'bool';
  } else if (ArrayBuffer.isView(data) && !(data instanceof DataView)) {
    const view: unknown = data;
    if (view instanceof BigInt64Array || view instanceof BigUint64Array) {
      throw new ValueError(`array: a ${view.constructor.name} holds BigInts; convert it to numbers (a Float32Array or Int32Array) first`);
    }
    flat = data as unknown as ArrayLike<number>;
    inferred = [flat.length];
    if (!(view instanceof Float32Array || view instanceof Float64Array)) natural = 'int32';
  } else if (Array.isArray(data)) {
    let allBool: boolean;
    [flat, inferred, allBool] = flattenNested(data as NestedArray[]);
    if (allBool && flat.length > 0) natural = 'bool';
  } else {
    const got =
      data === null ? 'null' : typeof data === 'string' ? 'a string' : typeof data === 'object' ? 'an object that is not an array' : typeof data;
    throw new ValueError(`array: expected a number, nested arrays of numbers, a typed array (Float32Array, ...) or an NDArray; got ${got}`);
  }
  const s = shape ? checkShape(shape, 'array') : inferred;
  if (sizeOf(s) !== flat.length) {
    throw new ValueError(`array: ${flat.length} values do not fill shape ${fmt(s)} (${sizeOf(s)} elements)`);
  }
  const dtype = opts.dtype ?? natural;
  const host = toHost(flat, dtype);
  currentContext();
  return new NDArray(makeNode('constant', [], {}, s, dtype, host));
}

/** Values as dtype's host words: int32 truncates toward zero (as JAX's cast) and must fit; bool is 0 or 1. */
function toHost(flat: ArrayLike<number>, dtype: DType): HostArray {
  if (dtype === 'float32') return Float32Array.from(flat);
  const out = new Int32Array(flat.length);
  for (let i = 0; i < flat.length; i++) {
    const v = flat[i]!;
    if (dtype === 'bool') out[i] = v !== 0 ? 1 : 0;
    else {
      const t = Math.trunc(v);
      if (!(t >= -2147483648 && t <= 2147483647)) throw new ValueError(`array: element ${i} (${v}) does not fit in int32`);
      out[i] = t;
    }
  }
  return out;
}

function flattenNested(data: NestedArray[]): [Float64Array, number[], boolean] {
  const shape: number[] = [];
  for (let level: NestedArray = data; Array.isArray(level); level = level[0]!) {
    shape.push(level.length);
    if (shape.length > MAX_RANK) throw new ShapeError(`array: nested more than ${MAX_RANK} deep (the kernels index up to ${MAX_RANK} dimensions)`);
    if (level.length === 0) break;
  }
  const size = sizeOf(shape);
  const out = new Float64Array(size);
  let k = 0;
  let allBool = true;
  const walk = (x: NestedArray, dim: number, path: string) => {
    if (dim === shape.length) {
      if (typeof x !== 'number' && typeof x !== 'boolean')
        throw new ValueError(
          `array: ${x === undefined ? 'undefined' : `non-numeric data (${x === null ? 'null' : typeof x})`} at ${path || 'the top level'}`,
        );
      if (typeof x === 'number') allBool = false;
      out[k++] = Number(x);
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
  return [out, shape, allBool];
}

/** An NDArray as is, or a number as a 0-d array (float32, or `dtype`). */
export function asArray(x: ArrayOrScalar, dtype?: DType): NDArray {
  if (x instanceof NDArray) return x;
  if (typeof x !== 'number') throw new ValueError(`expected an NDArray or a number; got ${x === null ? 'null' : typeof x}`);
  return dtype && dtype !== 'float32' ? full([], x, dtype) : array(x);
}

function checkDtype(dtype: unknown, op: string): DType {
  if (!DTYPES.includes(dtype as DType)) throw new ValueError(`${op}: unknown dtype ${JSON.stringify(dtype)} (one of ${DTYPES.join(', ')})`);
  return dtype as DType;
}

/** An array of `shape` filled with `value` (a number, or a 0-d array: then it is broadcast, and differentiable). */
export function full(shape: readonly number[], value: number | NDArray, dtype: DType = 'float32'): NDArray {
  if (value instanceof NDArray) {
    if (value.ndim !== 0) throw new ShapeError(`full: the value must be a number or a 0-d array; got shape ${fmt(value.shape)}`);
    return broadcastTo(astype(value, dtype), checkShape(shape, 'full'));
  }
  if (typeof value !== 'number') throw new ValueError(`full: the value must be a number; got ${value === null ? 'null' : typeof value}`);
  checkDtype(dtype, 'full');
  const v = dtype === 'bool' ? (value !== 0 ? 1 : 0) : dtype === 'int32' ? Math.trunc(value) | 0 : value;
  return bind('fill', [], { value: v }, checkShape(shape, 'full'), dtype);
}
/** An array of zeros of this shape. */
export const zeros = (shape: readonly number[], dtype: DType = 'float32') => full(shape, 0, dtype);
/** An array of ones of this shape. */
export const ones = (shape: readonly number[], dtype: DType = 'float32') => full(shape, 1, dtype);
/** Zeros of the shape (and dtype) of x. */
export const zerosLike = (x: NDArray) => full(likeShape(x, 'zerosLike'), 0, x.dtype);
/** Ones of the shape (and dtype) of x. */
export const onesLike = (x: NDArray) => full(likeShape(x, 'onesLike'), 1, x.dtype);
/** The shape of a usable array (a disposed one throws, as any op on it would). */
function likeShape(x: NDArray, op: string): number[] {
  need(x, op).use();
  return x.shape;
}

/** Like numpy.arange: [start, stop) by step; float32 unless dtype says 'int32' (a JS number does not say which). */
export function arange(start: number, stop?: number, step = 1, dtype: DType = 'float32'): NDArray {
  if (stop === undefined) [start, stop] = [0, start];
  if (![start, stop, step].every(Number.isFinite) || step === 0) {
    throw new ValueError(`arange: start, stop and step must be finite and step non-zero (got ${start}, ${stop}, ${step})`);
  }
  if (checkDtype(dtype, 'arange') !== 'float32' && ![start, step].every(Number.isInteger)) {
    throw new ValueError(`arange: an ${dtype} range needs integer start and step (got ${start}, ${step})`);
  }
  const n = Math.max(0, Math.ceil((stop - start) / step));
  if (dtype === 'bool') throw new ValueError('arange: dtype bool has no ranges');
  return bind('arange', [], { start, step }, [n], dtype);
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

// ---------------------------------------------------------------- dtypes

/**
 * x as `dtype` (JAX's astype): float32 to int32 truncates toward zero and
 * saturates at the int32 range (NaN gives 0); anything to bool is `x != 0`
 * (NaN is true). The gradient flows between float32 arrays only.
 */
export function astype(x: NDArray, dtype: DType): NDArray {
  need(x, 'astype');
  checkDtype(dtype, 'astype');
  if (x.dtype === dtype) return x;
  return bind('convert', [x], {}, x.shape, dtype);
}

/** A new array with x's values (array(x) returns x itself). */
export function copy(x: NDArray): NDArray {
  need(x, 'copy');
  return bind('broadcast_to', [x], {}, x.shape);
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

type Arith = 'add' | 'sub' | 'mul' | 'div' | 'maximum';
type Compare = 'equal' | 'not_equal' | 'less' | 'less_equal' | 'greater' | 'greater_equal';
type Logical = 'logical_and' | 'logical_or';
type Binary = Arith | Compare | Logical;
/** Unary ops defined on floats only: an int32 or bool argument is cast to float32 first (as JAX does). */
type FloatUnary = 'sqrt' | 'exp' | 'log' | 'log1p' | 'erf' | 'erf_inv' | 'sin' | 'cos' | 'tanh' | 'logistic';
type Unary = FloatUnary | 'neg' | 'square' | 'relu' | 'abs' | 'sign' | 'stop_gradient' | 'logical_not' | 'is_finite';
type WithConstant = 'scale' | 'add_scalar' | 'pow_scalar';
const FLOAT_ONLY = new Set<string>(['div', 'sqrt', 'exp', 'log', 'log1p', 'erf', 'erf_inv', 'sin', 'cos', 'tanh', 'logistic', 'pow_scalar']);

/** The dtype both operands are computed in: JAX's promotion, with a JS number weakly typed. */
function commonDtype(a: ArrayOrScalar, b: ArrayOrScalar): DType {
  if (a instanceof NDArray && b instanceof NDArray) return promote(a.dtype, b.dtype);
  if (a instanceof NDArray && typeof b === 'number') return promote(a.dtype, weakDtype(b, a.dtype));
  if (b instanceof NDArray && typeof a === 'number') return promote(b.dtype, weakDtype(a, b.dtype));
  return 'float32';
}

function binary(prim: Binary, a: ArrayOrScalar, b: ArrayOrScalar): NDArray {
  if (a instanceof NDArray) need(a, prim, 'argument 0');
  if (b instanceof NDArray) need(b, prim, 'argument 1');
  let t = commonDtype(a, b);
  if (FLOAT_ONLY.has(prim)) t = 'float32';
  if (prim === 'logical_and' || prim === 'logical_or') t = 'bool';
  if (prim === 'sub' && t === 'bool')
    throw new DTypeError('sub: subtracting bool arrays is not defined (as in NumPy); use logicalXor or astype first');
  const x = astype(asArray(a, t), t);
  const y = astype(asArray(b, t), t);
  const out: DType = prim in COMPARE ? 'bool' : t;
  return bind(prim, [x, y], {}, broadcastShapes(x.shape, y.shape, prim), out);
}
const COMPARE: Record<Compare, true> = { equal: true, not_equal: true, less: true, less_equal: true, greater: true, greater_equal: true };

function unary<P extends Unary | WithConstant>(prim: P, x: NDArray, ...params: P extends WithConstant ? [PrimParams[P]] : []): NDArray {
  need(x, prim);
  const c = (params[0] as { c?: unknown } | undefined)?.c;
  if (params.length && typeof c !== 'number') throw new ValueError(`${prim}: the constant must be a number; got ${c === null ? 'null' : typeof c}`);
  let t = x.dtype;
  if (FLOAT_ONLY.has(prim)) t = 'float32';
  else if (prim === 'logical_not') t = 'bool';
  else if (prim === 'neg' && t === 'bool') throw new DTypeError('neg: negating a bool array is not defined (as in NumPy); use logicalNot');
  else if (prim === 'scale' || prim === 'add_scalar') t = promote(t === 'bool' ? 'int32' : t, weakDtype(c as number, t));
  else if (t === 'bool' && prim !== 'stop_gradient' && prim !== 'is_finite') t = 'int32';
  const out: DType = prim === 'is_finite' ? 'bool' : t;
  return bind(prim, [astype(x, t)], (params[0] ?? {}) as PrimParams[P], x.shape, out);
}

/** a + b, elementwise with NumPy broadcasting (numbers allowed); for bool arrays, logical or. */
export function add(a: ArrayOrScalar, b: ArrayOrScalar): NDArray {
  if (typeof b === 'number' && a instanceof NDArray) return addScalar(a, b);
  if (typeof a === 'number' && b instanceof NDArray) return addScalar(b, a);
  return binary('add', a, b);
}
/** a - b, elementwise with NumPy broadcasting (numbers allowed). */
export function sub(a: ArrayOrScalar, b: ArrayOrScalar): NDArray {
  if (typeof b === 'number' && a instanceof NDArray && a.dtype !== 'bool') return addScalar(a, -b);
  if (typeof a === 'number' && b instanceof NDArray && b.dtype !== 'bool') return addScalar(neg(b), a);
  return binary('sub', a, b);
}
/** a * b, elementwise with NumPy broadcasting (numbers allowed); for bool arrays, logical and. */
export function mul(a: ArrayOrScalar, b: ArrayOrScalar): NDArray {
  if (typeof b === 'number' && a instanceof NDArray) return scale(a, b);
  if (typeof a === 'number' && b instanceof NDArray) return scale(b, a);
  return binary('mul', a, b);
}
/** a / b, elementwise with NumPy broadcasting (numbers allowed); true division, so float32 for integer inputs too. */
export const div = (a: ArrayOrScalar, b: ArrayOrScalar) => binary('div', a, b);
/** The larger of a and b, elementwise (NaN if either is); a tie splits the gradient. */
export const maximum = (a: ArrayOrScalar, b: ArrayOrScalar) => binary('maximum', a, b);
/** The smaller of a and b, elementwise (NaN if either is); a tie splits the gradient. */
export function minimum(a: ArrayOrScalar, b: ArrayOrScalar): NDArray {
  const t = commonDtype(a, b);
  if (t === 'bool') return logicalAnd(a, b);
  return neg(maximum(neg(astype(asArray(a, t), t)), neg(astype(asArray(b, t), t))));
}

/** a == b, elementwise (a bool array; no gradient). */
export const equal = (a: ArrayOrScalar, b: ArrayOrScalar) => binary('equal', a, b);
/** a != b, elementwise (true where either is NaN). */
export const notEqual = (a: ArrayOrScalar, b: ArrayOrScalar) => binary('not_equal', a, b);
/** a < b, elementwise (a bool array). */
export const less = (a: ArrayOrScalar, b: ArrayOrScalar) => binary('less', a, b);
/** a <= b, elementwise (a bool array). */
export const lessEqual = (a: ArrayOrScalar, b: ArrayOrScalar) => binary('less_equal', a, b);
/** a > b, elementwise (a bool array). */
export const greater = (a: ArrayOrScalar, b: ArrayOrScalar) => binary('greater', a, b);
/** a >= b, elementwise (a bool array). */
export const greaterEqual = (a: ArrayOrScalar, b: ArrayOrScalar) => binary('greater_equal', a, b);
/** a and b, elementwise, as bools (nonzero is true). */
export const logicalAnd = (a: ArrayOrScalar, b: ArrayOrScalar) => binary('logical_and', a, b);
/** a or b, elementwise, as bools. */
export const logicalOr = (a: ArrayOrScalar, b: ArrayOrScalar) => binary('logical_or', a, b);
/** a xor b, elementwise, as bools. */
export const logicalXor = (a: ArrayOrScalar, b: ArrayOrScalar) => binary('not_equal', astype(asArray(a), 'bool'), astype(asArray(b), 'bool'));
/** not x, elementwise, as bools. */
export const logicalNot = (x: NDArray) => unary('logical_not', x);
/** True where x is neither infinite nor NaN (always true for int32 and bool). */
export const isFinite = (x: NDArray) => unary('is_finite', x);

/**
 * x where cond is true, else y (JAX's where, with broadcasting of all
 * three). cond is any array (nonzero is true); x and y are promoted to a
 * common dtype. Gradients flow to x and y, masked by cond.
 */
export function where(cond: ArrayOrScalar, x: ArrayOrScalar, y: ArrayOrScalar): NDArray {
  if (cond instanceof NDArray) need(cond, 'where', 'cond');
  if (x instanceof NDArray) need(x, 'where', 'x');
  if (y instanceof NDArray) need(y, 'where', 'y');
  const t = commonDtype(x, y);
  const c = astype(asArray(cond), 'bool');
  const a = astype(asArray(x, t), t);
  const b = astype(asArray(y, t), t);
  const shape = broadcastShapes(broadcastShapes(c.shape, a.shape, 'where'), b.shape, 'where');
  return bind('select', [c, a, b], {}, shape, t);
}

/** x clipped to [lo, hi] (either bound may be omitted); NaN stays NaN. */
export function clip(x: NDArray, lo?: ArrayOrScalar, hi?: ArrayOrScalar): NDArray {
  need(x, 'clip');
  let out = x;
  if (lo !== undefined) out = maximum(out, lo);
  if (hi !== undefined) out = minimum(out, hi);
  return out;
}

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
/** log(1 + x), accurate for small x. */
export const log1p = (x: NDArray) => unary('log1p', x);
/** The error function. */
export const erf = (x: NDArray) => unary('erf', x);
/** The inverse error function on (-1, 1) (±Inf at ±1, NaN outside). */
export const erfInv = (x: NDArray) => unary('erf_inv', x);
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

/** Axes as sorted non-negative integers (negative ones count from the end); all axes when undefined. */
export function normAxes(axes: number | readonly number[] | undefined, ndim: number, op: string): number[] {
  const list = axes === undefined ? [...Array(ndim).keys()] : typeof axes === 'number' ? [axes] : [...axes];
  const out = list.map((a) => {
    if (!Number.isInteger(a) || a < -ndim || a >= ndim) throw new ValueError(`${op}: axis ${a} is out of range for an array of rank ${ndim}`);
    return a < 0 ? a + ndim : a;
  });
  if (new Set(out).size !== out.length) throw new ValueError(`${op}: repeated axis in ${fmt(list)}`);
  return out.sort((a, b) => a - b);
}

/** Sum over `axes` (all by default), as a parallel tree reduction; int32 for int32 and bool arrays, as in JAX. */
export function sum(x: NDArray, axes?: number | readonly number[], keepdims = false): NDArray {
  return scaledSum(x, axes, keepdims, 'sum');
}

/** sum, times `scale` inside the reduction's last pass (one kernel for a mean, not two). */
function scaledSum(x: NDArray, axes: number | readonly number[] | undefined, keepdims: boolean, op: string, factor?: number): NDArray {
  need(x, op);
  if (x.dtype === 'bool') x = astype(x, 'int32');
  const ax = normAxes(axes, x.ndim, op);
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
  const params = factor === undefined ? { axes: run } : { axes: run, scale: factor };
  const out = ax.length === 0 ? (factor === undefined ? x : scale(x, factor)) : bind('sum', [src], params, outShape);
  return keepdims ? reshape(out, kept) : out;
}

/** The mean over `axes` (all by default); float32 whatever x's dtype. */
export function mean(x: NDArray, axes?: number | readonly number[], keepdims = false): NDArray {
  need(x, 'mean');
  x = astype(x, 'float32');
  const ax = normAxes(axes, x.ndim, 'mean');
  const count = ax.reduce((n, a) => n * x.shape[a]!, 1);
  return scaledSum(x, ax, keepdims, 'mean', 1 / count);
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
  const p = perm ? perm.map((a) => (Number.isInteger(a) && a < 0 ? a + x.ndim : a)) : [...x.shape.keys()].reverse();
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

/**
 * x[starts[0]:stops[0], starts[1]:stops[1], ...] with static bounds; missing
 * axes are taken whole; a negative bound counts from the end, as in Python.
 */
export function slice(x: NDArray, starts: readonly number[], stops: readonly number[]): NDArray {
  need(x, 'slice');
  if (starts.length > x.ndim || stops.length !== starts.length) {
    throw new IndexError(`slice: ${starts.length} starts and ${stops.length} stops for an array of rank ${x.ndim}`);
  }
  const fromEnd = (v: number | undefined, dim: number) => (v !== undefined && v < 0 && v >= -dim ? v + dim : v);
  const st = x.shape.map((dim, d) => fromEnd(starts[d], dim) ?? 0);
  const sp = x.shape.map((dim, d) => fromEnd(stops[d], dim) ?? dim);
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
