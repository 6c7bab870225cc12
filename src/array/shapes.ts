// Shape arithmetic shared by the kernels' lowering (primitives.ts) and the host rules (host.ts).

import type { Node } from './node';

/** Row-major strides of a contiguous array. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    st[d] = s;
    s *= shape[d]!;
  }
  return st;
}

/**
 * A matmul node's dimensions: C[b] (M, N) = op(A[b]) (M, K) @ op(B[b]) (K, N), op = optional
 * transpose; aBatch / bBatch are the elements between batch entries (0 = broadcast).
 */
export function matmulDims(n: Node) {
  const [a, b] = n.inputs as [Node, Node];
  const ta = n.params.transA as boolean;
  const tb = n.params.transB as boolean;
  const M = n.shape[n.shape.length - 2]!;
  const N = n.shape[n.shape.length - 1]!;
  const K = ta ? a.shape[a.shape.length - 2]! : a.shape[a.shape.length - 1]!;
  const batch = n.shape.length === 3 ? n.shape[0]! : 1;
  const aBatch = a.shape.length === 3 && a.shape[0] !== 1 ? M * K : 0;
  const bBatch = b.shape.length === 3 && b.shape[0] !== 1 ? K * N : 0;
  return { ta, tb, M, N, K, batch, aBatch, bBatch };
}

/** The (A, N, B) view of `shape` around `axis`. */
export function aroundAxis(shape: readonly number[], axis: number): [number, number, number] {
  return [shape.slice(0, axis).reduce((a, b) => a * b, 1), shape[axis]!, shape.slice(axis + 1).reduce((a, b) => a * b, 1)];
}
