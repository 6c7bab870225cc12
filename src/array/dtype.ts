// The three element types and JAX's promotion between them. Every dtype is
// 32 bits wide on the GPU (bool as a u32 0 or 1), so buffers, the pool and
// readback never look at it; only the kernels that compute on values do.

/** An array's element type. */
export type DType = 'float32' | 'int32' | 'bool';

/** Every dtype, for validation messages. */
export const DTYPES: readonly DType[] = ['float32', 'int32', 'bool'];

/** A host copy of a value: float32 as Float32Array; int32 and bool (0 or 1) as Int32Array, bit for bit the GPU's words. */
export type HostArray = Float32Array | Int32Array;

/** What data() gives back: Float32Array, Int32Array, or a Uint8Array of 0 and 1 for bool. */
export type ArrayData = Float32Array | Int32Array | Uint8Array;

/** JAX's lattice for these three: bool < int32 < float32. */
const RANK: Record<DType, number> = { bool: 0, int32: 1, float32: 2 };

/** The result dtype of a binary op on arrays of dtypes a and b (JAX's promote_types). */
export function promote(a: DType, b: DType): DType {
  return RANK[a] >= RANK[b] ? a : b;
}

/**
 * A JS number's dtype next to an array of dtype `with` (JAX's weak typing: a
 * Python scalar takes the array's type unless it needs a wider kind). An
 * integer-valued number is int-like, so it keeps int32 int32; any other
 * number makes the result float32. Next to bool, an integer gives int32.
 */
export function weakDtype(c: number, withDtype: DType): DType {
  if (withDtype === 'float32') return 'float32';
  return Number.isInteger(c) && Math.abs(c) <= 2147483647 ? 'int32' : 'float32';
}

export const isFloat = (d: DType) => d === 'float32';

/** A zero-filled host array of n elements for dtype d. */
export function hostArray(d: DType, n: number): HostArray {
  return d === 'float32' ? new Float32Array(n) : new Int32Array(n);
}

/** Host words read back (or copied) as dtype d's host array. */
export function hostView(d: DType, buffer: ArrayBufferLike, byteOffset: number, n: number): HostArray {
  return d === 'float32' ? new Float32Array(buffer, byteOffset, n) : new Int32Array(buffer, byteOffset, n);
}

/** A host copy as the user sees it: bool becomes a Uint8Array of 0 and 1. */
export function userData(d: DType, x: HostArray): ArrayData {
  return d === 'bool' ? Uint8Array.from(x) : x.slice();
}

/** The WGSL scalar type one element is stored and computed as. */
export function wgslType(d: DType): 'f32' | 'i32' | 'u32' {
  return d === 'float32' ? 'f32' : d === 'int32' ? 'i32' : 'u32';
}
