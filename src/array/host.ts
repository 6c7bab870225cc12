// Small graphs on the host. A GPU round trip costs a fixed few hundred
// microseconds (encode, submit, map) whatever the size, which is most of the
// time of a problem like the reference one at (N, d) = (1, 2). When every
// input of a pending graph already has a host copy and the graph's total
// work is tiny, the executor evaluates it here instead, with the same
// primitives (so a grad's backward pass runs here too) — TF.js's WebGPU
// backend forwards small CPU-resident ops to its CPU kernels the same way.
//
// Each primitive's host rule sits in the rules table next to its WGSL
// (primitives.ts, field `host`); this file has the shared helpers. A float32
// value is a Float32Array (so every op rounds as the GPU's do), an int32 or
// bool one an Int32Array (so int32 arithmetic wraps as WGSL's does);
// arithmetic inside one op is float64, so sums and products are at least as
// accurate as the kernels'. Random numbers and Adam stay on the
// GPU (their kernels define the values).

import type { Node } from './node';
import { aroundAxis, contiguousStrides as strides, matmulDims } from './shapes';
import { hostArray, type DType, type HostArray } from './dtype';

export type HostRule = (n: Node, inputs: HostArray[]) => HostArray;

/** float32 to int32 as the convert kernel does it: toward zero, saturating, NaN to 0. */
export function toInt32(x: number): number {
  if (isNan(x)) return 0;
  if (x >= 2147483648) return 2147483647;
  if (x <= -2147483648) return -2147483648;
  return Math.trunc(x);
}

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
export function hostMap(fn: (args: number[], params: Record<string, any>, i: number, n: Node) => number): HostRule {
  return (n, inputs) => {
    const out = hostArray(n.dtype, n.size);
    const offsets = n.inputs.map((q) => broadcastOffsets(n.shape, q.shape));
    const args = new Array<number>(inputs.length);
    for (let i = 0; i < n.size; i++) {
      for (let k = 0; k < inputs.length; k++) args[k] = inputs[k]![offsets[k] ? offsets[k]![i]! : i]!;
      out[i] = fn(args, n.params, i, n);
    }
    return out;
  };
}

/** The value's own data, reshaped or viewed (no copy). */
export function hostAlias(n: Node, [x]: HostArray[]): HostArray {
  const at = ((n.params.offset as number | undefined) ?? 0) / 4;
  return x!.subarray(at, at + n.size);
}

/** out[i] = x[base + sum_d pos_d(i) * st[d]]: transposes and slices. */
export function hostGather(n: Node, x: HostArray, base: number, st: readonly number[]): HostArray {
  const out = hostArray(n.dtype, n.size);
  walk(n.shape, st, base, (k, o) => (out[k] = x[o]!));
  return out;
}

export function hostTranspose(n: Node, [x]: HostArray[]): HostArray {
  const st = strides(n.inputs[0]!.shape);
  return hostGather(
    n,
    x!,
    0,
    (n.params.perm as number[]).map((p) => st[p]!),
  );
}

export function hostSlice(n: Node, [x]: HostArray[]): HostArray {
  const st = strides(n.inputs[0]!.shape);
  const base = (n.params.starts as number[]).reduce((o, s, d) => o + s * st[d]!, 0);
  return hostGather(n, x!, base, st);
}

export function hostPad(n: Node, [x]: HostArray[]): HostArray {
  const out = hostArray(n.dtype, n.size);
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

/** The inputs one after another along params.axis: each output row (the axes before it) is the inputs' rows in turn. */
export function hostConcatenate(n: Node, xs: HostArray[]): HostArray {
  const out = hostArray(n.dtype, n.size);
  const ax = n.params.axis as number;
  const outer = n.shape.slice(0, ax).reduce((a, b) => a * b, 1);
  const widths = n.inputs.map((q) => q.shape.slice(ax).reduce((a, b) => a * b, 1));
  const row = widths.reduce((a, b) => a + b, 0);
  for (let o = 0; o < outer; o++) {
    let at = o * row;
    xs.forEach((x, k) => {
      const w = widths[k]!;
      out.set(x.subarray(o * w, (o + 1) * w), at);
      at += w;
    });
  }
  return out;
}

/** A contiguous run of axes of a node's input as (A, R, B). */
export function runDims(shape: readonly number[], axes: readonly number[]): [number, number, number] {
  const lo = axes.length ? axes[0]! : 0;
  const hi = axes.length ? axes[axes.length - 1]! + 1 : 0;
  const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
  return [prod(shape.slice(0, lo)), axes.length ? prod(shape.slice(lo, hi)) : 1, prod(shape.slice(hi))];
}

/** Reduce (A, R, B) -> (A, B) over a contiguous run of axes with `combine` from `init` (sums accumulate in float64). */
export function hostReduce(combine: (acc: number, v: number) => number, init: (n: Node) => number): HostRule {
  return (n, [x]) => {
    const [A, R, B] = runDims(n.inputs[0]!.shape, n.params.axes as number[]);
    const out = hostArray(n.dtype, A * B);
    for (let a = 0; a < A; a++) {
      for (let b = 0; b < B; b++) {
        let s = init(n);
        for (let r = 0; r < R; r++) s = combine(s, x![(a * R + r) * B + b]!);
        out[a * B + b] = s;
      }
    }
    return out;
  };
}

const plainSum = hostReduce(
  (s, v) => s + v,
  () => 0,
);

/** A sum, then (a mean's) scale, rounded as the kernels round: the float32 sum times the float32 constant. */
export const hostSum: HostRule = (n, xs) => {
  const out = plainSum(n, xs);
  const c = n.params.scale as number | undefined;
  if (c !== undefined) for (let i = 0; i < out.length; i++) out[i] = out[i]! * Math.fround(c);
  return out;
};

/** C[b] = op(A[b]) @ op(B[b]) with transpose flags and a broadcast batch, accumulated in float64. */
export function hostMatmul(n: Node, [A, B]: HostArray[]): HostArray {
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

// ---- max, min, argmax, argmin ----

export function maxOf(s: number, v: number): number {
  return isNan(s) || isNan(v) ? NaN : Math.max(s, v);
}
export function lowest(d: DType): number {
  return d === 'float32' ? -Infinity : d === 'int32' ? -2147483648 : 0;
}
export function highest(d: DType): number {
  return d === 'float32' ? Infinity : d === 'int32' ? 2147483647 : 1;
}

/** argmax/argmin on the host: the first best index, or the first NaN. */
export function hostArg(better: (v: number, best: number) => boolean): HostRule {
  return (n, [x]) => {
    const [A, R, B] = runDims(n.inputs[0]!.shape, [n.params.axis as number]);
    const out = new Int32Array(A * B);
    for (let a = 0; a < A; a++)
      for (let b = 0; b < B; b++) {
        let at = 0;
        let best = x![a * R * B + b]!;
        for (let r = 1; r < R && !isNan(best); r++) {
          const v = x![(a * R + r) * B + b]!;
          if (isNan(v) || better(v, best)) [best, at] = [v, r];
        }
        out[a * B + b] = at;
      }
    return out;
  };
}

// ---- indexing ----

/** An index as the kernels read it: i mod N for i in [-N, N), else clamped to [0, N - 1]. */
const rowOf = (i: number, N: number) => Math.min(Math.max(i < 0 ? i + N : i, 0), N - 1);

export function hostTake(along: boolean): HostRule {
  return (n, [x, idx]) => {
    const [, N, B] = aroundAxis(n.inputs[0]!.shape, n.params.axis as number);
    const K = along ? n.shape[n.params.axis as number]! : idx!.length;
    const out = hostArray(n.dtype, n.size);
    for (let o = 0; o < n.size; o++) {
      const b = o % B;
      const a = Math.floor(o / (B * K));
      const i = along ? idx![o]! : idx![Math.floor(o / B) % K]!;
      out[o] = x![(a * N + rowOf(i, N)) * B + b]!;
    }
    return out;
  };
}

export function hostTakeAdd(along: boolean): HostRule {
  return (n, [g, idx]) => {
    const [A, N, B] = aroundAxis(n.shape, n.params.axis as number);
    const K = along ? n.inputs[1]!.shape[n.params.axis as number]! : idx!.length;
    const acc = new Float64Array(n.size);
    for (let a = 0; a < A; a++)
      for (let k = 0; k < K; k++)
        for (let b = 0; b < B; b++) {
          const at = (a * K + k) * B + b;
          acc[(a * N + rowOf(along ? idx![at]! : idx![k]!, N)) * B + b]! += g![at]!;
        }
    return Float32Array.from(acc);
  };
}

// ---- special functions ----

/** erf in float64 (more accurate than the kernel's erf_s): its Taylor series below 2.5, else 1 - erfc by a continued fraction. */
export function erfHost(x: number): number {
  if (isNan(x)) return x;
  const z = Math.abs(x);
  if (z < 2.5) {
    let term = z;
    let sum = z;
    for (let n = 1; n < 100 && Math.abs(term) > 1e-17 * sum; n++) {
      term *= (-z * z) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * sum * (2 / Math.sqrt(Math.PI));
  }
  // erfc(z) = exp(-z^2) / sqrt(pi) / (z + (1/2) / (z + 1 / (z + (3/2) / (z + ...))))
  let cf = z;
  for (let k = 60; k >= 1; k--) cf = z + k / 2 / cf;
  return Math.sign(x) * (1 - Math.exp(-z * z) / Math.sqrt(Math.PI) / cf);
}

/** erf^-1: Giles' polynomials (the kernel's erf_inv_s, shaders/elementwise.wgsl), then two Newton steps on erfHost, so float64-accurate. */
export function erfInvHost(x: number): number {
  if (isNan(x) || Math.abs(x) > 1) return NaN;
  if (Math.abs(x) === 1) return x * Infinity;
  let w = -Math.log((1 - x) * (1 + x));
  const [c, shift] =
    w < 5
      ? [[2.81022636e-8, 3.43273939e-7, -3.5233877e-6, -4.39150654e-6, 0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941], 2.5]
      : [[-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613, 0.00943887047, 1.00167406, 2.83297682], 3];
  w = w < 5 ? w - shift : Math.sqrt(w) - shift;
  let y = c.reduce((p, k) => k + p * w, 0) * x;
  for (let k = 0; k < 2; k++) y -= (erfHost(y) - x) / ((2 / Math.sqrt(Math.PI)) * Math.exp(-y * y));
  return y;
}

// ---- Threefry-2x32 (shaders/random.wgsl) ----

const rotl = (x: number, r: number) => ((x << r) | (x >>> (32 - r))) >>> 0;

/** Threefry-2x32, 20 rounds, on uint32 words. */
export function threefry2x32(k0: number, k1: number, c0: number, c1: number): [number, number] {
  const ks = [k0 >>> 0, k1 >>> 0, (k0 ^ k1 ^ 0x1bd11bda) >>> 0];
  const rot = [
    [13, 15, 26, 6],
    [17, 29, 16, 24],
  ];
  let x0 = (c0 + ks[0]!) >>> 0;
  let x1 = (c1 + ks[1]!) >>> 0;
  for (let g = 0; g < 5; g++) {
    for (const r of rot[g % 2]!) {
      x0 = (x0 + x1) >>> 0;
      x1 = (rotl(x1, r) ^ x0) >>> 0;
    }
    x0 = (x0 + ks[(g + 1) % 3]!) >>> 0;
    x1 = (x1 + ks[(g + 2) % 3]! + g + 1) >>> 0;
  }
  return [x0, x1];
}

/** The threefry primitive on the host: bits, subkeys or unit floats, as random.wgsl. */
export function hostThreefry(n: Node, [key]: HostArray[]): HostArray {
  const [k0, k1] = [key![0]! >>> 0, key![1]! >>> 0];
  const mode = n.params.out as 'bits' | 'split' | 'unit';
  const out = hostArray(n.dtype, n.size);
  for (let i = 0; i < n.size; i++) {
    const [x0, x1] = threefry2x32(k0, k1, 0, ((mode === 'split' ? i >> 1 : i) + (n.params.offset as number)) >>> 0);
    if (mode === 'split') out[i] = (i % 2 === 0 ? x0 : x1) | 0;
    else if (mode === 'bits') out[i] = (x0 ^ x1) | 0;
    else out[i] = new Float32Array(new Uint32Array([(((x0 ^ x1) >>> 9) | 0x3f800000) >>> 0]).buffer)[0]! - 1;
  }
  return out;
}

/** permutation_of on the host: out[rank(u[i])] = i, ranks stable. */
export function hostPermutationOf(n: Node, [u]: HostArray[]): HostArray {
  const order = Array.from({ length: n.size }, (_, i) => i).sort((a, b) => u![a]! - u![b]! || a - b);
  return Int32Array.from(order);
}

// ---- convolution windows ----

/** Calls visit(patchIndex, imageIndex or -1 for padding) for every window entry, in patch order. */
function eachWindowEntry(n: Node, image: readonly number[], visit: (o: number, i: number) => void): void {
  const p = n.params;
  const [N, H, W, C] = image as [number, number, number, number];
  let o = 0;
  for (let b = 0; b < N; b++)
    for (let oh = 0; oh < p.oh; oh++)
      for (let ow = 0; ow < p.ow; ow++)
        for (let kh = 0; kh < p.kh; kh++)
          for (let kw = 0; kw < p.kw; kw++) {
            const ih = oh * p.sh + kh - p.padTop;
            const iw = ow * p.sw + kw - p.padLeft;
            const inside = ih >= 0 && iw >= 0 && ih < H && iw < W;
            for (let c = 0; c < C; c++) visit(o++, inside ? ((b * H + ih) * W + iw) * C + c : -1);
          }
}

export function hostIm2col(n: Node, [x]: HostArray[]): HostArray {
  const out = new Float32Array(n.size);
  eachWindowEntry(n, n.inputs[0]!.shape, (o, i) => (out[o] = i < 0 ? n.params.pad : x![i]!));
  return out;
}

/** For each window (in output order), the image index of its first maximum (NaN above all), -1 if none is inside. */
function windowChoices(n: Node, image: readonly number[], x: HostArray): Int32Array {
  const p = n.params;
  const C = image[3]!;
  const entries = p.kh * p.kw;
  const choice = new Int32Array((image[0]! * p.oh * p.ow * C) as number).fill(-1);
  const best = new Float64Array(choice.length);
  // eachWindowEntry visits (window, entry, channel) in patch order; the window is o / (entries * C).
  eachWindowEntry(n, image, (o, i) => {
    if (i < 0) return;
    const c = o % C;
    const w = Math.floor(o / (entries * C)) * C + c;
    const v = x[i]!;
    const cur = best[w]!;
    if (choice[w] === -1 || (!Number.isNaN(cur) && (v > cur || Number.isNaN(v)))) {
      choice[w] = i;
      best[w] = v;
    }
  });
  return choice;
}

export function hostMaxPool(n: Node, [x]: HostArray[]): HostArray {
  const choice = windowChoices(n, n.inputs[0]!.shape, x!);
  return Float32Array.from(choice, (i) => (i < 0 ? -Infinity : x![i]!));
}

export function hostMaxPoolGrad(n: Node, [x, g]: HostArray[]): HostArray {
  const acc = new Float64Array(n.size);
  windowChoices(n, n.shape, x!).forEach((i, w) => {
    if (i >= 0) acc[i]! += g![w]!;
  });
  return Float32Array.from(acc);
}

export function hostCol2im(n: Node, [cols]: HostArray[]): HostArray {
  const acc = new Float64Array(n.size);
  eachWindowEntry(n, n.shape, (o, i) => {
    if (i >= 0) acc[i]! += cols![o]!;
  });
  return Float32Array.from(acc);
}
