// JAX's random keys: a key is an int32 array of shape [2] (JAX's two uint32
// words, as int32 bits); every draw is a pure function of the key, computed
// by Threefry-2x32 on the GPU (shaders/random.wgsl) or the host, with JAX's
// counter layout (jax_threefry_partitionable, its default since JAX 0.5), so
// keys and bits match JAX's and every adapter gives the same numbers.
// Split a key rather than reuse it: the same key gives the same numbers.

import { DTypeError, ShapeError, ValueError } from '../errors';
import { NDArray } from '../array/ndarray';
import {
  add,
  array,
  astype,
  bind,
  erfInv,
  less,
  log,
  maximum,
  minimum,
  neg,
  need,
  reshape,
  scale,
  slice,
  addScalar,
  type ArrayOrScalar,
} from '../array/ops';
import { argmax } from '../array/reductions';
import { take } from '../array/indexing';

const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

/** A key (int32 [2]) checked. */
function keyOf(key: NDArray, op: string): NDArray {
  need(key, op, 'key');
  if (key.dtype !== 'int32' || key.ndim !== 1 || key.shape[0] !== 2) {
    throw new DTypeError(`${op}: a key is an int32 array of shape [2] (from random.key(seed) or random.split); got ${key.dtype} ${fmt(key.shape)}`);
  }
  return key;
}

function shapeOf(shape: readonly number[] | undefined, op: string): number[] {
  const s = shape ?? [];
  if (!Array.isArray(s) || s.some((d) => !Number.isInteger(d) || d < 0)) throw new ValueError(`${op}: shape ${String(shape)} is not a list of sizes`);
  return [...s];
}

/** A key from an integer seed: [high 32 bits, low 32 bits] of the seed as a uint64, as JAX's PRNGKey. */
export function key(seed: number): NDArray {
  if (!Number.isSafeInteger(seed)) throw new ValueError(`random.key: the seed must be a safe integer, got ${seed}`);
  const u = BigInt.asUintN(64, BigInt(seed));
  return array(new Int32Array([Number(BigInt.asIntN(32, u >> 32n)), Number(BigInt.asIntN(32, u))]));
}

/** `num` new keys from one (JAX's split; subkey i = threefry(key, (0, i))), as a JS array: `const [k, sub] = random.split(k)`. */
export function split(k: NDArray, num = 2): NDArray[] {
  keyOf(k, 'random.split');
  if (!Number.isInteger(num) || num < 1) throw new ValueError(`random.split: num must be a positive integer, got ${num}`);
  const all = bind('threefry', [k], { out: 'split', offset: 0 }, [num, 2], 'int32');
  if (num === 1) return [reshape(all, [2])];
  return Array.from({ length: num }, (_, i) => reshape(slice(all, [i], [i + 1]), [2]));
}

/** A key for `data` (a step number, a layer index) folded into k: split's row `data`, as JAX's fold_in with partitionable Threefry. */
export function foldIn(k: NDArray, data: number): NDArray {
  keyOf(k, 'random.foldIn');
  if (!Number.isInteger(data) || data < 0 || data > 0xffffffff) throw new ValueError(`random.foldIn: data must be a uint32 integer, got ${data}`);
  return bind('threefry', [k], { out: 'split', offset: data >>> 0 }, [2], 'int32');
}

/** Raw random int32 words (JAX's random_bits, as int32). */
export function bits(k: NDArray, shape?: readonly number[]): NDArray {
  return bind('threefry', [keyOf(k, 'random.bits')], { out: 'bits', offset: 0 }, shapeOf(shape, 'random.bits'), 'int32');
}

/** Uniform float32 samples in [minval, maxval) (JAX's algorithm: 23 random mantissa bits). */
export function uniform(k: NDArray, shape?: readonly number[], minval = 0, maxval = 1): NDArray {
  const u = bind('threefry', [keyOf(k, 'random.uniform')], { out: 'unit', offset: 0 }, shapeOf(shape, 'random.uniform'), 'float32');
  if (minval === 0 && maxval === 1) return u;
  return maximum(addScalar(scale(u, maxval - minval), minval), minval);
}

/** Standard normal samples: sqrt(2) erfinv(u) for u uniform on (-1, 1), JAX's method. */
export function normal(k: NDArray, shape?: readonly number[]): NDArray {
  const lo = Math.fround(-1 + 2 ** -24); // nextafter(-1, 0) in float32
  return scale(erfInv(uniform(k, shape, lo, 1)), Math.SQRT2);
}

/** Booleans, true with probability p (a number or an array broadcast to shape): uniform < p. */
export function bernoulli(k: NDArray, p: ArrayOrScalar = 0.5, shape?: readonly number[]): NDArray {
  const s = shape ?? (p instanceof NDArray ? p.shape : []);
  return less(uniform(k, s), p);
}

/**
 * Samples of categories from unnormalised log-probabilities along `axis`
 * (int32 indices), by the Gumbel-max trick as JAX's categorical.
 */
export function categorical(k: NDArray, logits: NDArray, axis = -1): NDArray {
  need(logits, 'random.categorical', 'logits');
  if (logits.ndim === 0) throw new ShapeError('random.categorical: logits need at least one axis');
  const tiny = 1.1754943508222875e-38;
  const gumbel = neg(log(neg(log(uniform(k, logits.shape, tiny, 1)))));
  return argmax(add(astype(logits, 'float32'), gumbel), axis);
}

/** A random permutation of 0..n-1 (int32), or of x's rows (axis 0). Ranks uniform keys: O(n^2) work, meant for shuffling datasets, not sorting millions. */
export function permutation(k: NDArray, x: number | NDArray): NDArray {
  keyOf(k, 'random.permutation');
  if (x instanceof NDArray) {
    if (x.ndim === 0) throw new ShapeError('random.permutation: cannot permute a 0-d array');
    return take(x, permutation(k, x.shape[0]!), 0);
  }
  if (!Number.isInteger(x) || x < 0) throw new ValueError(`random.permutation: n must be a non-negative integer, got ${x}`);
  return bind('permutation_of', [uniform(k, [x])], {}, [x], 'int32');
}

/** Random int32 in [minval, maxval): floor of a scaled uniform (for ranges up to 2^24, each value equally likely). */
export function randint(k: NDArray, shape: readonly number[], minval: number, maxval: number): NDArray {
  if (!Number.isInteger(minval) || !Number.isInteger(maxval) || maxval <= minval)
    throw new ValueError(`random.randint: need integers minval < maxval, got ${minval}, ${maxval}`);
  const u = uniform(k, shape);
  return add(minimum(astype(scale(u, maxval - minval), 'int32'), maxval - minval - 1), minval);
}
