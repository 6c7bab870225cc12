// The rules table: one entry per primitive, saying what it computes on the GPU
// (an elementwise expression to fuse, or a lowering to kernel calls) and its
// VJP. Shape rules live with the op constructors in ops.ts, which validate the
// user's arguments before a node is made. VJPs are written with the library's
// own differentiable ops, so differentiating a gradient (grad of grad) works.

import type { Node } from './node';
import type { Prim, PrimParams } from './prims';
import type { NDArray } from './ndarray';
import type { DType } from './dtype';
import type { Lowering } from '../gpu/kernels';
import * as ops from './ops';
import { matmulT } from './linalg';
import { contiguousStrides } from './shapes';
import {
  erfHost,
  erfInvHost,
  hostPermutationOf,
  hostThreefry,
  hostIm2col,
  hostCol2im,
  hostMaxPool,
  hostMaxPoolGrad,
  highest,
  hostAlias,
  hostArg,
  hostMap,
  hostMatmul,
  hostPad,
  hostConcatenate,
  hostReduce,
  hostSlice,
  hostSum,
  hostTake,
  hostTakeAdd,
  hostTranspose,
  isNan,
  lowest,
  maxOf,
  powScalar,
  toInt32,
  type HostRule,
} from './host';
import {
  contiguousView,
  gather,
  lowerArg,
  lowerIndexing,
  lowerMatmul,
  lowerPermutationOf,
  lowerReduce,
  lowerThreefry,
  lowerWindow,
  padLowering,
  concatLowering,
  transposeStrides,
  type LowerContext,
} from './lowering';
import * as indexing from './indexing';
import * as conv from './conv';

/** Cotangents for each input, in input order; null where the input gets no gradient. */
export type Vjp<Q> = (g: NDArray, inputs: NDArray[], out: NDArray, params: Q) => (NDArray | null)[];

/** The dtypes a fused expression computes with: its output's and its inputs'. */
export interface Types {
  out: DType;
  ins: DType[];
}

export type { LowerContext } from './lowering';

export interface ElementwiseRule<Q> {
  /** WGSL expression from argument expressions (each of its input's WGSL type), constant accessors and the dtypes. */
  expr: (a: string[], c: (k: number) => string, t: Types) => string;
  /** Constants passed through the params uniform (so new values need no new pipeline): f32, u32 or i32 words. */
  consts?: (params: Q, dtype: DType) => Array<['f' | 'u' | 'i', number]>;
  /** The expression reads the element index `i` (arange, random numbers): it fuses only into kernels of its own shape. */
  indexed?: true;
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

const f = <Q>(e: ElementwiseRule<Q>['expr'], consts?: ElementwiseRule<Q>['consts']): ElementwiseRule<Q> => ({ expr: e, consts });
/** An elementwise rule whose expression reads the element index `i`. */
const fi = <Q>(e: ElementwiseRule<Q>['expr'], consts: ElementwiseRule<Q>['consts']): ElementwiseRule<Q> => ({ expr: e, consts, indexed: true });
const h = hostMap;
const f32 = Math.fround;
const ub = ops.unbroadcast;
/** Is the op computed on floats (else int32 or bool words)? */
const fl = (t: Types) => t.ins[0] === 'float32';
/** A constant's word type for a node of dtype d. */
const word = (d: DType): 'f' | 'u' | 'i' => (d === 'float32' ? 'f' : d === 'int32' ? 'i' : 'u');
const asFloat = (x: NDArray) => ops.astype(x, 'float32');
/** A WGSL bool as the u32 0 or 1 a bool element is stored as. */
const b01 = (cond: string) => `select(0u, 1u, ${cond})`;

/** A comparison: on floats false where either side is NaN (not_equal: true), tested on the bits. */
function compare(op: string, js: (a: number, b: number) => boolean): Primitive<PrimParams['less']> & { nonDifferentiable: true } {
  return {
    host: h(([a, b]) => (js(a!, b!) ? 1 : 0)),
    elementwise: f(([a, b], _, t) =>
      !fl(t)
        ? b01(`${a} ${op} ${b}`)
        : op === '!='
          ? b01(`is_nan(${a}) || is_nan(${b}) || ${a} != ${b}`)
          : b01(`!(is_nan(${a}) || is_nan(${b})) && ${a} ${op} ${b}`),
    ),
    nonDifferentiable: true,
  };
}

/** Every primitive has rules (a missing one is a compile error); differentiable ones a VJP. */
type Rules = { readonly [P in Prim]: Primitive<PrimParams[P]> & ({ vjp: Vjp<PrimParams[P]> } | { nonDifferentiable: true }) };

export const primitives: Rules = {
  // ---- elementwise, binary (inputs broadcast to the output shape, of one dtype: ops.ts promotes) ----
  // For bool, add is or and mul is and (JAX's); int32 arithmetic wraps, as WGSL's does (Math.imul on the host).
  add: {
    host: h(([a, b], _, __, n) => (n.dtype === 'bool' ? a! | b! : a! + b!)),
    elementwise: f(([a, b], _, t) => (t.out === 'bool' ? `(${a} | ${b})` : `(${a} + ${b})`)),
    vjp: (g, [a, b]) => [ub(g, a!.shape), ub(g, b!.shape)],
  },
  sub: { host: h(([a, b]) => a! - b!), elementwise: f(([a, b]) => `(${a} - ${b})`), vjp: (g, [a, b]) => [ub(g, a!.shape), ub(ops.neg(g), b!.shape)] },
  mul: {
    host: h(([a, b], _, __, n) => (n.dtype === 'float32' ? a! * b! : Math.imul(a!, b!))),
    elementwise: f(([a, b], _, t) => (t.out === 'bool' ? `(${a} & ${b})` : `(${a} * ${b})`)),
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
    elementwise: f(([a, b], _, t) => (fl(t) ? `select(select(${b}, ${a}, ${a} >= ${b} || is_nan(${a})), ${b}, is_nan(${b}))` : `max(${a}, ${b})`)),
    // As JAX: a tie (a == b) gives each side half the cotangent. wa = (a >= b + (1 - (b >= a))) / 2.
    vjp: (g, [a, b]) => {
      const wa = ops.scale(ops.add(asFloat(ops.greaterEqual(a!, b!)), ops.addScalar(ops.neg(asFloat(ops.greaterEqual(b!, a!))), 1)), 0.5);
      return [ub(ops.mul(g, wa), a!.shape), ub(ops.mul(g, ops.addScalar(ops.neg(wa), 1)), b!.shape)];
    },
  },
  equal: compare('==', (a, b) => a === b),
  not_equal: compare('!=', (a, b) => a !== b),
  less: compare('<', (a, b) => a < b),
  less_equal: compare('<=', (a, b) => a <= b),
  greater: compare('>', (a, b) => a > b),
  greater_equal: compare('>=', (a, b) => a >= b),
  logical_and: { host: h(([a, b]) => a! & b!), elementwise: f(([a, b]) => `(${a} & ${b})`), nonDifferentiable: true },
  logical_or: { host: h(([a, b]) => a! | b!), elementwise: f(([a, b]) => `(${a} | ${b})`), nonDifferentiable: true },
  // ---- elementwise, ternary ----
  select: {
    host: h(([c, x, y]) => (c ? x! : y!)),
    elementwise: f(([c, x, y]) => `select(${y}, ${x}, ${c} != 0u)`),
    vjp: (g, [c, x, y]) => {
      const z = ops.zerosLike(g);
      return [null, ub(ops.where(c!, g, z), x!.shape), ub(ops.where(c!, z, g), y!.shape)];
    },
  },
  // ---- elementwise, unary ----
  neg: { host: h(([a]) => -a!), elementwise: f(([a]) => `(-${a})`), vjp: (g) => [ops.neg(g)] },
  square: {
    host: h(([a], _, __, n) => (n.dtype === 'float32' ? a! * a! : Math.imul(a!, a!))),
    elementwise: f(([a]) => `(${a} * ${a})`),
    vjp: (g, [x]) => [ops.mul(g, ops.scale(x!, 2))],
  },
  sqrt: {
    host: h(([a]) => Math.sqrt(a!)),
    elementwise: f(([a]) => `keep_nan(${a}, sqrt(${a}))`),
    vjp: (g, _, out) => [ops.div(ops.scale(g, 0.5), out)],
  },
  exp: { host: h(([a]) => Math.exp(a!)), elementwise: f(([a]) => `keep_nan(${a}, exp(${a}))`), vjp: (g, _, out) => [ops.mul(g, out)] },
  // log_s: WGSL's log is undefined at and below 0 (see shaders/elementwise.wgsl).
  log: { host: h(([a]) => Math.log(a!)), elementwise: f(([a]) => `log_s(${a})`), vjp: (g, [x]) => [ops.div(g, x!)] },
  // log1p_s, erf_s: WGSL has neither (shaders/elementwise.wgsl).
  log1p: { host: h(([a]) => Math.log1p(a!)), elementwise: f(([a]) => `log1p_s(${a})`), vjp: (g, [x]) => [ops.div(g, ops.addScalar(x!, 1))] },
  erf_inv: {
    host: h(([a]) => erfInvHost(a!)),
    elementwise: f(([a]) => `erf_inv_s(${a})`),
    // d/dx erfinv(x) = sqrt(pi) / 2 exp(erfinv(x)^2)
    vjp: (g, _, out) => [ops.mul(g, ops.scale(ops.exp(ops.square(out)), Math.sqrt(Math.PI) / 2))],
  },
  erf: {
    host: h(([a]) => erfHost(a!)),
    elementwise: f(([a]) => `erf_s(${a})`),
    vjp: (g, [x]) => [ops.mul(g, ops.scale(ops.exp(ops.neg(ops.square(x!))), 2 / Math.sqrt(Math.PI)))],
  },
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
    elementwise: f(([a], _, t) => (fl(t) ? `select(select(${a}, 0.0, ${a} < 0.0), ${a}, is_nan(${a}))` : `max(${a}, 0i)`)),
    // As JAX: relu'(0) = 0.
    vjp: (g, [x]) => [ops.mul(g, asFloat(ops.greater(x!, 0)))],
  },
  /** 1 / (1 + exp(-x)), with JAX's VJP g out (1 - out): no exp(-x) in the backward pass, so no 0 * Inf far left. */
  logistic: {
    host: h(([a]) => 1 / (1 + Math.exp(-a!))),
    elementwise: f(([a]) => `keep_nan(${a}, 1.0 / (1.0 + exp(-${a})))`),
    vjp: (g, _, out) => [ops.mul(g, ops.mul(out, ops.addScalar(ops.neg(out), 1)))],
  },
  // As JAX: abs'(0) = 1 (the slope of x >= 0).
  abs: {
    host: h(([a]) => Math.abs(a!)),
    elementwise: f(([a], _, t) => (fl(t) ? `keep_nan(${a}, abs(${a}))` : `abs(${a})`)),
    vjp: (g, [x]) => [ops.mul(g, ops.where(ops.greaterEqual(x!, 0), 1, -1))],
  },
  sign: {
    host: h(([a]) => (isNan(a!) ? a! : a! > 0 ? 1 : a! < 0 ? -1 : 0)),
    elementwise: f(([a], _, t) => (fl(t) ? `keep_nan(${a}, sign(${a}))` : `sign(${a})`)),
    nonDifferentiable: true,
  },
  logical_not: { host: h(([a]) => 1 - a!), elementwise: f(([a]) => `(1u - ${a})`), nonDifferentiable: true },
  is_finite: {
    host: h(([a]) => (Number.isFinite(a!) ? 1 : 0)),
    elementwise: f(([a], _, t) => (fl(t) ? b01(`(bitcast<u32>(${a}) & 0x7f800000u) != 0x7f800000u`) : '1u')),
    nonDifferentiable: true,
  },
  // Between dtypes (never to the same one: ops.astype returns x). Float to int32 truncates and saturates,
  // NaN gives 0 (explicit: WGSL leaves out-of-range conversions to the implementation); to bool is x != 0.
  convert: {
    host: h(([a], _, __, n) => (n.dtype === 'bool' ? (a !== 0 ? 1 : 0) : n.dtype === 'int32' ? toInt32(a!) : a!)),
    elementwise: f(([a], _, t) => {
      const from = t.ins[0];
      if (t.out === 'float32') return `f32(${a})`;
      if (t.out === 'bool') return from === 'float32' ? b01(`(bitcast<u32>(${a}) & 0x7fffffffu) != 0u`) : b01(`${a} != 0i`);
      if (from === 'bool') return `i32(${a})`;
      return `select(select(i32(max(${a}, -2147483648.0)), 2147483647i, ${a} >= 2147483648.0), 0i, is_nan(${a}))`;
    }),
    // Float to float never happens, and nothing else carries a gradient.
    nonDifferentiable: true,
  },
  scale: {
    host: h(([a], p, _, n) => (n.dtype === 'float32' ? a! * f32(p.c) : Math.imul(a!, p.c | 0))),
    elementwise: f(
      ([a], c) => `(${a} * ${c(0)})`,
      (p, d) => [[word(d), p.c]],
    ),
    vjp: (g, _, __, p) => [ops.scale(g, p.c)],
  },
  add_scalar: {
    host: h(([a], p, _, n) => (n.dtype === 'float32' ? a! + f32(p.c) : a! + (p.c | 0))),
    elementwise: f(
      ([a], c) => `(${a} + ${c(0)})`,
      (p, d) => [[word(d), p.c]],
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
  /** Materialised broadcast: identity with a broadcast input (and copy()). */
  broadcast_to: { host: h(([a]) => a!), elementwise: f(([a]) => a!), vjp: (g, [x]) => [ub(g, x!.shape)] },
  // ---- elementwise, no inputs ----
  fill: {
    host: h((_, p) => p.value),
    elementwise: f(
      (_, c) => c(0),
      (p, d) => [[word(d), p.value]],
    ),
    nonDifferentiable: true,
  },
  // arange_at: start + i * step, without overflow where only i * step overflows (halved, then doubled).
  arange: {
    host: h((_, p, i, n) => {
      if (n.dtype === 'int32') return (p.start | 0) + Math.imul(i, p.step | 0);
      const [s, d] = [f32(p.start), f32(p.step)];
      const v = f32(s + f32(f32(i) * d));
      return Number.isFinite(v) ? v : (s * 0.5 + f32(f32(i) * (d * 0.5))) * 2;
    }),
    elementwise: fi(
      (_, c, t) => (t.out === 'int32' ? `(${c(0)} + i32(i) * ${c(1)})` : `arange_at(${c(0)}, ${c(1)}, i)`),
      (p, d) => [
        [word(d), p.start],
        [word(d), p.step],
      ],
    ),
    nonDifferentiable: true,
  },
  random_uniform: {
    // lerp_u: low + (high - low) u, without overflow when high - low exceeds the float32 maximum.
    elementwise: fi(
      (_, c) => `lerp_u(${c(1)}, ${c(2)}, uniform01(i, ${c(0)}, 0u))`,
      (p) => [
        ['u', p.seed],
        ['f', p.low],
        ['f', p.high],
      ],
    ),
    nonDifferentiable: true,
  },
  random_normal: {
    elementwise: fi(
      (_, c) => `(${c(1)} + ${c(2)} * normal01(i, ${c(0)}))`,
      (p) => [
        ['u', p.seed],
        ['f', p.mean],
        ['f', p.std],
      ],
    ),
    nonDifferentiable: true,
  },

  threefry: { host: hostThreefry, lower: lowerThreefry, nonDifferentiable: true },
  permutation_of: { host: hostPermutationOf, lower: lowerPermutationOf, nonDifferentiable: true },

  // ---- no computation ----
  /** A value uploaded from the host (node.cpu); never lowered: the executor uploads it. */
  constant: { nonDifferentiable: true },
  /** Same buffer, new shape. */
  reshape: { host: hostAlias, lower: () => ({ alias: 0 }), vjp: (g, [x]) => [ops.reshape(g, x!.shape)] },
  /** Same buffer; a fresh node for a value being differentiated (grad's input). */
  identity: { host: hostAlias, lower: () => ({ alias: 0 }), vjp: (g) => [g] },
  /** Same buffer; blocks gradients. */
  stop_gradient: { host: hostAlias, lower: () => ({ alias: 0 }), nonDifferentiable: true },

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
      const first = starts.reduce((o, s, d) => o + s * st[d]!, 0);
      return contiguousView(n, first) ?? gather(n, first, st);
    },
    vjp: (g, [x], _, p) => [ops.pad(g, p.starts, x!.shape)],
  },
  pad: {
    host: hostPad,
    lower: (n) => {
      return padLowering(n, n.params.starts as number[], n.inputs[0]!.shape);
    },
    vjp: (g, [x], _, p) => [
      ops.slice(
        g,
        p.starts,
        p.starts.map((s: number, d: number) => s + x!.shape[d]!),
      ),
    ],
  },

  concatenate: {
    host: hostConcatenate,
    lower: concatLowering,
    // Each input's cotangent is its columns of g.
    vjp: (g, xs, _, p) => {
      let at = 0;
      return xs.map((x) => {
        at += x.shape[p.axis]!;
        return ops.slice(
          g,
          g.shape.map((_d, d) => (d === p.axis ? at - x.shape[p.axis]! : 0)),
          g.shape.map((dim, d) => (d === p.axis ? at : dim)),
        );
      });
    },
  },

  // ---- reductions and contractions ----
  // params.axes is a contiguous run of axes (ops transposes otherwise).
  sum: {
    host: hostSum,
    lower: (n, ctx) => lowerReduce(n, ctx, 'sum'),
    vjp: (g, [x], _, p) => [ops.broadcastTo(ops.reshape(p.scale === undefined ? g : ops.scale(g, p.scale), keptShape(x!.shape, p.axes)), x!.shape)],
  },
  max: { host: hostReduce(maxOf, (n) => lowest(n.dtype)), lower: (n, ctx) => lowerReduce(n, ctx, 'max'), vjp: chooserVjp },
  min: {
    host: hostReduce(
      (s, v) => -maxOf(-s, -v),
      (n) => highest(n.dtype),
    ),
    lower: (n, ctx) => lowerReduce(n, ctx, 'min'),
    vjp: chooserVjp,
  },
  argmax: { host: hostArg((v, best) => v > best), lower: (n) => lowerArg(n, '>'), nonDifferentiable: true },
  argmin: { host: hostArg((v, best) => v < best), lower: (n) => lowerArg(n, '<'), nonDifferentiable: true },
  // ---- indexing (shaders/indexing.wgsl) ----
  take: {
    host: hostTake(false),
    lower: (n) => lowerIndexing(n, 'take', n.inputs[0]!.shape, n.inputs[1]!.size),
    vjp: (g, [a, idx], _, p) => [indexing.takeAdd(g, idx!, p.axis, a!.shape), null],
  },
  take_along_axis: {
    host: hostTake(true),
    lower: (n) => lowerIndexing(n, 'take_along', n.inputs[0]!.shape, n.shape[n.params.axis as number]!),
    vjp: (g, [a, idx], _, p) => [indexing.takeAlongAxisAdd(g, idx!, p.axis, a!.shape), null],
  },
  take_add: {
    host: hostTakeAdd(false),
    lower: (n) => lowerIndexing(n, 'take_add', n.shape, n.inputs[1]!.size),
    // Linear in g: its VJP gathers the rows back.
    vjp: (gg, [g, idx], _, p) => [ops.bind('take', [gg, idx!], { axis: p.axis }, g!.shape), null],
  },
  take_along_axis_add: {
    host: hostTakeAdd(true),
    lower: (n) => lowerIndexing(n, 'take_along_add', n.shape, n.inputs[1]!.shape[n.params.axis as number]!),
    vjp: (gg, [g, idx], _, p) => [ops.bind('take_along_axis', [gg, idx!], { axis: p.axis }, g!.shape), null],
  },
  matmul: {
    host: hostMatmul,
    lower: (n, ctx) => lowerMatmul(n, ctx),
    vjp: (g, [a, b], _, p) => {
      // C = op(A) op(B). dA = g op(B)^T, dB = op(A)^T g, each written back in
      // A's / B's stored layout by choosing transpose flags, never transposing.
      const ta = p.transA as boolean;
      const tb = p.transB as boolean;
      const da = ta ? matmulT(b!, g, tb, true) : matmulT(g, b!, false, !tb);
      const db = tb ? matmulT(g, a!, true, ta) : matmulT(a!, g, !ta, false);
      return [ops.sumTo(da, a!.shape), ops.sumTo(db, b!.shape)];
    },
  },
  im2col: {
    host: hostIm2col,
    lower: (n) => lowerWindow(n, 'im2col', n.inputs[0]!.shape),
    vjp: (g, [x], _, p) => [conv.col2im(g, p, x!.shape)],
  },
  col2im: {
    host: hostCol2im,
    lower: (n) => lowerWindow(n, 'col2im', n.shape),
    // Linear: its VJP gathers the windows again (padding reads 0 for a cotangent).
    vjp: (gg, [cols], _, p) => [ops.bind('im2col', [gg], { ...p, pad: 0 }, cols!.shape)],
  },
  max_pool: {
    host: hostMaxPool,
    lower: (n) => lowerWindow(n, 'max_pool', n.inputs[0]!.shape),
    vjp: (g, [x], _, p) => [ops.bind('max_pool_grad', [x!, g], p, x!.shape)],
  },
  max_pool_grad: {
    host: hostMaxPoolGrad,
    lower: (n) => lowerWindow(n, 'max_pool_grad', n.shape),
    // Piecewise constant in x; linear in g, whose VJP gathers each window's chosen entry.
    vjp: (gg, [x, g], _, p) => [null, conv.maxPoolGather(gg, x!, p, g!.shape)],
  },
};

/** A node's rules, with its params as the table's rules see them. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a node's params are typed by its primitive's entry
export function rulesOf(n: Node): Primitive<any> {
  return primitives[n.prim];
}

// ---- VJP helpers ----

function inversePerm(perm: number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return inv;
}

/** x's shape with the reduced axes kept as 1 (to broadcast a reduction's output back). */
function keptShape(shape: readonly number[], axes: readonly number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

/** JAX's VJP for max and min: the cotangent shared equally among the elements equal to the result. */
function chooserVjp(g: NDArray, [x]: NDArray[], out: NDArray, p: { axes: number[] }): NDArray[] {
  const kept = keptShape(x!.shape, p.axes);
  const mask = ops.astype(ops.equal(x!, ops.reshape(out, kept)), 'float32');
  const count = ops.sum(mask, p.axes, true);
  return [ops.div(ops.mul(mask, ops.reshape(g, kept)), count)];
}
