// Matrix products: matmul with NumPy's rules for 1-D operands and any number
// of leading batch axes (broadcast), dot, and the transposed-operand form the
// VJPs use. The primitive itself is 2-D or batched 3-D; more batch axes are
// folded into one.

import { ShapeError, ValueError } from '../errors';
import { NDArray } from './ndarray';
import { astype, bind, broadcastShapes, broadcastTo, mul, need, reshape, sum } from './ops';

const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

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

/**
 * Matrix product with NumPy's rules: (N,d)@(d,) is a matrix-vector product,
 * (d,)@(d,) a dot, and any leading axes are batch axes, broadcast against
 * each other ((B, H, T, D) @ (B, H, D, T), or (B, T, D) @ (D, E)). int32 and
 * bool operands are multiplied as float32 (the result is float32).
 */
export function matmul(a: NDArray, b: NDArray): NDArray {
  need(a, 'matmul', 'a');
  need(b, 'matmul', 'b');
  if (!(a instanceof NDArray) || !(b instanceof NDArray)) throw new ValueError('matmul: both operands must be NDArrays');
  if (a.ndim === 0 || b.ndim === 0) throw new ShapeError(`matmul: operands must have rank 1 or more, got ${fmt(a.shape)} @ ${fmt(b.shape)}`);
  a = astype(a, 'float32');
  b = astype(b, 'float32');
  const a2 = a.ndim === 1 ? reshape(a, [1, a.shape[0]!]) : a;
  const b2 = b.ndim === 1 ? reshape(b, [b.shape[0]!, 1]) : b;
  if (a2.shape[a2.ndim - 1] !== b2.shape[b2.ndim - 2]) {
    throw new ShapeError(`matmul: inner dimensions differ: ${fmt(a.shape)} @ ${fmt(b.shape)} (${a2.shape[a2.ndim - 1]} vs ${b2.shape[b2.ndim - 2]})`);
  }
  const c = batched(a2, b2);
  if (a.ndim > 1 && b.ndim > 1) return c;
  const shape = c.shape.filter((_, i) => !((a.ndim === 1 && i === c.ndim - 2) || (b.ndim === 1 && i === c.ndim - 1)));
  return reshape(c, shape);
}

/** a @ b for operands of rank 2 or more: the batch axes broadcast, then fold into one for the 3-D primitive. */
function batched(a: NDArray, b: NDArray): NDArray {
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const batch = broadcastShapes(batchA, batchB, 'matmul');
  const count = batch.reduce((x, y) => x * y, 1);
  const fold = (x: NDArray, own: number[]) => {
    const [r, c] = x.shape.slice(-2) as [number, number];
    if (own.reduce((p, q) => p * q, 1) === 1) return reshape(x, [r, c]); // the kernel broadcasts a 2-D operand
    const full = own.length === batch.length && own.every((d, i) => d === batch[i]) ? x : broadcastTo(x, [...batch, r, c]);
    return reshape(full, [count, r, c]);
  };
  // With b one matrix for every batch entry, a's batch and row axes are one long row axis: one 2-D product.
  if (batchB.reduce((p, q) => p * q, 1) === 1 && batch.length > 0 && batchA.length === batch.length) {
    const [m, k] = a.shape.slice(-2) as [number, number];
    const flat = matmulT(reshape(a, [count * m, k]), reshape(b, b.shape.slice(-2)), false, false);
    return reshape(flat, [...batch, m, b.shape[b.ndim - 1]!]);
  }
  const c = matmulT(fold(a, batchA), fold(b, batchB), false, false);
  return reshape(c, [...batch, a.shape[a.ndim - 2]!, b.shape[b.ndim - 1]!]);
}

/** Dot product of two vectors, or sum(a * b) over all elements of equal shapes. */
export const dot = (a: NDArray, b: NDArray) => (a.ndim === 1 && b.ndim === 1 ? matmul(a, b) : sum(mul(a, b)));
