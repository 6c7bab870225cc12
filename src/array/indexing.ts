// Indexing with integer arrays along one axis: take (embeddings, a row per
// label) and takeAlongAxis (a per-row pick, like the label's log-probability),
// with scatter-add VJPs that are right for repeated indices.
//
// Out-of-range indices: an index i in [-N, N) means i mod N (negative counts
// from the end, as in NumPy); anything else is clamped to [0, N - 1] (JAX's
// "clip" mode), since a kernel cannot throw. Indices whose values are on the
// host (an array made from JS data, not yet computed on the GPU) are checked
// first, and an out-of-range one is an IndexError.

import { DTypeError, IndexError, ShapeError } from '../errors';
import { NDArray } from './ndarray';
import { array, bind, broadcastShapes, broadcastTo, need, normAxes, reshape } from './ops';

const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

/** Indices as an int32 array: an NDArray of int32, a number or a JS array of integers. */
function indexArray(indices: NDArray | number | readonly number[], op: string): NDArray {
  const idx = indices instanceof NDArray ? indices : array(indices as number[], { dtype: 'int32' });
  if (idx.dtype !== 'int32') {
    throw new DTypeError(`${op}: indices must be int32, got ${idx.dtype} (astype(indices, 'int32'), or make them with an Int32Array)`);
  }
  return idx;
}

/** Check indices already on the host against the axis' length. */
function checkRange(idx: NDArray, N: number, op: string, axis: number): void {
  const host = idx.use().cpu;
  if (N === 0 && idx.size > 0) throw new IndexError(`${op}: cannot index axis ${axis} of size 0`);
  if (!host) return;
  for (let k = 0; k < host.length; k++) {
    const i = host[k]!;
    if (i < -N || i >= N) throw new IndexError(`${op}: index ${i} (element ${k}) is out of range for axis ${axis} of size ${N}`);
  }
}

/**
 * Elements of `a` at `indices` along `axis` (JAX's take): the result's
 * shape is a.shape[:axis] + indices.shape + a.shape[axis+1:]. Without an
 * axis, `a` is flattened first. Differentiable in `a`.
 */
export function take(a: NDArray, indices: NDArray | number | readonly number[], axis?: number): NDArray {
  need(a, 'take', 'a');
  const idx = indexArray(indices, 'take');
  const src = axis === undefined ? reshape(a, [a.size]) : a;
  if (src.ndim === 0) throw new ShapeError('take: cannot index a 0-d array');
  const ax = normAxes(axis ?? 0, src.ndim, 'take')[0]!;
  checkRange(idx, src.shape[ax]!, 'take', ax);
  const shape = [...src.shape.slice(0, ax), ...idx.shape, ...src.shape.slice(ax + 1)];
  return bind('take', [src, reshape(idx, [idx.size])], { axis: ax }, shape, src.dtype);
}

/**
 * out[..., k, ...] = a[..., indices[..., k, ...], ...] along `axis` (JAX's
 * take_along_axis): indices have a's rank; the other axes broadcast. Picks
 * a label's logit per row: takeAlongAxis(logits, expandDims(labels, -1), -1).
 */
export function takeAlongAxis(a: NDArray, indices: NDArray | readonly number[], axis: number): NDArray {
  need(a, 'takeAlongAxis', 'a');
  const idx = indexArray(indices as NDArray | number[], 'takeAlongAxis');
  if (idx.ndim !== a.ndim) {
    throw new ShapeError(`takeAlongAxis: indices ${fmt(idx.shape)} must have the rank of a ${fmt(a.shape)}`);
  }
  if (a.ndim === 0) throw new ShapeError('takeAlongAxis: cannot index a 0-d array');
  const ax = normAxes(axis, a.ndim, 'takeAlongAxis')[0]!;
  checkRange(idx, a.shape[ax]!, 'takeAlongAxis', ax);
  // Every axis but `axis` broadcasts between a and the indices.
  const other = (s: readonly number[]) => s.map((d, i) => (i === ax ? 1 : d));
  const common = broadcastShapes(other(a.shape), other(idx.shape), 'takeAlongAxis');
  const aFull = broadcastTo(
    a,
    common.map((d, i) => (i === ax ? a.shape[ax]! : d)),
  );
  const iFull = broadcastTo(
    idx,
    common.map((d, i) => (i === ax ? idx.shape[ax]! : d)),
  );
  return bind('take_along_axis', [aFull, iFull], { axis: ax }, iFull.shape, a.dtype);
}

/** @internal take's VJP: zeros of `shape` with each cotangent row added where it was taken from. */
export function takeAdd(g: NDArray, idx: NDArray, axis: number, shape: readonly number[]): NDArray {
  return bind('take_add', [g, idx], { axis, size: shape[axis]! }, shape, 'float32');
}

/** @internal takeAlongAxis's VJP. */
export function takeAlongAxisAdd(g: NDArray, idx: NDArray, axis: number, shape: readonly number[]): NDArray {
  return bind('take_along_axis_add', [g, idx], { axis, size: shape[axis]! }, shape, 'float32');
}
