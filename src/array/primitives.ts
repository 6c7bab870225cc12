// The rules table: one entry per primitive, saying what it computes on the GPU
// (an elementwise expression to fuse, or a lowering to kernel calls) and its
// VJP. Shape rules live with the op constructors in ops.ts, which validate the
// user's arguments before a node is made. VJPs are written with the library's
// own differentiable ops, so differentiating a gradient (grad of grad) works.

import type { Node } from './node';
import type { Prim, PrimParams } from './prims';
import type { KernelPolicy } from '../config';
import type { NDArray } from './ndarray';
import { grid1d, Words, type KernelCall, type Lowering, type Slot } from '../gpu/kernels';
import * as ops from './ops';
import { contiguousStrides, matmulDims } from './shapes';
import { hostAlias, hostMap, hostMatmul, hostPad, hostSlice, hostSum, hostTranspose, isNan, powScalar, type HostRule } from './host';

/** Cotangents for each input, in input order; null where the input gets no gradient. */
export type Vjp<Q> = (g: NDArray, inputs: NDArray[], out: NDArray, params: Q) => (NDArray | null)[];

export interface ElementwiseRule<Q> {
  /** WGSL expression from argument expressions and constant accessors. */
  expr: (a: string[], c: (k: number) => string, cu: (k: number) => string) => string;
  /** Constants passed through the params uniform (so new values need no new pipeline). */
  consts?: (params: Q) => Array<['f' | 'u', number]>;
}

/** One primitive's rules; Q is its params (PrimParams[name]). */
export interface Primitive<Q> {
  elementwise?: ElementwiseRule<Q>;
  lower?: (node: Node, ctx: LowerContext) => Lowering;
  /** The same value computed on the host, for small graphs (array/host.ts); absent = GPU only. */
  host?: HostRule;
  /** How cotangents flow to the inputs; required unless the output carries no gradient. */
  vjp?: Vjp<Q>;
  /** The output carries no gradient (comparisons, constants, random numbers): the backward walk stops here. */
  nonDifferentiable?: true;
}

export interface LowerContext {
  isFallback: boolean;
  maxWorkgroups: number;
  policy: KernelPolicy;
}

const useTree = (ctx: LowerContext) => (ctx.policy.reduce === 'auto' ? !ctx.isFallback : ctx.policy.reduce === 'tree');

const f = <Q>(e: ElementwiseRule<Q>['expr'], consts?: ElementwiseRule<Q>['consts']): ElementwiseRule<Q> => ({ expr: e, consts });
const h = hostMap;
const f32 = Math.fround;
const ub = ops.unbroadcast;

/** Every primitive has rules (a missing one is a compile error); differentiable ones a VJP. */
type Rules = { readonly [P in Prim]: Primitive<PrimParams[P]> & ({ vjp: Vjp<PrimParams[P]> } | { nonDifferentiable: true }) };

export const primitives: Rules = {
  // ---- elementwise, binary (inputs broadcast to the output shape) ----
  add: { host: h(([a, b]) => a! + b!), elementwise: f(([a, b]) => `(${a} + ${b})`), vjp: (g, [a, b]) => [ub(g, a!.shape), ub(g, b!.shape)] },
  sub: { host: h(([a, b]) => a! - b!), elementwise: f(([a, b]) => `(${a} - ${b})`), vjp: (g, [a, b]) => [ub(g, a!.shape), ub(ops.neg(g), b!.shape)] },
  mul: {
    host: h(([a, b]) => a! * b!),
    elementwise: f(([a, b]) => `(${a} * ${b})`),
    vjp: (g, [a, b]) => [ub(ops.mul(g, b!), a!.shape), ub(ops.mul(g, a!), b!.shape)],
  },
  div: {
    host: h(([a, b]) => a! / b!),
    // div_s: a / b also for |b| > 2^126, where GPUs' reciprocal flushes to 0 (shaders/elementwise.wgsl).
    elementwise: f(([a, b]) => `div_s(${a}, ${b})`),
    vjp: (g, [a, b], out) => [ub(ops.div(g, b!), a!.shape), ub(ops.neg(ops.div(ops.mul(g, out), b!)), b!.shape)],
  },
  maximum: {
    host: h(([a, b]) => (isNan(b!) ? b! : a! >= b! || isNan(a!) ? a! : b!)),
    // NaN if either is NaN. is_nan tests bits: a != a is an ordered compare on Vulkan, false for NaN.
    elementwise: f(([a, b]) => `select(select(${b}, ${a}, ${a} >= ${b} || is_nan(${a})), ${b}, is_nan(${b}))`),
    // As JAX: a tie (a == b) gives each side half the cotangent. wa = (a >= b + (1 - (b >= a))) / 2.
    vjp: (g, [a, b]) => {
      const wa = ops.scale(ops.add(ops.greaterEqual(a!, b!), ops.addScalar(ops.neg(ops.greaterEqual(b!, a!)), 1)), 0.5);
      return [ub(ops.mul(g, wa), a!.shape), ub(ops.mul(g, ops.addScalar(ops.neg(wa), 1)), b!.shape)];
    },
  },
  greater_equal: { host: h(([a, b]) => (a! >= b! ? 1 : 0)), elementwise: f(([a, b]) => `select(0.0, 1.0, ${a} >= ${b})`), nonDifferentiable: true },
  // ---- elementwise, unary ----
  neg: { host: h(([a]) => -a!), elementwise: f(([a]) => `(-${a})`), vjp: (g) => [ops.neg(g)] },
  square: { host: h(([a]) => a! * a!), elementwise: f(([a]) => `(${a} * ${a})`), vjp: (g, [x]) => [ops.mul(g, ops.scale(x!, 2))] },
  sqrt: {
    host: h(([a]) => Math.sqrt(a!)),
    elementwise: f(([a]) => `keep_nan(${a}, sqrt(${a}))`),
    vjp: (g, _, out) => [ops.div(ops.scale(g, 0.5), out)],
  },
  exp: { host: h(([a]) => Math.exp(a!)), elementwise: f(([a]) => `keep_nan(${a}, exp(${a}))`), vjp: (g, _, out) => [ops.mul(g, out)] },
  // log_s: WGSL's log is undefined at and below 0 (see shaders/elementwise.wgsl).
  log: { host: h(([a]) => Math.log(a!)), elementwise: f(([a]) => `log_s(${a})`), vjp: (g, [x]) => [ops.div(g, x!)] },
  // sin_s, cos_s: own argument reduction and polynomials (shaders/elementwise.wgsl).
  sin: { host: h(([a]) => Math.sin(a!)), elementwise: f(([a]) => `sin_s(${a})`), vjp: (g, [x]) => [ops.mul(g, ops.cos(x!))] },
  cos: { host: h(([a]) => Math.cos(a!)), elementwise: f(([a]) => `cos_s(${a})`), vjp: (g, [x]) => [ops.neg(ops.mul(g, ops.sin(x!)))] },
  tanh: {
    host: h(([a]) => Math.tanh(a!)),
    // tanh_s: accurate near 0 and saturating at large |x| (shaders/elementwise.wgsl).
    elementwise: f(([a]) => `tanh_s(${a})`),
    vjp: (g, _, out) => [ops.mul(g, ops.addScalar(ops.neg(ops.square(out)), 1))],
  },
  relu: {
    host: h(([a]) => (a! < 0 ? 0 : a!)),
    // NaN stays NaN. Not by select(a, 0, a < 0) alone: NVIDIA's compiler turns that into max(a, 0),
    // which gives 0 for NaN; is_nan tests the bits.
    elementwise: f(([a]) => `select(select(${a}, 0.0, ${a} < 0.0), ${a}, is_nan(${a}))`),
    // As JAX: relu'(0) = 0 (x > 0 is 1 - (0 >= x)).
    vjp: (g, [x]) => [ops.mul(g, ops.addScalar(ops.neg(ops.greaterEqual(0, x!)), 1))],
  },
  /** 1 / (1 + exp(-x)), with JAX's VJP g out (1 - out): no exp(-x) in the backward pass, so no 0 * Inf far left. */
  logistic: {
    host: h(([a]) => 1 / (1 + Math.exp(-a!))),
    elementwise: f(([a]) => `keep_nan(${a}, 1.0 / (1.0 + exp(-${a})))`),
    vjp: (g, _, out) => [ops.mul(g, ops.mul(out, ops.addScalar(ops.neg(out), 1)))],
  },
  // As JAX: abs'(0) = 1 (the slope of x >= 0), so abs' = 2 (x >= 0) - 1.
  abs: {
    host: h(([a]) => Math.abs(a!)),
    elementwise: f(([a]) => `keep_nan(${a}, abs(${a}))`),
    vjp: (g, [x]) => [ops.mul(g, ops.addScalar(ops.scale(ops.greaterEqual(x!, 0), 2), -1))],
  },
  sign: {
    host: h(([a]) => (isNan(a!) ? a! : a! > 0 ? 1 : a! < 0 ? -1 : 0)),
    elementwise: f(([a]) => `keep_nan(${a}, sign(${a}))`),
    nonDifferentiable: true,
  },
  scale: {
    host: h(([a], p) => a! * f32(p.c)),
    elementwise: f(
      ([a], c) => `(${a} * ${c(0)})`,
      (p) => [['f', p.c]],
    ),
    vjp: (g, _, __, p) => [ops.scale(g, p.c)],
  },
  add_scalar: {
    host: h(([a], p) => a! + f32(p.c)),
    elementwise: f(
      ([a], c) => `(${a} + ${c(0)})`,
      (p) => [['f', p.c]],
    ),
    vjp: (g) => [g],
  },
  pow_scalar: {
    host: h(([a], p) => powScalar(a!, f32(p.c))),
    elementwise: f(
      ([a], c) => `pow_s(${a}, ${c(0)})`,
      (p) => [['f', p.c]],
    ),
    vjp: (g, [x], _, p) => [ops.mul(g, ops.scale(ops.powScalar(x!, p.c - 1), p.c))],
  },
  /** Materialised broadcast: identity with a broadcast input. */
  broadcast_to: { host: h(([a]) => a!), elementwise: f(([a]) => a!), vjp: (g, [x]) => [ub(g, x!.shape)] },
  // ---- elementwise, no inputs ----
  fill: {
    host: h((_, p) => p.value),
    elementwise: f(
      (_, c) => c(0),
      (p) => [['f', p.value]],
    ),
    nonDifferentiable: true,
  },
  // arange_at: start + i * step, without overflow where only i * step overflows (halved, then doubled).
  arange: {
    host: h((_, p, i) => {
      const [s, d] = [f32(p.start), f32(p.step)];
      const v = f32(s + f32(f32(i) * d));
      return Number.isFinite(v) ? v : (s * 0.5 + f32(f32(i) * (d * 0.5))) * 2;
    }),
    elementwise: f(
      (_, c) => `arange_at(${c(0)}, ${c(1)}, i)`,
      (p) => [
        ['f', p.start],
        ['f', p.step],
      ],
    ),
    nonDifferentiable: true,
  },
  random_uniform: {
    // lerp_u: low + (high - low) u, without overflow when high - low exceeds the float32 maximum.
    elementwise: f(
      (_, c, cu) => `lerp_u(${c(1)}, ${c(2)}, uniform01(i, ${cu(0)}, 0u))`,
      (p) => [
        ['u', p.seed],
        ['f', p.low],
        ['f', p.high],
      ],
    ),
    nonDifferentiable: true,
  },
  random_normal: {
    elementwise: f(
      (_, c, cu) => `(${c(1)} + ${c(2)} * normal01(i, ${cu(0)}))`,
      (p) => [
        ['u', p.seed],
        ['f', p.mean],
        ['f', p.std],
      ],
    ),
    nonDifferentiable: true,
  },

  // ---- no computation ----
  /** A value uploaded from the host (node.cpu); never lowered: the executor uploads it. */
  constant: { nonDifferentiable: true },
  /** Same buffer, new shape. */
  reshape: { host: hostAlias, lower: () => ({ alias: 0 }), vjp: (g, [x]) => [ops.reshape(g, x!.shape)] },
  /** Same buffer; a fresh node for a value being differentiated (grad's input). */
  identity: { host: hostAlias, lower: () => ({ alias: 0 }), vjp: (g) => [g] },
  /** Same buffer; blocks gradients. */
  stop_gradient: { host: hostAlias, lower: () => ({ alias: 0 }), nonDifferentiable: true },
  /** A view into a packed multi-output buffer (params.offset bytes in). */
  view: { host: hostAlias, lower: () => ({ alias: 0 }), nonDifferentiable: true },

  // ---- data movement ----
  transpose: {
    host: hostTranspose,
    lower: (n) => gather(n, 0, transposeStrides(n.inputs[0]!.shape, n.params.perm as number[])),
    vjp: (g, _, __, p) => [ops.transpose(g, inversePerm(p.perm))],
  },
  slice: {
    host: hostSlice,
    lower: (n) => {
      const inShape = n.inputs[0]!.shape;
      const st = contiguousStrides(inShape);
      const starts = n.params.starts as number[];
      return gather(
        n,
        starts.reduce((o, s, d) => o + s * st[d]!, 0),
        st,
      );
    },
    vjp: (g, [x], _, p) => [ops.pad(g, p.starts, x!.shape)],
  },
  pad: {
    host: hostPad,
    lower: (n) => {
      const inShape = n.inputs[0]!.shape;
      const starts = n.params.starts as number[];
      const w = rankWords(n, 36);
      starts.forEach((s, d) => w.u32(20 + d, s));
      inShape.forEach((s, d) => w.u32(28 + d, s));
      return single({ template: 'layout', entry: 'pad' }, w, [{ input: 0 }], n.size);
    },
    vjp: (g, [x], _, p) => [
      ops.slice(
        g,
        p.starts,
        p.starts.map((s: number, d: number) => s + x!.shape[d]!),
      ),
    ],
  },

  // ---- reductions and contractions ----
  sum: {
    host: hostSum,
    // params.axes is a contiguous run of axes (ops.sum transposes otherwise).
    lower: (n, ctx) => {
      const shape = n.inputs[0]!.shape;
      const axes = n.params.axes as number[];
      const lo = axes.length ? axes[0]! : 0;
      const hi = axes.length ? axes[axes.length - 1]! + 1 : 0;
      const A = prod(shape.slice(0, lo));
      const R = axes.length ? prod(shape.slice(lo, hi)) : 1;
      const B = prod(shape.slice(hi));
      const scratch: number[] = [];
      return { calls: sumPasses(A, R, B, { input: 0 }, scratch, useTree(ctx)), scratch };
    },
    vjp: (g, [x], _, p) => {
      const kept = x!.shape.map((d, i) => ((p.axes as number[]).includes(i) ? 1 : d));
      return [ops.broadcastTo(ops.reshape(g, kept), x!.shape)];
    },
  },
  matmul: {
    host: hostMatmul,
    lower: (n, ctx) => lowerMatmul(n, ctx),
    vjp: (g, [a, b], _, p) => {
      // C = op(A) op(B). dA = g op(B)^T, dB = op(A)^T g, each written back in
      // A's / B's stored layout by choosing transpose flags, never transposing.
      const ta = p.transA as boolean;
      const tb = p.transB as boolean;
      const da = ta ? ops.matmulT(b!, g, tb, true) : ops.matmulT(g, b!, false, !tb);
      const db = tb ? ops.matmulT(g, a!, true, ta) : ops.matmulT(a!, g, !ta, false);
      return [ops.sumTo(da, a!.shape), ops.sumTo(db, b!.shape)];
    },
  },
  adam: {
    lower: (n) => {
      const p = n.params;
      const w = new Words(12)
        .u32(0, p.n)
        .u32(1, p.seg)
        .f32(4, p.b1)
        .f32(5, p.b2)
        .f32(6, p.eps)
        .f32(7, p.epsRoot)
        .f32(8, p.bc1)
        .f32(9, p.bc2)
        .f32(10, p.scale);
      const vec4 = p.n > 0 && p.n % 4 === 0;
      return single({ template: 'optim', entry: vec4 ? 'adam4' : 'adam' }, w, [{ input: 0 }, { input: 1 }, { input: 2 }], vec4 ? p.n / 4 : p.n);
    },
    nonDifferentiable: true,
  },
};

/** A node's rules, with its params as the table's rules see them. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a node's params are typed by its primitive's entry
export function rulesOf(n: Node): Primitive<any> {
  return primitives[n.prim];
}

// ---- lowering helpers ----

function prod(xs: readonly number[]): number {
  return xs.reduce((a, b) => a * b, 1);
}

function transposeStrides(inShape: readonly number[], perm: number[]): number[] {
  const st = contiguousStrides(inShape);
  return perm.map((p) => st[p]!);
}

function inversePerm(perm: number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return inv;
}

/** Params words 0..11 shared by the index-mapping kernels: n, rank, output dims. */
function rankWords(n: Node, words: number): Words {
  const w = new Words(words).u32(0, n.size).u32(1, n.shape.length);
  n.shape.forEach((d, i) => w.u32(4 + i, d));
  return w;
}

function single(shader: KernelCall['shader'], w: Words, inputs: Slot[], threads: number): Lowering {
  return { calls: [{ shader, params: w.buffer, slots: [{ out: true }, ...inputs], grid: grid1d(threads) }] };
}

function gather(n: Node, base: number, strides: number[]): Lowering {
  const w = rankWords(n, 36).u32(2, base);
  strides.forEach((s, d) => w.u32(12 + d, s));
  return single({ template: 'layout', entry: 'gather' }, w, [{ input: 0 }], n.size);
}

const ROWS_CHUNK = 1024; // elements a sum_rows workgroup reduces
const STRIDED_CHUNK = 64; // elements one sum_strided thread adds

/** Sum over the middle axis of (A, R, B) in passes; the last pass writes the output. Appends scratch sizes. */
export function sumPasses(A: number, R: number, B: number, src: Slot, scratch: number[], workgroupTree = true): KernelCall[] {
  const calls: KernelCall[] = [];
  let from = src;
  let r = R;
  do {
    // Workgroup-memory trees pay off on GPUs; on CPU adapters barriers cost more than they save.
    const rows = workgroupTree && B === 1 && r > 1;
    const chunk = rows ? ROWS_CHUNK : STRIDED_CHUNK;
    const rOut = Math.max(1, Math.ceil(r / chunk));
    let to: Slot = { out: true };
    if (rOut > 1) {
      scratch.push(A * rOut * B * 4);
      to = { scratch: scratch.length - 1 };
    }
    const w = new Words(8).u32(0, A).u32(1, r).u32(2, B).u32(3, rOut).u32(4, chunk);
    const vec4 = !rows && A * r * B > 0 && B % 4 === 0; // (vec4 bindings need 16 bytes or more)
    const grid = rows ? grid1d(A * rOut, 1) : grid1d((A * rOut * B) / (vec4 ? 4 : 1));
    const entry = rows ? 'sum_rows' : vec4 ? 'sum_strided4' : 'sum_strided';
    calls.push({ shader: { template: 'reduce', entry }, params: w.buffer, slots: [to, from], grid });
    from = to;
    r = rOut;
  } while (r > 1);
  return calls;
}

function lowerMatmul(n: Node, ctx: LowerContext): Lowering {
  const { ta, tb, M, N, K, batch, aBatch, bBatch } = matmulDims(n);
  if (batch === 1 && (N === 1 || M === 1) && K > 0 && ctx.policy.matmul === 'auto') {
    // A matrix-vector product. With N = 1, C = op(A) v; with M = 1, C^T = op(B)^T a^T.
    // A stored row-major (R, C) either gives out = A v ("rows") or out = A^T v ("cols").
    const [mat, vec, transposed] = N === 1 ? [0, 1, ta] : [1, 0, !tb];
    const R = transposed ? K : N === 1 ? M : N;
    const C = transposed ? (N === 1 ? M : N) : K;
    return lowerMatvec(mat, vec, transposed, R, C, ctx);
  }
  const variant = ctx.policy.matmul !== 'auto' ? ctx.policy.matmul : ctx.isFallback ? 'register' : 'shared';
  const tiles = Math.ceil(M / 64) * Math.ceil(N / 64) * batch;
  // Split-K when the output is too small to occupy the GPU but K is long
  // (the seed's x^T g: 512 outputs, K = 65536 rows).
  // A CPU adapter (SwiftShader) runs workgroups on a few cores: a handful of tiles already fills
  // them, and the extra reduction pass would cost more than it saves.
  const [fewTiles, targetGroups] = ctx.isFallback ? [4, 8] : [64, 256];
  let splits = 1;
  if (tiles < fewTiles && K >= 256 && batch * M * N > 0)
    splits = Math.min(Math.ceil(K / 128), Math.max(1, Math.floor(targetGroups / tiles)), ctx.maxWorkgroups);
  const kChunk = Math.max(16, Math.ceil(Math.ceil(K / splits) / 16) * 16);
  splits = Math.max(1, Math.ceil(K / kChunk));
  // Grid z runs over (batch, split) pairs; past maxWorkgroups of them, dispatch in parts (word 8: first z).
  const params = (zBase: number) =>
    new Words(12).u32(0, M).u32(1, N).u32(2, K).u32(3, batch).u32(4, aBatch).u32(5, bBatch).u32(6, kChunk).u32(7, splits).u32(8, zBase).buffer;
  // vec4 loads need every dimension (and so every row start and k chunk) a multiple of 4.
  const aligned = M % 4 === 0 && N % 4 === 0 && K % 4 === 0;
  const shader = {
    template: variant === 'shared' ? 'matmul_shared' : 'matmul_register',
    entry: variant === 'register' && aligned ? 'main8' : 'main',
    fill: { TRANS_A: String(ta), TRANS_B: String(tb) },
  } as const;
  const mm = (out: Slot): KernelCall[] => {
    const calls: KernelCall[] = [];
    for (let z0 = 0; z0 < batch * splits; z0 += ctx.maxWorkgroups) {
      const grid: [number, number, number] = [Math.ceil(N / 64), Math.ceil(M / 64), Math.min(ctx.maxWorkgroups, batch * splits - z0)];
      calls.push({ shader, params: params(z0), slots: [out, { input: 0 }, { input: 1 }], grid });
    }
    return calls;
  };
  if (splits === 1) return { calls: mm({ out: true }) };
  const scratch = [splits * batch * M * N * 4];
  const reduce = sumPasses(1, splits, batch * M * N, { scratch: 0 }, scratch, useTree(ctx));
  return { calls: [...mm({ scratch: 0 }), ...reduce], scratch };
}

function lowerMatvec(mat: number, vec: number, transposed: boolean, R: number, C: number, ctx: LowerContext): Lowering {
  const w = (chunk: number) => new Words(4).u32(0, R).u32(1, C).u32(2, chunk).buffer;
  const slots: Slot[] = [{ out: true }, { input: mat }, { input: vec }];
  if (!transposed) {
    const perThread = ctx.policy.matvec === 'auto' ? ctx.isFallback : ctx.policy.matvec === 'thread';
    // On CPU adapters, four rows per thread (rows_block4); a forced 'thread' policy keeps one.
    const block = ctx.policy.matvec === 'auto' && ctx.isFallback && C % 4 === 0;
    const entry = block ? 'rows_block4' : perThread ? (C % 4 === 0 ? 'rows_thread4' : 'rows_thread') : 'rows_group';
    const grid = perThread ? grid1d(block ? Math.ceil(R / 4) : R, 64) : grid1d(R, 1);
    return { calls: [{ shader: { template: 'matvec', entry }, params: w(0), slots, grid }] };
  }
  // Columns, split over chunks of rows so there is enough parallelism, then summed.
  const vec4 = C % 4 === 0;
  const wide = vec4 && C % 16 === 0 && ctx.isFallback && ctx.policy.matvec === 'auto'; // sixteen columns per thread on CPU adapters
  const entry = wide ? 'cols16' : vec4 ? 'cols4' : 'cols';
  const colGroups = Math.ceil((wide ? C / 16 : vec4 ? C / 4 : C) / 64);
  // A CPU adapter needs far fewer splits to fill its cores, and each split's partial sums cost a
  // pass over splits x C floats afterwards (3.5 ms of the (65536, 512) gradient with 1024 splits).
  const splits = Math.max(1, Math.min(Math.ceil(R / 64), Math.ceil((ctx.isFallback ? 256 : 2048) / colGroups)));
  const chunk = Math.ceil(R / splits);
  const realSplits = Math.ceil(R / chunk);
  const grid: [number, number, number] = [colGroups, Math.min(realSplits, 65535), Math.ceil(realSplits / 65535)];
  if (realSplits === 1) return { calls: [{ shader: { template: 'matvec', entry }, params: w(chunk), slots, grid }] };
  const scratch = [realSplits * C * 4];
  const first: KernelCall = { shader: { template: 'matvec', entry }, params: w(chunk), slots: [{ scratch: 0 }, slots[1]!, slots[2]!], grid };
  return { calls: [first, ...sumPasses(1, realSplits, C, { scratch: 0 }, scratch, useTree(ctx))], scratch };
}
