// Constant folding when the graph is built: an op whose inputs are all fills
// (full, zeros, ones) is a fill too, where that gives the kernel's bits.

import type { DType } from './dtype';
import type { Prim, PrimParams } from './prims';

/**
 * The value of `prim` over float32 fills, where float64 arithmetic rounded once
 * to float32 gives the kernel's bits exactly (+, −, × and reshape). Folding
 * them matters for gradients: a mean's seed, scale(ones) reshaped, would
 * otherwise be a kernel of its own in every step.
 */
export function foldFills(prim: Prim, nodes: readonly { prim: Prim; params: unknown; dtype: DType }[], params: unknown): number | undefined {
  if (!nodes.length || !nodes.every((n) => n.prim === 'fill' && n.dtype === 'float32')) return undefined;
  const [a, b] = nodes.map((n) => Math.fround((n.params as PrimParams['fill']).value));
  const c = Math.fround((params as { c?: number }).c ?? 0);
  switch (prim) {
    case 'reshape':
      return a; // (not broadcast_to: a broadcast fill folds into its reader's kernel anyway)
    case 'neg':
      return -a!;
    case 'scale':
      return Math.fround(a! * c);
    case 'add_scalar':
      return Math.fround(a! + c);
    case 'add':
      return Math.fround(a! + b!);
    case 'sub':
      return Math.fround(a! - b!);
    case 'mul':
      return Math.fround(a! * b!);
    default:
      return undefined;
  }
}
