// Float64 CPU reference implementations for the forward-op tests, written
// independently of the library (no imports from src/). Arrays are row-major
// {shape, data} pairs. Reductions and contractions also return the sum of
// |terms| per output element, so tests can use error bounds of the form
// |err| <= c * K * eps * sum|terms| instead of blanket tolerances.

export interface Ref {
  shape: number[];
  data: Float64Array;
}

/** float32 unit roundoff (half an ulp of 1). */
export const U32 = 2 ** -24;
/** float32 machine epsilon (one ulp of 1). */
export const EPS32 = 2 ** -23;

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function stridesOf(shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    st[d] = s;
    s *= shape[d]!;
  }
  return st;
}

export function ref(shape: readonly number[], data: ArrayLike<number>): Ref {
  if (sizeOf(shape) !== data.length) throw new Error(`ref: ${data.length} values for shape [${shape}]`);
  return { shape: [...shape], data: Float64Array.from(data) };
}

/** Multi-index of flat index i in `shape`. */
function unravel(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d]!;
    i = Math.floor(i / shape[d]!);
  }
  return idx;
}

/** NumPy broadcasting of shapes; null when they don't broadcast. */
export function broadcastShape(a: readonly number[], b: readonly number[]): number[] | null {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = i - (n - a.length) >= 0 ? a[i - (n - a.length)]! : 1;
    const y = i - (n - b.length) >= 0 ? b[i - (n - b.length)]! : 1;
    if (x !== y && x !== 1 && y !== 1) return null;
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** Flat index into `inShape` of the element that broadcasting maps to output multi-index `idx`. */
function broadcastIndex(idx: number[], inShape: readonly number[]): number {
  const off = idx.length - inShape.length;
  let k = 0;
  for (let d = 0; d < inShape.length; d++) k = k * inShape[d]! + (inShape[d] === 1 ? 0 : idx[d + off]!);
  return k;
}

export function broadcastTo(x: Ref, shape: readonly number[]): Ref {
  const out = new Float64Array(sizeOf(shape));
  for (let i = 0; i < out.length; i++) out[i] = x.data[broadcastIndex(unravel(i, shape), x.shape)]!;
  return { shape: [...shape], data: out };
}

export function unary(x: Ref, f: (v: number) => number): Ref {
  return { shape: [...x.shape], data: x.data.map(f) };
}

export function binary(a: Ref, b: Ref, f: (x: number, y: number) => number): Ref {
  const shape = broadcastShape(a.shape, b.shape);
  if (!shape) throw new Error(`reference: [${a.shape}] and [${b.shape}] do not broadcast`);
  const out = new Float64Array(sizeOf(shape));
  for (let i = 0; i < out.length; i++) {
    const idx = unravel(i, shape);
    out[i] = f(a.data[broadcastIndex(idx, a.shape)]!, b.data[broadcastIndex(idx, b.shape)]!);
  }
  return { shape, data: out };
}

/** Sum over `axes` (all when undefined); also returns sum|x| per output and the count of terms. */
export function sum(x: Ref, axes?: readonly number[], keepdims = false): { value: Ref; abs: Float64Array; count: number } {
  const nd = x.shape.length;
  const ax = new Set((axes ?? [...Array(nd).keys()]).map((a) => (a < 0 ? a + nd : a)));
  const keptShape = x.shape.map((d, i) => (ax.has(i) ? 1 : d));
  const outShape = keepdims ? keptShape : x.shape.filter((_, i) => !ax.has(i));
  const value = new Float64Array(sizeOf(keptShape));
  const abs = new Float64Array(value.length);
  const kst = stridesOf(keptShape);
  for (let i = 0; i < x.data.length; i++) {
    const idx = unravel(i, x.shape);
    let o = 0;
    for (let d = 0; d < nd; d++) if (!ax.has(d)) o += idx[d]! * kst[d]!;
    value[o]! += x.data[i]!;
    abs[o]! += Math.abs(x.data[i]!);
  }
  let count = 1;
  for (const a of ax) count *= x.shape[a]!;
  return { value: { shape: outShape, data: value }, abs, count };
}

export function transpose(x: Ref, perm?: readonly number[]): Ref {
  const p = perm ?? [...x.shape.keys()].reverse();
  const outShape = p.map((a) => x.shape[a]!);
  const ist = stridesOf(x.shape);
  const out = new Float64Array(x.data.length);
  for (let i = 0; i < out.length; i++) {
    const idx = unravel(i, outShape);
    let k = 0;
    for (let d = 0; d < p.length; d++) k += idx[d]! * ist[p[d]!]!;
    out[i] = x.data[k]!;
  }
  return { shape: outShape, data: out };
}

export function slice(x: Ref, starts: readonly number[], stops: readonly number[]): Ref {
  const st = x.shape.map((_, d) => starts[d] ?? 0);
  const sp = x.shape.map((n, d) => stops[d] ?? n);
  const outShape = sp.map((s, d) => s - st[d]!);
  const ist = stridesOf(x.shape);
  const out = new Float64Array(sizeOf(outShape));
  for (let i = 0; i < out.length; i++) {
    const idx = unravel(i, outShape);
    let k = 0;
    for (let d = 0; d < idx.length; d++) k += (idx[d]! + st[d]!) * ist[d]!;
    out[i] = x.data[k]!;
  }
  return { shape: outShape, data: out };
}

/** x placed into zeros of `shape` at `starts`. */
export function pad(x: Ref, starts: readonly number[], shape: readonly number[]): Ref {
  const out = new Float64Array(sizeOf(shape));
  const ost = stridesOf(shape);
  for (let i = 0; i < x.data.length; i++) {
    const idx = unravel(i, x.shape);
    let k = 0;
    for (let d = 0; d < idx.length; d++) k += (idx[d]! + starts[d]!) * ost[d]!;
    out[k] = x.data[i]!;
  }
  return { shape: [...shape], data: out };
}

export function concatenate(xs: Ref[], axis: number): Ref {
  const shape = [...xs[0]!.shape];
  shape[axis] = xs.reduce((n, x) => n + x.shape[axis]!, 0);
  const out: Ref = { shape, data: new Float64Array(sizeOf(shape)) };
  const ost = stridesOf(shape);
  let at = 0;
  for (const x of xs) {
    for (let i = 0; i < x.data.length; i++) {
      const idx = unravel(i, x.shape);
      let k = 0;
      for (let d = 0; d < idx.length; d++) k += (idx[d]! + (d === axis ? at : 0)) * ost[d]!;
      out.data[k] = x.data[i]!;
    }
    at += x.shape[axis]!;
  }
  return out;
}

/**
 * op(A) @ op(B) with NumPy semantics for 2-D and batched 3-D operands (batch
 * axis broadcast when one side has batch 1 or is 2-D); op = transpose of the
 * last two axes when the flag is set. Returns the product and sum_k |a_ik b_kj|.
 */
export function matmul(a: Ref, b: Ref, transA = false, transB = false): { value: Ref; abs: Float64Array; K: number } {
  const ra = a.shape.length;
  const rb = b.shape.length;
  const [am, ak] = transA ? [a.shape[ra - 1]!, a.shape[ra - 2]!] : [a.shape[ra - 2]!, a.shape[ra - 1]!];
  const [bk, bn] = transB ? [b.shape[rb - 1]!, b.shape[rb - 2]!] : [b.shape[rb - 2]!, b.shape[rb - 1]!];
  if (ak !== bk) throw new Error(`reference matmul: inner dims ${ak} vs ${bk}`);
  const ba = ra === 3 ? a.shape[0]! : 1;
  const bb = rb === 3 ? b.shape[0]! : 1;
  const batch = Math.max(ba, bb);
  const M = am;
  const N = bn;
  const K = ak;
  const outShape = ra === 3 || rb === 3 ? [batch, M, N] : [M, N];
  const value = new Float64Array(batch * M * N);
  const abs = new Float64Array(value.length);
  const aAt = (p: number, m: number, k: number) => {
    const base = (ba === 1 ? 0 : p) * M * K;
    return a.data[base + (transA ? k * M + m : m * K + k)]!;
  };
  const bAt = (p: number, k: number, n: number) => {
    const base = (bb === 1 ? 0 : p) * K * N;
    return b.data[base + (transB ? n * K + k : k * N + n)]!;
  };
  for (let p = 0; p < batch; p++) {
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        let t = 0;
        for (let k = 0; k < K; k++) {
          const v = aAt(p, m, k) * bAt(p, k, n);
          s += v;
          t += Math.abs(v);
        }
        value[(p * M + m) * N + n] = s;
        abs[(p * M + m) * N + n] = t;
      }
    }
  }
  return { value: { shape: outShape, data: value }, abs, K };
}

export interface Tolerance {
  /** Allowed |err| = abs + rel * |want| (+ bound[i] when given). */
  abs?: number;
  rel?: number;
  /** Per-element extra allowance (e.g. c * K * eps * sum|terms|). */
  bound?: ArrayLike<number>;
  /** Per-element allowance as a function of the index (overrides abs/rel when given). */
  at?: (i: number, want: number) => number;
}

function fmtNum(v: number): string {
  return Number.isNaN(v) ? 'NaN' : Object.is(v, -0) ? '-0' : String(v);
}

/**
 * Compare a float32 result with a float64 reference. NaN must match NaN and
 * infinities must match exactly; otherwise |got - want| must be within the
 * tolerance. On failure the message names the worst element (index, values,
 * error, allowance) and how many elements failed.
 */
export function expectClose(got: ArrayLike<number>, want: Float64Array | Ref, tol: Tolerance | number, label = ''): void {
  const w = 'data' in want ? want.data : want;
  const t: Tolerance = typeof tol === 'number' ? { rel: tol } : tol;
  const where = label ? `${label}: ` : '';
  if (got.length !== w.length) throw new Error(`${where}length ${got.length}, expected ${w.length}`);
  let worst = -1;
  let worstRatio = 0;
  let bad = 0;
  for (let i = 0; i < w.length; i++) {
    const g = got[i]!;
    const e = w[i]!;
    let ratio: number;
    if (Number.isNaN(e) || Number.isNaN(g)) {
      ratio = Number.isNaN(e) && Number.isNaN(g) ? 0 : Infinity;
    } else if (!Number.isFinite(e) || !Number.isFinite(g)) {
      ratio = e === g ? 0 : Infinity;
    } else {
      const allowed = t.at ? t.at(i, e) : (t.abs ?? 0) + (t.rel ?? 0) * Math.abs(e) + (t.bound ? t.bound[i]! : 0);
      const err = Math.abs(g - e);
      ratio = err === 0 ? 0 : allowed > 0 ? err / allowed : Infinity;
    }
    if (ratio > 1) bad++;
    if (ratio > worstRatio) {
      worstRatio = ratio;
      worst = i;
    }
  }
  if (bad > 0) {
    const g = got[worst]!;
    const e = w[worst]!;
    const allowed = t.at ? t.at(worst, e) : (t.abs ?? 0) + (t.rel ?? 0) * Math.abs(e) + (t.bound ? t.bound[worst]! : 0);
    throw new Error(
      `${where}${bad} of ${w.length} elements out of tolerance; worst at index ${worst}: ` +
        `got ${fmtNum(g)}, want ${fmtNum(e)}, |err| ${Math.abs(g - e)}, allowed ${allowed} (${worstRatio.toFixed(2)}x)`,
    );
  }
}

/** Deterministic float32 values from a seed (mulberry32), uniform in [lo, hi). */
export function randomF32(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out[i] = lo + (hi - lo) * u;
  }
  return out;
}
