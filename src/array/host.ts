// Small graphs on the host. A GPU round trip costs a fixed few hundred
// microseconds (encode, submit, map) whatever the size, which is most of the
// time of a problem like the reference one at (N, d) = (1, 2). When every
// input of a pending graph already has a host copy and the graph's total
// work is tiny, the executor evaluates it here instead, with the same
// primitives (so a grad's backward pass runs here too) — TF.js's WebGPU
// backend forwards small CPU-resident ops to its CPU kernels the same way.
//
// Each primitive's host rule sits in the rules table next to its WGSL
// (primitives.ts, field `host`); this file has the shared helpers. Values are
// float32 (each rule's output is a Float32Array, so every op rounds as the
// GPU's do); arithmetic inside one op is float64, so sums and products are
// at least as accurate as the kernels'. Random numbers and Adam stay on the
// GPU (their kernels define the values).

import type { Node } from './node';
import { contiguousStrides as strides, matmulDims } from './shapes';

export type HostRule = (n: Node, inputs: Float32Array[]) => Float32Array;

export function isNan(x: number): boolean {
  return x !== x;
}

/**
 * Calls visit(k, offset) for k = 0 .. size-1 in row-major order over `shape`,
 * where offset = base + sum_d pos_d(k) * st[d]: the walk behind broadcasting,
 * gathers (transpose, slice) and pad.
 */
function walk(shape: readonly number[], st: readonly number[], base: number, visit: (k: number, offset: number) => void): void {
  const size = shape.reduce((a, b) => a * b, 1);
  const pos = new Array<number>(shape.length).fill(0);
  let o = base;
  for (let k = 0; k < size; k++) {
    visit(k, o);
    for (let d = shape.length - 1; d >= 0; d--) {
      pos[d]!++;
      o += st[d]!;
      if (pos[d]! < shape[d]!) break;
      o -= st[d]! * pos[d]!;
      pos[d] = 0;
    }
  }
}

/** Element k of each input for output element i, under NumPy broadcasting (trailing axes aligned). */
function broadcastOffsets(out: readonly number[], inp: readonly number[]): Int32Array | null {
  if (inp.length === out.length && inp.every((d, i) => d === out[i])) return null;
  const st = strides(inp);
  const off = out.length - inp.length;
  const bst = out.map((_, d) => (d - off >= 0 && inp[d - off] !== 1 ? st[d - off]! : 0));
  const idx = new Int32Array(out.reduce((x, y) => x * y, 1));
  walk(out, bst, 0, (k, o) => (idx[k] = o));
  return idx;
}

/** An elementwise rule from a scalar function of the (broadcast) inputs and the node's params. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a node's params, typed by its primitive's entry
export function hostMap(fn: (args: number[], params: Record<string, any>, i: number) => number): HostRule {
  return (n, inputs) => {
    const out = new Float32Array(n.size);
    const offsets = n.inputs.map((q) => broadcastOffsets(n.shape, q.shape));
    const args = new Array<number>(inputs.length);
    for (let i = 0; i < n.size; i++) {
      for (let k = 0; k < inputs.length; k++) args[k] = inputs[k]![offsets[k] ? offsets[k]![i]! : i]!;
      out[i] = fn(args, n.params, i);
    }
    return out;
  };
}

/** The value's own data, reshaped or viewed (no copy). */
export function hostAlias(n: Node, [x]: Float32Array[]): Float32Array {
  const at = ((n.params.offset as number | undefined) ?? 0) / 4;
  return x!.subarray(at, at + n.size);
}

/** out[i] = x[base + sum_d pos_d(i) * st[d]]: transposes and slices. */
export function hostGather(n: Node, x: Float32Array, base: number, st: readonly number[]): Float32Array {
  const out = new Float32Array(n.size);
  walk(n.shape, st, base, (k, o) => (out[k] = x[o]!));
  return out;
}

export function hostTranspose(n: Node, [x]: Float32Array[]): Float32Array {
  const st = strides(n.inputs[0]!.shape);
  return hostGather(
    n,
    x!,
    0,
    (n.params.perm as number[]).map((p) => st[p]!),
  );
}

export function hostSlice(n: Node, [x]: Float32Array[]): Float32Array {
  const st = strides(n.inputs[0]!.shape);
  const base = (n.params.starts as number[]).reduce((o, s, d) => o + s * st[d]!, 0);
  return hostGather(n, x!, base, st);
}

export function hostPad(n: Node, [x]: Float32Array[]): Float32Array {
  const out = new Float32Array(n.size);
  const starts = n.params.starts as number[];
  const ost = strides(n.shape);
  // Walk the input in order; the offset is where each element lands in the output.
  walk(
    n.inputs[0]!.shape,
    ost,
    starts.reduce((acc, s, d) => acc + s * ost[d]!, 0),
    (k, o) => (out[o] = x![k]!),
  );
  return out;
}

/** Sum over a contiguous run of axes, as (A, R, B) -> (A, B), accumulated in float64. */
export function hostSum(n: Node, [x]: Float32Array[]): Float32Array {
  const shape = n.inputs[0]!.shape;
  const axes = n.params.axes as number[];
  const lo = axes.length ? axes[0]! : 0;
  const hi = axes.length ? axes[axes.length - 1]! + 1 : 0;
  const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
  const A = prod(shape.slice(0, lo));
  const R = axes.length ? prod(shape.slice(lo, hi)) : 1;
  const B = prod(shape.slice(hi));
  const out = new Float32Array(A * B);
  for (let a = 0; a < A; a++) {
    for (let b = 0; b < B; b++) {
      let s = 0;
      for (let r = 0; r < R; r++) s += x![(a * R + r) * B + b]!;
      out[a * B + b] = s;
    }
  }
  return out;
}

/** C[b] = op(A[b]) @ op(B[b]) with transpose flags and a broadcast batch, accumulated in float64. */
export function hostMatmul(n: Node, [A, B]: Float32Array[]): Float32Array {
  const { ta, tb, M, N, K, batch, aBatch, bBatch } = matmulDims(n);
  const out = new Float32Array(n.size);
  for (let z = 0; z < batch; z++) {
    const ao = z * aBatch;
    const bo = z * bBatch;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += A![ao + (ta ? k * M + i : i * K + k)]! * B![bo + (tb ? j * K + k : k * N + j)]!;
        out[z * M * N + i * N + j] = s;
      }
    }
  }
  return out;
}

/**
 * x^e as the kernel's pow_s computes it: 1 for e = 0, NaN for a negative x and a
 * non-integer e, except (-Inf)^e (Inf for e > 0, 0 for e < 0, as IEEE says).
 * Math.pow already gives IEEE's 0^e (0 or Inf, -0's sign for odd e).
 */
export function powScalar(x: number, e: number): number {
  if (e === 0) return 1;
  if (x >= 0) return Math.pow(x, e);
  if (e !== Math.floor(e)) return x === -Infinity ? (e > 0 ? Infinity : 0) : NaN;
  const m = Math.pow(-x, e);
  return Math.abs(e) % 2 === 1 ? -m : m;
}

/** A node's host cost in element-operations (a matmul counts its multiply-adds). */
export function hostWork(n: Node): number {
  return n.prim === 'matmul' ? n.size * Math.max(1, matmulDims(n).K) : n.size;
}
