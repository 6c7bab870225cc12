// Forward-op tests against float64 CPU references (test/helpers/reference.ts).
//
// Property tests use fast-check with a fixed seed: FC_SEED=<n> reruns with
// another one, and a failure message names the seed. Shapes include sizes 1,
// 7, 65, some of 1000+ and empty dimensions (size-0 arrays are supported and
// give empty results; a sum over an empty axis gives 0).
//
// Tolerances follow float32 error analysis, not blanket epsilons:
//  - correctly rounded ops (+ - * and x*c, x+c): 1 ulp of the result; exact
//    ops (neg, abs, relu, max, min, >=, sign, data movement): exact;
//  - WGSL's documented accuracies (WGSL spec, "Floating Point Accuracy"):
//    x/y 2.5 ulp; exp 3 + 2|x| ulp; log 3 ulp outside [0.5, 2] and 2^-21
//    absolute inside; sin/cos 2^-11 absolute on [-pi, pi]; sqrt, tanh, pow
//    and sigmoid as the composition their definitions inherit;
//  - sums and matmul: |err| <= c * K * u * sum|terms| (u = 2^-24), and the
//    tree-sum bound (log2 K + 2) * u * sum|x| where the tree is the point.

import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  NDArray,
  array,
  zeros,
  ones,
  full,
  arange,
  randomUniform,
  randomNormal,
  add,
  sub,
  mul,
  div,
  maximum,
  minimum,
  greaterEqual,
  equal,
  notEqual,
  less,
  lessEqual,
  greater,
  logicalAnd,
  logicalOr,
  logicalNot,
  isFinite,
  where,
  log1p,
  erf,
  erfInv,
  neg,
  square,
  sqrt,
  exp,
  log,
  sin,
  cos,
  tanh,
  relu,
  abs,
  sign,
  sigmoid,
  scale,
  addScalar,
  astype,
  pow,
  sum,
  mean,
  reshape,
  transpose,
  slice,
  pad,
  concatenate,
  broadcastTo,
  matmul,
  dot,
  stopGradient,
  vjp,
  scaleByAdam,
  memoryStats,
  evaluate,
  setHostEvaluation,
  setKernelPolicy,
  deviceInfo,
  ShapeError,
  ValueError,
  IndexError,
  DisposedArrayError,
  GradGpuError,
  type DType,
} from '../src/index';
import { settle } from './helpers/settle';
import { erf64, erfInv64 } from './helpers/fd64';
import { matmulT } from '../src/array/linalg';
import { primitives } from '../src/array/primitives';
import * as R from './helpers/reference';
import { expectClose, randomF32, sizeOf, U32, EPS32, type Ref } from './helpers/reference';

const FC_SEED = Number(process.env.FC_SEED ?? 42);
fc.configureGlobal({ seed: FC_SEED, numRuns: 12 });

/** fc.assert that names the seed (and how to rerun) when it fails. */
async function check<T>(prop: fc.IAsyncPropertyWithHooks<T>, numRuns?: number): Promise<void> {
  try {
    await fc.assert(prop, numRuns ? { numRuns } : {});
  } catch (e) {
    (e as Error).message = `[fast-check seed ${FC_SEED}; rerun with FC_SEED=${FC_SEED}]\n${(e as Error).message}`;
    throw e;
  }
}

beforeAll(async () => {
  const info = await deviceInfo();
  console.log(`ops.test: fast-check seed ${FC_SEED}; adapter ${info.vendor} ${info.architecture} (${info.description})`);
});

afterEach(() => {
  setKernelPolicy({ matmul: 'auto' });
  setKernelPolicy({ matmul: 'auto', reduce: 'auto', matvec: 'auto' });
});

// ------------------------------------------------------------------ helpers

/** ulp of the float32 nearest v (the spacing at |v|; smallest normal's below it). */
function ulp(v: number): number {
  const a = Math.abs(Math.fround(v));
  if (a < 2 ** -126) return 2 ** -149;
  if (!Number.isFinite(a)) return Infinity;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--; // log2 rounding just below a power of two
  return 2 ** (e - 23);
}

/** A random float32 input and its float64 reference. */
function input(shape: readonly number[], seed: number, lo = -1, hi = 1): { x: NDArray; r: Ref; d: Float32Array } {
  const d = randomF32(sizeOf(shape), seed, lo, hi);
  return { x: array(d, shape), r: R.ref(shape, d), d };
}

/** Random values in +-[lo, hi] (both signs, magnitudes bounded away from 0). */
function signedAway(shape: readonly number[], seed: number, lo: number, hi: number) {
  const d = randomF32(sizeOf(shape), seed, lo, hi);
  const s = randomF32(d.length, seed ^ 0x5bd1e995, -1, 1);
  for (let i = 0; i < d.length; i++) if (s[i]! < 0) d[i] = -d[i]!;
  return { x: array(d, shape), r: R.ref(shape, d), d };
}

const dimArb = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 5 }) },
  { weight: 4, arbitrary: fc.constantFrom(1, 7, 65) },
  { weight: 1, arbitrary: fc.constantFrom(1000, 1031) },
  { weight: 1, arbitrary: fc.constant(0) },
);

/** Shapes of rank minRank..maxRank with at most maxSize elements. */
function shapeArb(minRank = 0, maxRank = 4, maxSize = 6000) {
  return fc.array(dimArb, { minLength: minRank, maxLength: maxRank }).filter((s) => sizeOf(s) <= maxSize);
}

/** A shape that broadcasts to `out`: some leading axes dropped, some axes set to 1. */
function operandOf(out: number[]) {
  return fc
    .record({
      drop: fc.integer({ min: 0, max: out.length }),
      ones: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: out.length, maxLength: out.length }),
    })
    .map(({ drop, ones: o }) => out.slice(drop).map((d, i) => (o[i + drop] === 0 ? 1 : d)));
}

const broadcastPairArb = shapeArb().chain((out) => fc.tuple(operandOf(out), operandOf(out)));

const seedArb = fc.integer({ min: 1, max: 2 ** 30 });

/** Submissions, dispatches and live buffers that fn adds (garbage from before and from fn collected). */
async function stats<T>(fn: () => Promise<T>): Promise<{ value: T; submissions: number; dispatches: number; liveBuffers: number }> {
  await settle();
  const s0 = memoryStats();
  const value = await fn();
  await settle();
  const s1 = memoryStats();
  return {
    value,
    submissions: s1.submissions - s0.submissions,
    dispatches: s1.dispatches - s0.dispatches,
    liveBuffers: s1.liveBuffers - s0.liveBuffers,
  };
}

// ------------------------------------------------------------------ 1. elementwise

interface UnaryCase {
  name: string;
  op: (x: NDArray) => NDArray;
  ref: (x: number) => number;
  lo: number;
  hi: number;
  /** Allowed |err| for input x and exact result w. */
  tol: (x: number, w: number) => number;
  /** Inputs of both signs with magnitudes in [lo, hi]. */
  signed?: boolean;
}

const exact = () => 0;
const ulps = (k: number) => (_x: number, w: number) => k * ulp(w);
const f = Math.fround;

/** pow(x, e) inherits exp2(e * log2(x)) (WGSL): log2 3 ulp outside [0.5, 2] and 2^-21 inside, exp2 3 + 2|z| ulp. */
function powTol(e: number) {
  return (x: number, w: number) => {
    const ax = Math.abs(x);
    const L = Math.log2(ax);
    const dL = ax >= 0.5 && ax <= 2 ? 2 ** -21 : 3 * EPS32 * Math.abs(L);
    const z = Math.abs(e * L);
    const rel = Math.LN2 * (Math.abs(e) * dL + U32 * z) + (3 + 2 * z) * EPS32;
    return 1.05 * rel * Math.abs(w) + ulp(w);
  };
}

const unaryCases: UnaryCase[] = [
  { name: 'neg', op: neg, ref: (x) => -x, lo: -10, hi: 10, tol: exact },
  { name: 'abs', op: abs, ref: Math.abs, lo: -10, hi: 10, tol: exact },
  { name: 'relu', op: relu, ref: (x) => (x < 0 ? 0 : x), lo: -10, hi: 10, tol: exact },
  { name: 'sign', op: sign, ref: Math.sign, lo: -3, hi: 3, tol: exact },
  { name: 'square', op: square, ref: (x) => x * x, lo: -30, hi: 30, tol: ulps(1) },
  // sqrt inherits 1 / inverseSqrt(x): 2 ulp + 2.5 ulp.
  { name: 'sqrt', op: sqrt, ref: Math.sqrt, lo: 0, hi: 100, tol: (_x, w) => 5 * EPS32 * w },
  { name: 'exp', op: exp, ref: Math.exp, lo: -20, hi: 20, tol: (x, w) => (3 + 2 * Math.abs(x)) * ulp(w) },
  { name: 'log', op: log, ref: Math.log, lo: 1e-3, hi: 100, tol: (x, w) => (x >= 0.5 && x <= 2 ? 2 ** -21 : 3 * ulp(w)) },
  // Our own reduction and polynomials (shaders/elementwise.wgsl), not WGSL's 2^-11: about 2 ulp of 1.
  { name: 'sin', op: sin, ref: Math.sin, lo: -100, hi: 100, tol: () => 2 ** -22 },
  { name: 'cos', op: cos, ref: Math.cos, lo: -100, hi: 100, tol: () => 2 ** -22 },
  // tanh inherits sinh/cosh, i.e. (e^x -+ e^-x)/2 with exp's 3 + 2|x| ulp: an absolute bound.
  { name: 'tanh', op: tanh, ref: Math.tanh, lo: -20, hi: 20, tol: (x) => (3 + 2 * Math.abs(x)) * 2 ** -22 + 3 * EPS32 },
  // sigmoid = 1 / (exp(-x) + 1): exp's 3 + 2|x| ulp, the add's 0.5 and the division's 2.5 ulp, relative.
  { name: 'sigmoid', op: sigmoid, ref: (x) => 1 / (1 + Math.exp(-x)), lo: -20, hi: 20, tol: (x, w) => (6 + 2 * Math.abs(x)) * EPS32 * w },
  { name: 'scale(x, 0.37)', op: (x) => scale(x, 0.37), ref: (x) => x * f(0.37), lo: -10, hi: 10, tol: ulps(1) },
  { name: 'scale(x, -3)', op: (x) => scale(x, -3), ref: (x) => x * -3, lo: -10, hi: 10, tol: ulps(1) },
  { name: 'addScalar(x, 2.5)', op: (x) => addScalar(x, 2.5), ref: (x) => x + 2.5, lo: -10, hi: 10, tol: ulps(1) },
  { name: 'addScalar(x, 0.1)', op: (x) => addScalar(x, 0.1), ref: (x) => x + f(0.1), lo: -1, hi: 1, tol: ulps(1) },
  { name: 'add(x, 3) (number)', op: (x) => add(x, 3), ref: (x) => x + 3, lo: -10, hi: 10, tol: ulps(1) },
  { name: 'add(3, x) (number)', op: (x) => add(3, x), ref: (x) => 3 + x, lo: -10, hi: 10, tol: ulps(1) },
  { name: 'sub(x, 1.5) (number)', op: (x) => sub(x, 1.5), ref: (x) => x - 1.5, lo: -10, hi: 10, tol: ulps(1) },
  { name: 'sub(1.5, x) (number)', op: (x) => sub(1.5, x), ref: (x) => 1.5 - x, lo: -10, hi: 10, tol: ulps(1) },
  { name: 'mul(x, 0.5) (number)', op: (x) => mul(x, 0.5), ref: (x) => x * 0.5, lo: -10, hi: 10, tol: exact },
  { name: 'mul(-2, x) (number)', op: (x) => mul(-2, x), ref: (x) => -2 * x, lo: -10, hi: 10, tol: exact },
  { name: 'div(x, 4) (number)', op: (x) => div(x, 4), ref: (x) => x / 4, lo: -10, hi: 10, tol: ulps(2.5) },
  { name: 'div(1, x) (number)', op: (x) => div(1, x), ref: (x) => 1 / x, lo: 0.25, hi: 8, tol: ulps(2.5), signed: true },
  { name: 'maximum(x, 0) (number)', op: (x) => maximum(x, 0), ref: (x) => Math.max(x, 0), lo: -5, hi: 5, tol: exact },
  { name: 'minimum(0, x) (number)', op: (x) => minimum(0, x), ref: (x) => Math.min(0, x), lo: -5, hi: 5, tol: exact },
  {
    name: 'greaterEqual(x, 0.25) (number)',
    op: (x) => astype(greaterEqual(x, 0.25), 'float32'),
    ref: (x) => (x >= 0.25 ? 1 : 0),
    lo: -1,
    hi: 1,
    tol: exact,
  },
  // log1p: its own series below |x| = 0.25 (a few ulp), else WGSL's log (2^-21 absolute near 1).
  { name: 'log1p', op: log1p, ref: Math.log1p, lo: -0.9, hi: 20, tol: (x, w) => (Math.abs(x) < 0.25 ? 4 * ulp(w) : 2 ** -21 + 3 * ulp(w)) },
  { name: 'log1p (small)', op: log1p, ref: Math.log1p, lo: 1e-9, hi: 0.2, tol: (_x, w) => 4 * ulp(w), signed: true },
  // erf: the fit's 1.2e-7 relative error of erfc, and exp's 3 + 2|x| ulp, on erfc <= 0.48.
  { name: 'erf', op: erf, ref: erf64, lo: -5, hi: 5, tol: (x, w) => (Math.abs(x) < 0.5 ? 4 * ulp(w) : 2e-6) },
  { name: 'isFinite', op: (x) => astype(isFinite(div(x, x)), 'float32'), ref: (x) => (x === 0 ? 0 : 1), lo: -3, hi: 3, tol: exact },
  { name: 'astype int32', op: (x) => astype(astype(x, 'int32'), 'float32'), ref: Math.trunc, lo: -1e6, hi: 1e6, tol: exact },
  { name: 'astype bool', op: (x) => astype(astype(x, 'bool'), 'float32'), ref: (x) => (x !== 0 ? 1 : 0), lo: -1, hi: 1, tol: exact },
  { name: 'logicalNot', op: (x) => astype(logicalNot(greater(x, 0)), 'float32'), ref: (x) => (x > 0 ? 0 : 1), lo: -1, hi: 1, tol: exact },
  { name: 'pow(x, 2)', op: (x) => pow(x, 2), ref: (x) => x * x, lo: -10, hi: 10, tol: ulps(1) },
  { name: 'pow(x, 1)', op: (x) => pow(x, 1), ref: (x) => x, lo: -10, hi: 10, tol: exact },
  { name: 'pow(x, 0)', op: (x) => pow(x, 0), ref: () => 1, lo: -10, hi: 10, tol: exact },
  { name: 'pow(x, 3) (negative x)', op: (x) => pow(x, 3), ref: (x) => x ** 3, lo: 0.1, hi: 5, tol: powTol(3), signed: true },
  { name: 'pow(x, -1) (negative x)', op: (x) => pow(x, -1), ref: (x) => 1 / x, lo: 0.1, hi: 5, tol: powTol(-1), signed: true },
  { name: 'pow(x, -2) (negative x)', op: (x) => pow(x, -2), ref: (x) => x ** -2, lo: 0.1, hi: 5, tol: powTol(-2), signed: true },
  { name: 'pow(x, 0.5)', op: (x) => pow(x, 0.5), ref: Math.sqrt, lo: 0.01, hi: 50, tol: powTol(0.5) },
  { name: 'pow(x, 2.5)', op: (x) => pow(x, 2.5), ref: (x) => x ** 2.5, lo: 0.01, hi: 10, tol: powTol(2.5) },
  {
    name: 'pow(x, 1/3) of negatives is NaN',
    op: (x) => pow(x, 1 / 3),
    ref: (x) => (x < 0 ? NaN : x ** (1 / 3)),
    lo: 0.1,
    hi: 5,
    tol: powTol(1 / 3),
    signed: true,
  },
];

interface BinaryCase {
  name: string;
  op: (a: NDArray, b: NDArray) => NDArray;
  ref: (a: number, b: number) => number;
  tol: (a: number, b: number, w: number) => number;
  /** b's magnitudes are kept in [0.25, 8] (divisors). */
  divisor?: boolean;
}

/** Comparisons, logic and where, as float32 0 / 1 (or the selected value), each against its float64 reference. */
const compareCases: BinaryCase[] = [
  {
    name: 'equal (rounded inputs, so ties occur)',
    op: (a, b) => astype(equal(round(a), round(b)), 'float32'),
    ref: (a, b) => (rounded(a) === rounded(b) ? 1 : 0),
    tol: () => 0,
  },
  {
    name: 'notEqual',
    op: (a, b) => astype(notEqual(round(a), round(b)), 'float32'),
    ref: (a, b) => (rounded(a) !== rounded(b) ? 1 : 0),
    tol: () => 0,
  },
  { name: 'less', op: (a, b) => astype(less(a, b), 'float32'), ref: (a, b) => (a < b ? 1 : 0), tol: () => 0 },
  { name: 'lessEqual', op: (a, b) => astype(lessEqual(a, b), 'float32'), ref: (a, b) => (a <= b ? 1 : 0), tol: () => 0 },
  { name: 'greater', op: (a, b) => astype(greater(a, b), 'float32'), ref: (a, b) => (a > b ? 1 : 0), tol: () => 0 },
  {
    name: 'logicalAnd',
    op: (a, b) => astype(logicalAnd(greater(a, 0), greater(b, 0)), 'float32'),
    ref: (a, b) => (a > 0 && b > 0 ? 1 : 0),
    tol: () => 0,
  },
  {
    name: 'logicalOr',
    op: (a, b) => astype(logicalOr(greater(a, 0), greater(b, 0)), 'float32'),
    ref: (a, b) => (a > 0 || b > 0 ? 1 : 0),
    tol: () => 0,
  },
  { name: 'where(a > b, a, b)', op: (a, b) => where(greater(a, b), a, b), ref: (a, b) => (a > b ? a : b), tol: () => 0 },
  { name: 'where(a > 0, a, 2b)', op: (a, b) => where(greater(a, 0), a, scale(b, 2)), ref: (a, b) => (a > 0 ? a : 2 * b), tol: () => 0 },
];
/** x + 0.5 truncated toward zero (through int32), so comparisons see equal values; `rounded` is the same in float64. */
const rounded = (v: number) => Math.trunc(Math.fround(v + 0.5));
const round = (x: NDArray) => astype(astype(addScalar(x, 0.5), 'int32'), 'float32');

const binaryCases: BinaryCase[] = [
  { name: 'add', op: add, ref: (a, b) => a + b, tol: (_a, _b, w) => ulp(w) },
  { name: 'sub', op: sub, ref: (a, b) => a - b, tol: (_a, _b, w) => ulp(w) },
  { name: 'mul', op: mul, ref: (a, b) => a * b, tol: (_a, _b, w) => ulp(w) },
  { name: 'div', op: div, ref: (a, b) => a / b, tol: (_a, _b, w) => 2.5 * ulp(w), divisor: true },
  { name: 'maximum', op: maximum, ref: Math.max, tol: () => 0 },
  { name: 'minimum', op: minimum, ref: Math.min, tol: () => 0 },
  { name: 'greaterEqual', op: (a, b) => astype(greaterEqual(a, b), 'float32'), ref: (a, b) => (a >= b ? 1 : 0), tol: () => 0 },
  ...compareCases,
];

describe('elementwise: unary ops vs float64 reference', () => {
  for (const c of unaryCases) {
    it(c.name, async () => {
      await check(
        fc.asyncProperty(shapeArb(), seedArb, async (shape, seed) => {
          const { x, d } = c.signed ? signedAway(shape, seed, c.lo, c.hi) : input(shape, seed, c.lo, c.hi);
          const y = c.op(x);
          expect(y.shape).toEqual(shape);
          const want = Float64Array.from(d, c.ref);
          expectClose(await y.data('float32'), want, { at: (i, w) => c.tol(d[i]!, w) }, `${c.name} shape [${shape}]`);
        }),
        8,
      );
    });
  }
});

describe('elementwise: binary ops with NumPy broadcasting', () => {
  for (const c of binaryCases) {
    it(c.name, async () => {
      await check(
        fc.asyncProperty(broadcastPairArb, seedArb, async ([sa, sb], seed) => {
          const a = input(sa, seed, -10, 10);
          const b = c.divisor ? signedAway(sb, seed + 1, 0.25, 8) : input(sb, seed + 1, -10, 10);
          const y = c.op(a.x, b.x);
          const want = R.binary(a.r, b.r, c.ref);
          expect(y.shape).toEqual(want.shape);
          // Index the inputs for the tolerance through the broadcast references.
          const ab = R.broadcastTo(a.r, want.shape).data;
          const bb = R.broadcastTo(b.r, want.shape).data;
          expectClose(await y.data('float32'), want, { at: (i, w) => c.tol(ab[i]!, bb[i]!, w) }, `${c.name} [${sa}] with [${sb}]`);
        }),
        15,
      );
    });
  }

  it('binary ops accept the same array on both sides and 0-d arrays', async () => {
    const { x, d } = input([3, 65], 11, -4, 4);
    expectClose(
      await add(x, x).data('float32'),
      Float64Array.from(d, (v) => 2 * v),
      0,
    );
    expectClose(
      await mul(x, x).data('float32'),
      Float64Array.from(d, (v) => v * v),
      { at: (_i, w) => ulp(w) },
    );
    const s = array(2.5);
    expect(s.shape).toEqual([]);
    expectClose(
      await sub(x, s).data('float32'),
      Float64Array.from(d, (v) => v - 2.5),
      { at: (_i, w) => ulp(w) },
    );
    expectClose(await div(s, array(4)).data('float32'), new Float64Array([0.625]), 0);
    expect(await add(array(1), array(2)).item()).toBe(3);
  });

  it('fused expressions over several broadcast operands stay within summed rounding bounds', async () => {
    await check(
      fc.asyncProperty(
        shapeArb(1, 4).chain((out) => fc.tuple(fc.constant(out), operandOf(out), operandOf(out), operandOf(out))),
        seedArb,
        async ([out, sa, sb, sc], seed) => {
          const a = input(sa, seed, -3, 3);
          const b = input(sb, seed + 1, -3, 3);
          const c = input(sc, seed + 2, -3, 3);
          // y = max(a*b + c, -(c - a)) * 0.5, fused into one kernel with up to three broadcast inputs.
          const y = scale(maximum(add(mul(a.x, b.x), c.x), neg(sub(c.x, a.x))), 0.5);
          const ab = R.binary(a.r, b.r, (p, q) => p * q);
          const abc = R.binary(ab, c.r, (p, q) => p + q);
          const ca = R.binary(c.r, a.r, (p, q) => -(p - q));
          const want = R.unary(R.binary(abc, ca, Math.max), (v) => v * 0.5);
          const shape = R.broadcastShape(R.broadcastShape(sa, sb)!, sc)!;
          expect(y.shape).toEqual(shape);
          // Each branch: its terms' magnitudes times u (one rounding each), halved exactly.
          const abAbs = R.binary(R.broadcastTo(a.r, shape), R.broadcastTo(b.r, shape), (p, q) => Math.abs(p * q));
          const cB = R.broadcastTo(c.r, shape).data;
          const aB = R.broadcastTo(a.r, shape).data;
          const bound = abAbs.data.map((v, i) => 0.5 * 2 * U32 * (2 * v + 2 * Math.abs(cB[i]!) + Math.abs(aB[i]!)));
          expectClose(await y.data('float32'), want, { bound }, `[${sa}] [${sb}] [${sc}] -> [${out}]`);
        },
      ),
      15,
    );
  });

  it('non-broadcastable shapes throw ShapeError naming both shapes', () => {
    expect(() => add(zeros([2, 3]), zeros([4, 3]))).toThrow(ShapeError);
    expect(() => mul(zeros([3]), zeros([4]))).toThrow(/\[3\].*\[4\]/);
    expect(() => maximum(zeros([2, 1, 3]), zeros([5, 2]))).toThrow(ShapeError);
  });
});

describe('elementwise: special values', () => {
  const specials = [NaN, Infinity, -Infinity, 0, -0, 1, -1, 3.5];
  // All pairs (a_i, b_j).
  const A = specials.flatMap((a) => specials.map(() => a));
  const B = specials.flatMap(() => specials);

  for (const [name, op, ref] of [
    ['add', add, (a: number, b: number) => a + b],
    ['sub', sub, (a: number, b: number) => a - b],
    ['mul', mul, (a: number, b: number) => a * b],
    ['maximum', maximum, (a: number, b: number) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b))],
    ['minimum', minimum, (a: number, b: number) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b))],
  ] as const) {
    it(`${name} propagates NaN and handles infinities`, async () => {
      const got = await op(array(A), array(B)).data('float32');
      const want = Float64Array.from(A, (a, i) => ref(a, B[i]!));
      // Signed zeros of max/min are unspecified; compare them as values (-0 == 0).
      expectClose(got, want, 0, name);
    });
  }

  it('relu keeps NaN, maps -Inf to 0 and keeps +Inf', async () => {
    const got = await relu(array([NaN, -Infinity, Infinity, -2, 0, 2])).data('float32');
    expectClose(got, new Float64Array([NaN, 0, Infinity, 0, 0, 2]), 0);
  });

  it('NaN survives a fused chain and broadcasting', async () => {
    const x = array([
      [NaN, 1],
      [2, Infinity],
    ]);
    const y = relu(addScalar(mul(x, array([2, 0])), 1)); // Inf * 0 = NaN
    expectClose(await y.data('float32'), new Float64Array([NaN, 1, 5, NaN]), 0);
  });

  it('tanh saturates to +-1 and keeps NaN; sigmoid saturates; sign of 0 is 0', async () => {
    expectClose(await tanh(array([-100, 100, NaN, 0])).data('float32'), new Float64Array([-1, 1, NaN, 0]), { abs: 2 ** -22 });
    expectClose(await sigmoid(array([-200, 200, 0])).data('float32'), new Float64Array([0, 1, 0.5]), { abs: 1e-7 });
    expectClose(await sign(array([0, -3, 4])).data('float32'), new Float64Array([0, -1, 1]), 0);
  });
});

describe('elementwise: empty arrays', () => {
  it('ops on size-0 arrays give size-0 results of the broadcast shape', async () => {
    const e = zeros([3, 0, 2]);
    expect((await exp(e).data('float32')).length).toBe(0);
    const y = add(e, ones([1, 1, 2]));
    expect(y.shape).toEqual([3, 0, 2]);
    expect((await y.data('float32')).length).toBe(0);
    expect(await mul(array(new Float32Array(0), [0]), 2).toNested()).toEqual([]);
    expect(await zeros([2, 0]).toNested()).toEqual([[], []]);
    expect(add(zeros([0]), zeros([1])).shape).toEqual([0]);
    expect(() => add(zeros([0]), zeros([2]))).toThrow(ShapeError);
  });
});

// ------------------------------------------------------------------ 2. sums

describe('sum and mean', () => {
  const axesArb = (rank: number) =>
    fc.record({
      axes: fc.subarray([...Array(rank).keys()]),
      negate: fc.array(fc.boolean(), { minLength: rank, maxLength: rank }),
      keepdims: fc.boolean(),
      all: fc.integer({ min: 0, max: 5 }),
    });

  for (const reduce of ['tree', 'strided'] as const) {
    it(`over random axes (all, single, several non-contiguous, negative, keepdims) within K*u*sum|x|, ${reduce} kernel`, async () => {
      setKernelPolicy({ reduce });
      await check(
        fc.asyncProperty(
          shapeArb(0, 4, 20000).chain((s) => fc.tuple(fc.constant(s), axesArb(s.length))),
          seedArb,
          async ([shape, { axes, negate, keepdims, all }], seed) => {
            const { x, r } = input(shape, seed);
            const useAll = all === 0;
            const ax = axes.map((a, i) => (negate[i] ? a - shape.length : a));
            const y = useAll ? sum(x, undefined, keepdims) : sum(x, ax, keepdims);
            const want = R.sum(r, useAll ? undefined : ax, keepdims);
            expect(y.shape).toEqual(want.value.shape);
            const bound = want.abs.map((t) => (want.count + 1) * U32 * t);
            expectClose(await y.data('float32'), want.value, { bound }, `sum [${shape}] axes ${useAll ? 'all' : `[${ax}]`} keepdims=${keepdims}`);
          },
        ),
        25,
      );
    });
  }

  it('mean over random axes', async () => {
    await check(
      fc.asyncProperty(
        shapeArb(1, 4, 20000)
          .filter((s) => sizeOf(s) > 0)
          .chain((s) => fc.tuple(fc.constant(s), axesArb(s.length))),
        seedArb,
        async ([shape, { axes, keepdims }], seed) => {
          const { x, r } = input(shape, seed, -2, 3);
          const y = mean(x, axes, keepdims);
          const want = R.sum(r, axes, keepdims);
          const m = want.value.data.map((v) => v / want.count);
          // The sum's bound, scaled, plus the rounding of 1/count and of the product.
          const bound = want.abs.map((t, i) => ((want.count + 1) * U32 * t) / want.count + 2 * ulp(m[i]!));
          expect(y.shape).toEqual(want.value.shape);
          expectClose(await y.data('float32'), m, { bound }, `mean [${shape}] axes [${axes}]`);
        },
      ),
      15,
    );
  });

  it('long axes in both kernels (contiguous rows and strided), with several passes', async () => {
    for (const reduce of ['tree', 'strided'] as const)
      for (const [shape, axes] of [
        [[3, 70001], [1]], // rows, two passes
        [[5000, 3], [0]], // strided, three passes
        [[7, 300, 5], [1]], // strided with A > 1
        [
          [2, 65, 3, 7],
          [0, 2],
        ], // non-contiguous axes
        [[1031], [0]],
      ] as Array<[number[], number[]]>) {
        setKernelPolicy({ reduce });
        const { x, r } = input(shape, sizeOf(shape), -1, 1);
        const want = R.sum(r, axes);
        expectClose(
          await sum(x, axes).data('float32'),
          want.value,
          { bound: want.abs.map((t) => (want.count + 1) * U32 * t) },
          `${reduce}: [${shape}] axes [${axes}]`,
        );
      }
  });

  it('sum of 10^6 ones is exactly 10^6 (both kernels)', async () => {
    for (const reduce of ['tree', 'strided'] as const) {
      setKernelPolicy({ reduce });
      expect(await sum(ones([1_000_000])).item()).toBe(1_000_000);
      expect(await sum(ones([1000, 1000])).item()).toBe(1_000_000);
      expect(await sum(sum(ones([1000, 1000]), 0)).item()).toBe(1_000_000);
    }
  });

  it('sum of 2^20 random values is within a tree-sum error bound', async () => {
    const n = 2 ** 20;
    const d = randomF32(n, 2024, 0, 1);
    let exactSum = 0;
    let absSum = 0;
    let naive = 0; // a sequential float32 running total, to show the bound is tight enough to matter
    for (let i = 0; i < n; i++) {
      exactSum += d[i]!;
      absSum += Math.abs(d[i]!);
      naive = f(naive + d[i]!);
    }
    // The worst-case bound of a pairwise tree. Blocked trees with short blocks (the strided kernel,
    // 64 per block) meet it by a wide margin on random data (about 0.02 of 0.69 here); a running
    // float32 total misses it several times over (about 4.9), as checked first.
    const bound = (Math.log2(n) + 2) * U32 * absSum;
    expect(Math.abs(naive - exactSum)).toBeGreaterThan(bound);
    const x = array(d);
    for (const reduce of ['tree', 'strided'] as const) {
      setKernelPolicy({ reduce });
      const got = await sum(x).item();
      expect(Math.abs(got - exactSum), `${reduce}: got ${got}, exact ${exactSum}, bound ${bound}`).toBeLessThanOrEqual(bound);
    }
  });

  it('sums over empty axes are 0; sums with no axes return the input', async () => {
    expectClose(await sum(zeros([3, 0]), 1).data('float32'), new Float64Array(3), 0);
    expectClose(await sum(ones([0, 4]), 0).data('float32'), new Float64Array(4), 0);
    expectClose(await sum(ones([2, 0, 3]), [0, 1], true).data('float32'), new Float64Array(3), 0);
    expect(sum(ones([2, 0, 3]), [0, 1], true).shape).toEqual([1, 1, 3]);
    expect(await sum(zeros([0])).item()).toBe(0);
    expect((await sum(ones([0, 3]), 1).data('float32')).length).toBe(0);
    const x = array([
      [1, 2],
      [3, 4],
    ]);
    expect(await sum(x, []).toNested()).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(await sum(array(5)).item()).toBe(5);
  });

  it('bad axes throw ValueError', () => {
    expect(() => sum(zeros([2, 3]), 2)).toThrow(ValueError);
    expect(() => sum(zeros([2, 3]), [0, 0])).toThrow(ValueError);
    expect(() => sum(zeros([2, 3]), -3)).toThrow(ValueError);
    expect(() => mean(zeros([2, 3]), 1.5)).toThrow(ValueError);
  });
});

// ------------------------------------------------------------------ 3. matmul

// 'auto' also takes the matrix-vector kernels where N or M is 1.
const variants = ['register', 'shared', 'auto'] as const;

/** op(a) @ op(b) on the GPU, checked against the reference with |err| <= (K + 2) u sum|a b|. */
async function checkMatmul(got: NDArray, a: Ref, b: Ref, ta: boolean, tb: boolean, label: string, outShape?: number[]) {
  const want = R.matmul(a, b, ta, tb);
  expect(got.shape).toEqual(outShape ?? want.value.shape);
  const bound = want.abs.map((t) => (want.K + 2) * U32 * t);
  expectClose(await got.data('float32'), want.value, { bound }, label);
}

describe('matmul', () => {
  const mnk = fc.constantFrom(1, 2, 3, 7, 16, 17, 64, 65, 100);
  const kArb = fc.oneof(fc.constantFrom(0, 1, 7, 65), fc.integer({ min: 1, max: 300 }));
  const batchArb = fc.constantFrom('none', 'both', 'aOnly', 'bOnly', 'a1', 'b1');

  for (const variant of variants) {
    it(`random (M, K, N), transposes and batches, ${variant} kernel`, async () => {
      setKernelPolicy({ matmul: variant });
      await check(
        fc.asyncProperty(
          mnk,
          kArb,
          mnk,
          fc.boolean(),
          fc.boolean(),
          batchArb,
          fc.integer({ min: 2, max: 3 }),
          seedArb,
          async (M, K, N, ta, tb, bmode, B, seed) => {
            if (M * N * K * B > 300_000) return; // keep SwiftShader time small
            const aMat = ta ? [K, M] : [M, K];
            const bMat = tb ? [N, K] : [K, N];
            const aShape =
              bmode === 'both' || bmode === 'aOnly' ? [B, ...aMat] : bmode === 'a1' ? [1, ...aMat] : bmode === 'b1' ? [B, ...aMat] : aMat;
            const bShape =
              bmode === 'both' || bmode === 'bOnly' ? [B, ...bMat] : bmode === 'b1' ? [1, ...bMat] : bmode === 'a1' ? [B, ...bMat] : bMat;
            const a = input(aShape, seed, -1, 1);
            const b = input(bShape, seed + 7, -1, 1);
            await checkMatmul(matmulT(a.x, b.x, ta, tb), a.r, b.r, ta, tb, `${variant}: [${aShape}]${ta ? 'ᵀ' : ''} @ [${bShape}]${tb ? 'ᵀ' : ''}`);
            if (!ta && !tb) await checkMatmul(matmul(a.x, b.x), a.r, b.r, false, false, `${variant}: matmul [${aShape}] @ [${bShape}]`);
          },
        ),
        20,
      );
    });

    it(`1-D operands follow NumPy (matrix-vector, vector-matrix, dot, batched), ${variant} kernel`, async () => {
      setKernelPolicy({ matmul: variant });
      const d = 37;
      const A = input([5, d], 1);
      const v = input([d], 2);
      const w = input([d], 3);
      const Bm = input([d, 6], 4);
      const A3 = input([3, 4, d], 5);
      const B3 = input([2, d, 5], 6);
      const col = (r: Ref): Ref => ({ shape: [r.shape[0]!, 1], data: r.data });
      const row = (r: Ref): Ref => ({ shape: [1, r.shape[0]!], data: r.data });
      await checkMatmul(matmul(A.x, v.x), A.r, col(v.r), false, false, '(5,d)@(d,)', [5]);
      await checkMatmul(matmul(v.x, Bm.x), row(v.r), Bm.r, false, false, '(d,)@(d,6)', [6]);
      await checkMatmul(matmul(v.x, w.x), row(v.r), col(w.r), false, false, '(d,)@(d,)', []);
      await checkMatmul(dot(v.x, w.x), row(v.r), col(w.r), false, false, 'dot', []);
      await checkMatmul(matmul(A3.x, v.x), A3.r, col(v.r), false, false, '(3,4,d)@(d,)', [3, 4]);
      await checkMatmul(matmul(v.x, B3.x), row(v.r), B3.r, false, false, '(d,)@(2,d,5)', [2, 5]);
      // dot of equal n-d shapes is sum(a * b).
      const p = input([4, 9], 7);
      const q = input([4, 9], 8);
      await checkMatmul(dot(p.x, q.x), { shape: [1, 36], data: p.r.data }, { shape: [36, 1], data: q.r.data }, false, false, 'dot n-d', []);
    });

    it(`split-K (small output, long K), ${variant} kernel`, async () => {
      setKernelPolicy({ matmul: variant });
      const cases: Array<[number[], number[], boolean, boolean]> = [
        [[64, 5000], [5000, 1], false, false], // M=64, N=1, K=5000
        [[4096, 64], [4096, 8], true, false], // xᵀg: (4096x64)ᵀ @ (4096x8)
        [[3, 5, 1000], [3, 1000, 7], false, false], // batched
        [[1, 3000], [2, 3000], false, true], // a row times bᵀ
        [[1, 5000], [5000, 1], false, false], // a long dot
      ];
      for (const [sa, sb, ta, tb] of cases) {
        const a = input(sa, sizeOf(sa), -1, 1);
        const b = input(sb, sizeOf(sb) + 1, -1, 1);
        await checkMatmul(matmulT(a.x, b.x, ta, tb), a.r, b.r, ta, tb, `${variant}: [${sa}]${ta ? 'ᵀ' : ''} @ [${sb}]${tb ? 'ᵀ' : ''}`);
      }
      // The public spelling of xᵀg.
      const x = input([2048, 33], 3);
      const g = input([2048, 5], 4);
      await checkMatmul(matmul(transpose(x.x), g.x), x.r, g.r, true, false, `${variant}: transpose(x) @ g`);
    });
  }

  it('register, shared and auto kernels on a batched shape with ragged tiles', async () => {
    const a = input([2, 67, 130], 9);
    const b = input([130, 71], 10);
    const got: Float32Array[] = [];
    for (const v of ['register', 'shared', 'auto'] as const) {
      setKernelPolicy({ matmul: v });
      await checkMatmul(matmul(a.x, b.x), a.r, b.r, false, false, v);
      got.push(await matmul(a.x, b.x).data('float32'));
    }
    // Same summation order within a tile? Not required; both are within the bound of each other.
    const want = R.matmul(a.r, b.r);
    expectClose(got[0]!, Float64Array.from(got[1]!), { bound: want.abs.map((t) => 2 * (want.K + 2) * U32 * t) }, 'register vs shared');
  });

  it('more than 65535 batch entries (beyond one dispatch in z; regression)', async () => {
    // At least 65536 workgroups whatever the shapes, slow on SwiftShader: the register kernel only
    // (no barriers). The z split is shared TypeScript; both kernels read zBase the same way.
    const B = 65_600;
    const a = input([B, 1, 2], 12);
    const b = input([B, 2, 1], 13);
    setKernelPolicy({ matmul: 'register' });
    await checkMatmul(matmul(a.x, b.x), a.r, b.r, false, false, `register: batch ${B}`);
  });

  it('K = 0 gives zeros; M = 0 or N = 0 gives empty results', async () => {
    expectClose(await matmul(ones([2, 0]), ones([0, 3])).data('float32'), new Float64Array(6), 0);
    expect(matmul(ones([0, 4]), ones([4, 3])).shape).toEqual([0, 3]);
    expect((await matmul(ones([0, 4]), ones([4, 3])).data('float32')).length).toBe(0);
    expect((await matmul(ones([2, 4]), ones([4, 0])).data('float32')).length).toBe(0);
    expect((await matmul(ones([3, 2, 4]), ones([3, 4, 0])).data('float32')).length).toBe(0);
  });

  it('shape errors: inner dims (message names both shapes), batch mismatch, rank', () => {
    expect(() => matmul(zeros([2, 3]), zeros([4, 5]))).toThrow(ShapeError);
    expect(() => matmul(zeros([2, 3]), zeros([4, 5]))).toThrow(/\[2, 3\][\s\S]*\[4, 5\]/);
    expect(() => matmul(zeros([3]), zeros([4]))).toThrow(ShapeError);
    expect(() => matmul(zeros([2, 2, 3]), zeros([3, 3, 4]))).toThrow(ShapeError);
    expect(() => matmul(zeros([]), zeros([3]))).toThrow(ShapeError);
    expect(() => matmul(zeros([2, 2, 2, 3]), zeros([3, 3, 2]))).toThrow(ShapeError); // batch axes [2, 2] vs [3]
  });
});

// ------------------------------------------------------------------ 3b. values near float32 overflow
//
// Inputs near the float32 maximum (|x| in [1e37, 3.4e38], both signs) mixed
// with ordinary values and zeros, through every primitive. The GPU must give
// what IEEE 754 float32 arithmetic gives for the exact (float64) result: that
// value within the op's usual tolerance where it is representable; +-Infinity
// with the right sign where it overflows; NaN exactly where IEEE says NaN
// (inf - inf, 0 * inf, log of a negative); never a finite wrong value or 0.
// (Results below the smallest normal, 2^-126, may be flushed to 0: WGSL
// allows it.) Transcendentals at huge arguments have their IEEE limits:
// exp(1e38) = Inf, exp(-1e38) = 0, tanh(+-1e38) = +-1, log(3e38) finite;
// sin and cos of a huge argument only need to stay in [-1, 1] (GPUs reduce
// the range differently). Sums and matmul products can overflow part-way:
// with terms of one sign the result is exact-or-Inf; with both signs and
// sum|terms| past the maximum, IEEE gives Inf or NaN depending on the order
// of the additions (and on fused multiply-adds), so those may be NaN or Inf,
// or a finite value within the usual bound, never finite garbage.
//
// Kernels this found wrong on SwiftShader (fixed in shaders/elementwise.wgsl):
// log(x < 0) gave log|x| and log(0) gave -88.03 (now NaN and -Inf); pow(0, 0.5)
// gave 7.7e-20 and pow(0, -1) 1.7e38 (now 0 and Inf); randomUniform(-3e38, 3e38)
// gave only Infinity (high - low overflowed; now lo (1 - u) + hi u there);
// arange(-3.4e38, 3.4e38, 6.8e37) gave Infinity from i = 6 (i * step overflowed).
// And Adam's update (then a kernel of its own) overflowed part-way (m/bc1, v/bc2)
// where the update itself is finite. On an NVIDIA H200: x / y gave 0 for
// |y| > 2^126 (1e37 / 3.4e38), the GPU's reciprocal flushing to zero (div_s).

const F32_MAX = 3.4028234663852886e38;
/** Exact values at or past this round to Infinity in float32 (half an ulp above the maximum). */
const F32_INF_AT = 2 ** 128 - 2 ** 103;
const MIN_NORMAL = 2 ** -126;

/** |x| log-uniform in [1e37, F32_MAX], either sign. */
const hugeArb = fc
  .tuple(fc.double({ min: 37, max: Math.log10(F32_MAX), noNaN: true }), fc.boolean())
  .map(([e, neg]) => Math.fround(Math.min(10 ** e, F32_MAX)) * (neg ? -1 : 1));
/** |x| log-uniform in [1e-3, 10], either sign. */
const ordinaryArb = fc.tuple(fc.double({ min: -3, max: 1, noNaN: true }), fc.boolean()).map(([e, neg]) => Math.fround(10 ** e) * (neg ? -1 : 1));
const edgeArb = fc.constantFrom(F32_MAX, -F32_MAX, 0, 1, -1, 2 ** 126, -(2 ** 127), 1e37);
const nearMaxArb = fc.oneof({ weight: 6, arbitrary: hugeArb }, { weight: 3, arbitrary: ordinaryArb }, { weight: 1, arbitrary: edgeArb });
/** Also +-Infinity now and then: what an overflow upstream feeds into sums and products. */
const nearMaxOrInfArb = fc.oneof({ weight: 15, arbitrary: nearMaxArb }, { weight: 1, arbitrary: fc.constantFrom(Infinity, -Infinity) });
const valuesArb = (arb = nearMaxArb, max = 64) => fc.array(arb, { minLength: 1, maxLength: max });

/**
 * What IEEE float32 arithmetic allows for an exact result `want` with `tol` of
 * rounding error (tol computed at a representable magnitude): null if `got`
 * is allowed, else why not.
 */
function ieeeOutcome(got: number, want: number, tol: number): string | null {
  if (Number.isNaN(want)) return Number.isNaN(got) ? null : `want NaN`;
  if (Number.isNaN(got)) return `got NaN`;
  if (!Number.isFinite(got)) {
    // Infinity: right when the exact result overflows (or is within tol of overflowing), with its sign.
    return Math.abs(want) + tol >= F32_INF_AT && Math.sign(got) === Math.sign(want) ? null : `got ${got}`;
  }
  if (!Number.isFinite(want)) return `got a finite ${got}, want ${want}`;
  const allowed = tol + (Math.abs(want) < MIN_NORMAL ? MIN_NORMAL : 0); // flush to zero
  return Math.abs(got - want) <= allowed ? null : `|err| ${Math.abs(got - want)} > ${allowed}`;
}

/** tol(x, w) evaluated at a representable w (overflowing results are judged at the maximum). */
const clampW = (w: number) => (Number.isNaN(w) ? w : Math.max(-F32_MAX, Math.min(F32_MAX, w)));

function expectIeee(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  tol: (i: number, w: number) => number,
  label: string,
  inputs: (i: number) => string,
) {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    const why = ieeeOutcome(got[i]!, w, tol(i, clampW(w)));
    if (why) throw new Error(`${label}: at ${i} (${inputs(i)}) got ${got[i]}, want ${w} (float32 ${Math.fround(w)}): ${why}`);
  }
}

/** The float32 outcomes IEEE allows for a sum of exact `terms` (any order), with the (K + 2) u sum|t| bound. */
function sumOutcome(got: number, terms: number[], extraRel = 0): string | null {
  if (terms.some(Number.isNaN)) return Number.isNaN(got) ? null : 'want NaN (0 * Inf among the terms)';
  const posInf = terms.includes(Infinity);
  const negInf = terms.includes(-Infinity);
  if (posInf && negInf) return Number.isNaN(got) ? null : 'want NaN (Inf - Inf)';
  let pos = 0;
  let neg = 0;
  for (const t of terms) {
    if (!Number.isFinite(t)) continue;
    if (t > 0) pos += t;
    else neg -= t;
  }
  const bound = (terms.length + 2) * U32 * (pos + neg) + extraRel * Math.abs(pos - neg);
  if (posInf || negInf) {
    const sign = posInf ? 1 : -1;
    if (got === sign * Infinity) return null;
    // The other sign's terms may overflow part-way too, and then Inf - Inf is NaN.
    return Number.isNaN(got) && (posInf ? neg : pos) + bound >= F32_INF_AT ? null : `want ${sign * Infinity}`;
  }
  const r = pos - neg;
  // One sign, or too small for any partial sum to overflow: the exact sum, or Inf where it overflows.
  if (pos === 0 || neg === 0 || pos + neg + bound < F32_INF_AT) return ieeeOutcome(got, r, bound);
  // Both signs past the maximum: partial sums may overflow (Inf) and meet (NaN). With fused
  // multiply-adds (GPUs use them) even the sign depends on the order: fma(a, b, -Inf) is -Inf
  // however large the exact a * b is, where a rounded product would have been +Inf (and NaN).
  if (!Number.isFinite(got)) return null;
  return Math.abs(r) < F32_INF_AT && Math.abs(got - r) <= bound ? null : `got ${got}, want ${r} +- ${bound}`;
}

interface OverflowUnary {
  name: string;
  op: (x: NDArray) => NDArray;
  ref: (x: number) => number;
  /** Allowed error at an ordinary input. */
  tol: (x: number, w: number) => number;
  /** The IEEE limit at a huge input (|x| > limitFrom), where tol does not apply: why got is wrong, or null. */
  limit?: (x: number, got: number) => string | null;
  limitFrom?: number;
}

const inRange = (lo: number, hi: number) => (_x: number, got: number) => (got >= lo && got <= hi ? null : `want in [${lo}, ${hi}]`);
const near = (v: number, tol: number) => (got: number) => (Math.abs(got - v) <= tol ? null : `want ${v} +- ${tol}`);

const overflowUnary: OverflowUnary[] = [
  { name: 'neg', op: neg, ref: (x) => -x, tol: exact },
  { name: 'abs', op: abs, ref: Math.abs, tol: exact },
  { name: 'relu', op: relu, ref: (x) => (x < 0 ? 0 : x), tol: exact },
  { name: 'sign', op: sign, ref: Math.sign, tol: exact },
  { name: 'square', op: square, ref: (x) => x * x, tol: ulps(1) },
  { name: 'sqrt', op: sqrt, ref: Math.sqrt, tol: (_x, w) => 5 * EPS32 * w },
  {
    name: 'exp',
    op: exp,
    ref: Math.exp,
    tol: (x, w) => (3 + 2 * Math.abs(x)) * ulp(w),
    limitFrom: 100,
    limit: (x, got) => (x > 0 ? (got === Infinity ? null : 'want Infinity') : got >= 0 && got < MIN_NORMAL ? null : 'want 0'),
  },
  { name: 'log', op: log, ref: Math.log, tol: (x, w) => (x >= 0.5 && x <= 2 ? 2 ** -21 : 3 * ulp(w)) },
  { name: 'sin', op: sin, ref: Math.sin, tol: () => 2 ** -11, limitFrom: Math.PI, limit: inRange(-1, 1) },
  { name: 'cos', op: cos, ref: Math.cos, tol: () => 2 ** -11, limitFrom: Math.PI, limit: inRange(-1, 1) },
  {
    name: 'tanh',
    op: tanh,
    ref: Math.tanh,
    tol: (x) => (3 + 2 * Math.abs(x)) * 2 ** -22 + 3 * EPS32,
    limitFrom: 20,
    limit: (x, got) => near(Math.sign(x), 2 ** -22)(got),
  },
  {
    name: 'sigmoid (logistic)',
    op: sigmoid,
    ref: (x) => 1 / (1 + Math.exp(-x)),
    tol: (x, w) => (6 + 2 * Math.abs(x)) * EPS32 * w,
    limitFrom: 100,
    limit: (x, got) => (x > 0 ? near(1, EPS32)(got) : got >= 0 && got < MIN_NORMAL ? null : 'want 0'),
  },
  ...[2, 0.5, -3, 1e-30, 3e38].map((c): OverflowUnary => ({
    name: `scale(x, ${c})`,
    op: (x) => scale(x, c),
    ref: (x) => x * f(c),
    tol: ulps(1),
  })),
  ...[3e38, -1e38, 2.5].map((c): OverflowUnary => ({
    name: `addScalar(x, ${c})`,
    op: (x) => addScalar(x, c),
    ref: (x) => x + f(c),
    tol: ulps(1),
  })),
  ...[3, 0.5, -1, -2, 2.5, 1 / 3].map((e): OverflowUnary => ({
    name: `pow(x, ${e.toPrecision(3)})`,
    op: (x) => pow(x, e),
    ref: (x) => x ** e,
    tol: (x, w) => (x === 0 ? 0 : powTol(e)(x, w)),
  })),
  { name: 'broadcastTo', op: (x) => reshape(broadcastTo(x, [2, x.size]), [2 * x.size]), ref: (x) => x, tol: exact },
  {
    name: 'log1p',
    op: log1p,
    ref: Math.log1p,
    tol: (x, w) => (Math.abs(x) < 0.25 ? 4 * ulp(w) : 2 ** -21 + 3 * ulp(w)),
    limitFrom: 1e30,
    limit: (x, got) => (x > 0 ? (got > 69 && got < 89 ? null : 'want log(x)') : Number.isNaN(got) ? null : 'want NaN'),
  },
  {
    name: 'erf',
    op: erf,
    ref: erf64,
    tol: (x, w) => (Math.abs(x) < 0.5 ? 4 * ulp(w) : 2e-6),
    limitFrom: 5,
    limit: (x, got) => (got === Math.sign(x) ? null : `want ${Math.sign(x)}`),
  },
  { name: 'isFinite', op: (x) => astype(isFinite(x), 'float32'), ref: () => 1, tol: exact },
  // erfInv of huge values is NaN (outside [-1, 1]); of ordinary ones, near the float64 inverse where defined.
  {
    name: 'erfInv',
    op: erfInv,
    ref: (x) => (Math.abs(x) > 1 ? NaN : Math.abs(x) === 1 ? x * Infinity : erfInv64(x)),
    tol: (x) => 2e-6 / Math.max(1e-3, 1 - Math.abs(x)),
  },
  {
    name: 'astype int32 (saturating)',
    op: (x) => astype(x, 'int32'),
    ref: (x) => Math.max(-2147483648, Math.min(2147483647, Math.trunc(x))),
    tol: exact,
  },
  { name: 'astype bool', op: (x) => astype(astype(x, 'bool'), 'float32'), ref: (x) => (x !== 0 ? 1 : 0), tol: exact },
  { name: 'logicalNot', op: (x) => astype(logicalNot(x), 'float32'), ref: (x) => (x !== 0 ? 0 : 1), tol: exact },
];

interface OverflowBinary {
  name: string;
  op: (a: NDArray, b: NDArray) => NDArray;
  ref: (a: number, b: number) => number;
  tol: (w: number) => number;
}

const overflowBinary: OverflowBinary[] = [
  { name: 'add', op: add, ref: (a, b) => a + b, tol: ulp },
  { name: 'sub', op: sub, ref: (a, b) => a - b, tol: ulp },
  { name: 'mul', op: mul, ref: (a, b) => a * b, tol: ulp },
  { name: 'div', op: div, ref: (a, b) => a / b, tol: (w) => 2.5 * ulp(w) },
  { name: 'maximum', op: maximum, ref: Math.max, tol: () => 0 },
  { name: 'minimum (neg, maximum)', op: minimum, ref: Math.min, tol: () => 0 },
  { name: 'greaterEqual', op: (a, b) => astype(greaterEqual(a, b), 'float32'), ref: (a, b) => (a >= b ? 1 : 0), tol: () => 0 },
  { name: 'equal', op: (a, b) => astype(equal(a, b), 'float32'), ref: (a, b) => (a === b ? 1 : 0), tol: () => 0 },
  { name: 'notEqual', op: (a, b) => astype(notEqual(a, b), 'float32'), ref: (a, b) => (a !== b ? 1 : 0), tol: () => 0 },
  { name: 'less', op: (a, b) => astype(less(a, b), 'float32'), ref: (a, b) => (a < b ? 1 : 0), tol: () => 0 },
  { name: 'lessEqual', op: (a, b) => astype(lessEqual(a, b), 'float32'), ref: (a, b) => (a <= b ? 1 : 0), tol: () => 0 },
  { name: 'greater', op: (a, b) => astype(greater(a, b), 'float32'), ref: (a, b) => (a > b ? 1 : 0), tol: () => 0 },
  { name: 'logicalAnd', op: (a, b) => astype(logicalAnd(a, b), 'float32'), ref: (a, b) => (a !== 0 && b !== 0 ? 1 : 0), tol: () => 0 },
  { name: 'logicalOr', op: (a, b) => astype(logicalOr(a, b), 'float32'), ref: (a, b) => (a !== 0 || b !== 0 ? 1 : 0), tol: () => 0 },
  { name: 'where', op: (a, b) => where(greater(a, b), b, a), ref: (a, b) => Math.min(a, b), tol: () => 0 },
];

/** Primitives each case below runs (the composite ones list what they are made of). */
const overflowCoverage: Record<string, string> = {
  neg: 'neg',
  abs: 'abs',
  relu: 'relu',
  sign: 'sign',
  square: 'square',
  sqrt: 'sqrt',
  exp: 'exp',
  log: 'log',
  sin: 'sin',
  cos: 'cos',
  tanh: 'tanh',
  logistic: 'sigmoid',
  scale: 'scale(x, c)',
  add_scalar: 'addScalar(x, c)',
  pow_scalar: 'pow(x, e)',
  broadcast_to: 'broadcastTo',
  add: 'add',
  sub: 'sub',
  mul: 'mul',
  div: 'div',
  maximum: 'maximum',
  equal: 'equal',
  not_equal: 'notEqual',
  less: 'less',
  less_equal: 'lessEqual',
  greater: 'greater',
  greater_equal: 'greaterEqual',
  logical_and: 'logicalAnd',
  logical_or: 'logicalOr',
  logical_not: 'logicalNot',
  select: 'where',
  is_finite: 'isFinite',
  convert: 'astype int32 (saturating), astype bool',
  log1p: 'log1p',
  erf_inv: 'erfInv',
  im2col: 'copies (patches move values; test/conv.test.ts)',
  col2im: 'sums of window entries, as sum (test/conv.test.ts)',
  max_pool: 'chooses an element, as max (test/conv.test.ts)',
  max_pool_grad: 'sums of cotangents, as sum (test/conv.test.ts)',
  threefry: 'random keys: bits are words, not floats (test/random.test.ts)',
  permutation_of: 'random keys (test/random.test.ts)',
  erf: 'erf',
  max: 'max, min near ±3e38 (test/dtypes.test.ts)',
  min: 'max, min near ±3e38 (test/dtypes.test.ts)',
  argmax: 'argmax, argmin near ±3e38 (test/dtypes.test.ts)',
  argmin: 'argmax, argmin near ±3e38 (test/dtypes.test.ts)',
  take: 'take moves words bit for bit (test/dtypes.test.ts)',
  take_along_axis: 'take moves words bit for bit (test/dtypes.test.ts)',
  take_add: 'scatter-add near ±3e38 (test/dtypes.test.ts)',
  take_along_axis_add: 'scatter-add near ±3e38 (test/dtypes.test.ts)',
  fill: 'fill',
  arange: 'arange',
  random_uniform: 'randomUniform',
  random_normal: 'randomNormal',
  constant: 'every case (inputs are uploaded constants)',
  reshape: 'copies',
  identity: 'copies (vjp)',
  stop_gradient: 'copies',
  transpose: 'copies',
  slice: 'copies',
  pad: 'copies',
  concatenate: 'copies',
  sum: 'sum and mean',
  matmul: 'matmul',
};

describe('values near float32 overflow, every primitive', () => {
  it('every primitive in the table has a near-overflow case', () => {
    const missing = Object.keys(primitives).filter((p) => !(p in overflowCoverage));
    expect(missing, `primitives without a near-overflow case: add one below for ${missing.join(', ')}`).toEqual([]);
  });

  for (const c of overflowUnary) {
    it(`${c.name}`, async () => {
      await check(
        fc.asyncProperty(valuesArb(), async (xs) => {
          const x = Float32Array.from(xs);
          const got = await c.op(array(x)).data();
          for (let i = 0; i < got.length; i++) {
            // (broadcastTo repeats x)
            const xi = x[i % x.length]!;
            const label = `${c.name} at x = ${xi}`;
            if (c.limit && Math.abs(xi) > c.limitFrom!) {
              const why = c.limit(xi, got[i]!);
              if (why) throw new Error(`${label}: got ${got[i]}: ${why}`);
            } else {
              const w = c.ref(xi);
              const why = ieeeOutcome(got[i]!, w, c.tol(xi, clampW(w)));
              if (why) throw new Error(`${label}: got ${got[i]}, want ${w} (float32 ${f(w)}): ${why}`);
            }
          }
        }),
        10,
      );
    });
  }

  for (const c of overflowBinary) {
    it(`${c.name}`, async () => {
      await check(
        fc.asyncProperty(
          valuesArb().chain((a) => fc.tuple(fc.constant(a), fc.array(nearMaxArb, { minLength: a.length, maxLength: a.length }))),
          async ([as, bs]) => {
            const a = Float32Array.from(as);
            const b = Float32Array.from(bs);
            const want = Float64Array.from(a, (v, i) => c.ref(v, b[i]!));
            expectIeee(
              await c.op(array(a), array(b)).data(),
              want,
              (_i, w) => c.tol(w),
              c.name,
              (i) => `a = ${a[i]}, b = ${b[i]}`,
            );
          },
        ),
        12,
      );
    });
  }

  it('fill, arange', async () => {
    await check(
      fc.asyncProperty(nearMaxArb, async (v) => {
        expectIeee(
          await full([5], v).data('float32'),
          [v, v, v, v, v],
          () => 0,
          `full(${v})`,
          () => '',
        );
      }),
      10,
    );
    for (const [start, stop, step] of [
      [-3.4e38, 3.4e38, 6.8e37],
      [3e38, F32_MAX, 1e37],
      [F32_MAX, -F32_MAX, -5e37],
    ]) {
      const got = await arange(start!, stop!, step!).data('float32');
      const want = Array.from(got, (_, i) => f(start!) + i * f(step!));
      expect(got.length).toBe(Math.ceil((stop! - start!) / step!));
      // start + f32(i) * step: two roundings.
      expectIeee(
        got,
        want,
        (_i, w) => 2 * ulp(w) + ulp(F32_MAX),
        `arange(${start}, ${stop}, ${step})`,
        (i) => `i = ${i}`,
      );
      expect(got.every(Number.isFinite)).toBe(true);
    }
  });

  it('randomUniform over ranges as wide as the float32 maximum stays finite and inside the range', async () => {
    await check(
      fc.asyncProperty(
        fc.constantFrom([-F32_MAX, F32_MAX], [-3e38, 3e38], [1e38, 3e38], [-3.4e38, -1e37], [-1, 1]),
        seedArb,
        async ([lo, hi], seed) => {
          const n = 500;
          const got = await randomUniform([n], seed, lo, hi).data('float32');
          const u = await randomUniform([n], seed, 0, 1).data('float32'); // the same draws in [0, 1)
          const scaleOf = Math.max(Math.abs(f(lo!)), Math.abs(f(hi!)));
          const want = Array.from(u, (ui) => f(lo!) + (f(hi!) - f(lo!)) * ui);
          expectIeee(
            got,
            want,
            () => 3 * ulp(scaleOf),
            `randomUniform(${lo}, ${hi})`,
            (i) => `u = ${u[i]}`,
          );
          expect(got.every((v) => v >= f(lo!) && v <= f(hi!))).toBe(true);
        },
      ),
      8,
    );
  });

  it('randomNormal with a huge std overflows exactly where mean + std z does', async () => {
    await check(
      fc.asyncProperty(fc.constantFrom([0, 3e38], [0, -2e38], [-1e38, 1e37], [3e38, 1e38]), seedArb, async ([m, s], seed) => {
        const n = 500;
        const got = await randomNormal([n], seed, m, s).data('float32');
        const z = await randomNormal([n], seed, 0, 1).data('float32');
        const want = Array.from(z, (zi) => f(m!) + f(s!) * zi);
        expectIeee(
          got,
          want,
          (_i, w) => ulp(w) + ulp(f(m!)),
          `randomNormal(mean ${m}, std ${s})`,
          (i) => `z = ${z[i]}`,
        );
      }),
      8,
    );
  });

  it('copies: constant, reshape, identity (vjp), stopGradient, transpose, slice, pad, concatenate keep every value', async () => {
    await check(
      fc.asyncProperty(valuesArb(nearMaxOrInfArb, 24), async (xs) => {
        const d = Float32Array.from(xs);
        const x = array(d, [1, d.length]);
        const same = (got: Float32Array, want: ArrayLike<number>, label: string) =>
          expectIeee(
            got,
            want,
            () => 0,
            label,
            () => '',
          );
        same(await reshape(x, [d.length]).data('float32'), d, 'reshape');
        same(await stopGradient(x).data('float32'), d, 'stopGradient');
        const [out] = vjp((p: NDArray) => p, x);
        same(await out.data('float32'), d, 'identity (vjp)');
        same(await transpose(x).data('float32'), d, 'transpose');
        same(await slice(x, [0, 0], [1, d.length]).data('float32'), d, 'slice');
        same(await pad(x, [1, 0], [2, d.length]).data('float32'), [...new Array(d.length).fill(0), ...d], 'pad');
        same(await concatenate([x, x], 1).data('float32'), [...d, ...d], 'concatenate');
      }),
      10,
    );
  });

  for (const reduce of ['tree', 'strided'] as const) {
    it(`sum and mean: one sign exact-or-Inf, mixed signs never finite garbage, ${reduce} kernel`, async () => {
      setKernelPolicy({ reduce });
      await check(
        fc.asyncProperty(
          valuesArb(nearMaxOrInfArb, 48),
          fc.integer({ min: 1, max: 4 }),
          fc.constantFrom('mixed', 'positive', 'negative'),
          async (xs, cols, signs) => {
            const v = xs.map((t) => (signs === 'positive' ? Math.abs(t) : signs === 'negative' ? -Math.abs(t) : t));
            const rows = Math.ceil(v.length / cols);
            while (v.length < rows * cols) v.push(0);
            const d = Float32Array.from(v);
            const x = array(d, [rows, cols]);
            const col = (j: number) => Array.from({ length: rows }, (_, i) => d[i * cols + j]!);
            const checkAll = (got: Float32Array, termsOf: (k: number) => number[], label: string, n = 0) => {
              for (let k = 0; k < got.length; k++) {
                const terms = termsOf(k);
                // mean(x) = sum(x) * f32(1 / n), as NumPy and JAX compute it in float32: the sum's outcome
                // (Inf where the sum overflows, even if the mean would not), then one more rounding.
                const why = n ? sumOutcome(got[k]! / f(1 / n), terms, 2 * U32) : sumOutcome(got[k]!, terms);
                if (why) throw new Error(`${label}[${k}] of [${terms}]: got ${got[k]}: ${why}`);
              }
            };
            checkAll(await sum(x).data('float32'), () => Array.from(d), 'sum');
            checkAll(await sum(x, 0).data('float32'), col, 'sum axis 0');
            checkAll(await sum(x, 1).data('float32'), (i) => Array.from(d.subarray(i * cols, (i + 1) * cols)), 'sum axis 1');
            checkAll(await mean(x, 0).data('float32'), col, 'mean axis 0', rows);
          },
        ),
        20,
      );
    });
  }

  for (const variant of variants) {
    it(`matmul (small sizes, matrix-vector too), ${variant} kernel: each output as IEEE sums its products`, async () => {
      setKernelPolicy({ matmul: variant });
      const dim = fc.constantFrom(1, 2, 3, 5);
      await check(
        fc.asyncProperty(dim, dim, dim, fc.infiniteStream(nearMaxOrInfArb), async (M, K, N, stream) => {
          const a = Float32Array.from({ length: M * K }, () => stream.next().value);
          const b = Float32Array.from({ length: K * N }, () => stream.next().value);
          const got = await matmul(array(a, [M, K]), array(b, [K, N])).data('float32');
          for (let i = 0; i < M; i++) {
            for (let j = 0; j < N; j++) {
              // Products of two float32 values are exact in float64 (0 * Inf is NaN, as in IEEE).
              const terms = Array.from({ length: K }, (_, k) => a[i * K + k]! * b[k * N + j]!);
              const why = sumOutcome(got[i * N + j]!, terms);
              if (why) throw new Error(`${variant} [${M}, ${K}] @ [${K}, ${N}] at (${i}, ${j}), products [${terms}]: got ${got[i * N + j]}: ${why}`);
            }
          }
        }),
        15,
      );
    });
  }

  it('adam: moments as float32 arithmetic gives them, the update from them without spurious overflow', async () => {
    const B1 = 0.9;
    const B2 = 0.999;
    const EPS = 1e-8;
    await check(
      fc.asyncProperty(
        valuesArb(nearMaxArb, 32).chain((g) =>
          fc.tuple(
            fc.constant(g),
            fc.array(nearMaxArb, { minLength: g.length, maxLength: g.length }),
            fc.array(nearMaxArb, { minLength: g.length, maxLength: g.length }),
          ),
        ),
        fc.constantFrom(1, 2, 10),
        async ([gs, ms, vs], t) => {
          const g = Float32Array.from(gs);
          const m = Float32Array.from(ms);
          const v = Float32Array.from(vs, Math.abs);
          const [u, state] = scaleByAdam().update(array(g), { count: t - 1, mu: array(m), nu: array(v) });
          const st = state as { mu: NDArray; nu: NDArray };
          const [m1, v1, u1] = [await st.mu.data('float32'), await st.nu.data('float32'), await (u as NDArray).data('float32')];
          // The float32 constants (1 - b1 computed in float64 and rounded once, as Optax's Python
          // floats are) and the operation order: b1 m + (1 - b1) g, b2 v + ((1 - b2) g) g.
          const [b1, b2, ob1, ob2] = [f(B1), f(B2), f(1 - B1), f(1 - B2)];
          const [bc1, bc2] = [f(1 - B1 ** t), f(1 - B2 ** t)];
          const at = (i: number) => `g = ${g[i]}, m = ${m[i]}, v = ${v[i]}, t = ${t}`;
          const mWant = Array.from(g, (gi, i) => b1 * m[i]! + ob1 * gi);
          expectIeee(m1, mWant, (i) => 2 * ulp(Math.max(Math.abs(b1 * m[i]!), Math.abs(ob1 * g[i]!))), 'adam m', at);
          const vWant = Array.from(g, (gi, i) => b2 * v[i]! + ob2 * gi * gi);
          expectIeee(v1, vWant, (_i, w) => 3 * ulp(w), 'adam v', at);
          // The update from the moments as stored: (m / bc1) / (sqrt(v / bc2) + eps).
          const uWant = Array.from(m1, (mi, i) => mi / bc1 / (Math.sqrt(v1[i]! / bc2) + f(EPS)));
          expectIeee(u1, uWant, (_i, w) => 8 * ulp(w), 'adam update', at);
        },
      ),
      12,
    );
  });
});

// ------------------------------------------------------------------ 4. shapes and data movement

function permArb(rank: number) {
  return fc.shuffledSubarray([...Array(rank).keys()], { minLength: rank, maxLength: rank });
}

describe('reshape, transpose, slice, pad, concatenate, broadcastTo', () => {
  it('reshape is a view: same values, no dispatch, no new buffer', async () => {
    await check(
      fc.asyncProperty(
        shapeArb(1, 4, 20000).filter((s) => sizeOf(s) > 1024),
        fc.integer({ min: 0, max: 3 }),
        seedArb,
        async (shape, how, seed) => {
          const { x: c, d } = input(shape, seed);
          const x = addScalar(c, 0); // computed on the GPU (constants keep a host copy; > 1024 elements stay on the GPU)
          await x.data('float32');
          const n = sizeOf(shape);
          const target = how === 0 ? [n] : how === 1 ? [...shape].reverse() : how === 2 ? [1, ...shape, 1] : [-1, shape[shape.length - 1]!];
          const s = await stats(async () => {
            const y = reshape(x, target);
            return [y.shape, await y.data('float32')] as const;
          });
          expect(s.value[0]).toEqual(how === 3 ? [n / shape[shape.length - 1]!, shape[shape.length - 1]] : target);
          expectClose(s.value[1], Float64Array.from(d), 0);
          expect(s.dispatches).toBe(0);
          expect(s.liveBuffers).toBe(0);
          expect(s.submissions).toBe(1);
        },
      ),
      10,
    );
    expect(() => reshape(zeros([2, 3]), [4, 2])).toThrow(ShapeError);
    expect(() => reshape(zeros([2, 3]), [-1, 4])).toThrow(ShapeError);
    expect(() => reshape(zeros([2, 3]), [-1, -1])).toThrow(GradGpuError);
    expect(reshape(zeros([2, 0]), [0, 7]).shape).toEqual([0, 7]);
  });

  it('transpose with random permutations up to rank 4 (and the default reversal)', async () => {
    await check(
      fc.asyncProperty(
        shapeArb(0, 4).chain((s) => fc.tuple(fc.constant(s), permArb(s.length), fc.boolean())),
        seedArb,
        async ([shape, perm, useDefault], seed) => {
          const { x, r } = input(shape, seed);
          const y = useDefault ? transpose(x) : transpose(x, perm);
          const want = R.transpose(r, useDefault ? undefined : perm);
          expect(y.shape).toEqual(want.shape);
          expectClose(await y.data('float32'), want, 0, `transpose [${shape}] by [${useDefault ? 'default' : perm}]`);
        },
      ),
      30,
    );
    expect(() => transpose(zeros([2, 3]), [0, 0])).toThrow(ValueError);
    expect(() => transpose(zeros([2, 3]), [0])).toThrow(ValueError);
  });

  it('slice of random windows (including empty ones and partial starts)', async () => {
    const windowArb = (shape: number[]) =>
      fc.tuple(
        fc.tuple(...shape.map((d) => fc.tuple(fc.integer({ min: 0, max: d }), fc.integer({ min: 0, max: d })))),
        fc.integer({ min: 0, max: shape.length }),
      );
    await check(
      fc.asyncProperty(
        shapeArb(1, 4).chain((s) => fc.tuple(fc.constant(s), windowArb(s))),
        seedArb,
        async ([shape, [win, given]], seed) => {
          const { x, r } = input(shape, seed);
          const starts = win.slice(0, given).map(([p, q]) => Math.min(p, q));
          const stops = win.slice(0, given).map(([p, q]) => Math.max(p, q));
          const y = slice(x, starts, stops);
          const want = R.slice(r, starts, stops);
          expect(y.shape).toEqual(want.shape);
          expectClose(await y.data('float32'), want, 0, `slice [${shape}] [${starts}]:[${stops}]`);
        },
      ),
      30,
    );
  });

  it('slice out of range throws IndexError', () => {
    const x = zeros([4, 5]);
    expect(() => slice(x, [0, 0], [5, 5])).toThrow(IndexError);
    expect(() => slice(x, [-1], [2])).toThrow(IndexError);
    expect(() => slice(x, [3], [2])).toThrow(IndexError);
    expect(() => slice(x, [0, 0, 0], [1, 1, 1])).toThrow(IndexError);
    expect(() => slice(x, [0.5], [2])).toThrow(IndexError);
  });

  it('pad into random larger shapes', async () => {
    const padArb = (shape: number[]) => fc.tuple(...shape.map(() => fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 }))));
    await check(
      fc.asyncProperty(
        shapeArb(0, 4, 3000).chain((s) => fc.tuple(fc.constant(s), padArb(s))),
        seedArb,
        async ([shape, pads], seed) => {
          const { x, r } = input(shape, seed);
          const starts = pads.map(([p]) => p);
          const outShape = shape.map((dim, i) => dim + pads[i]![0] + pads[i]![1]);
          const y = pad(x, starts, outShape);
          expect(y.shape).toEqual(outShape);
          expectClose(await y.data('float32'), R.pad(r, starts, outShape), 0, `pad [${shape}] at [${starts}] into [${outShape}]`);
        },
      ),
      25,
    );
  });

  it('pad with arguments that do not fit throws', () => {
    const x = zeros([2, 3]);
    expect(() => pad(x, [1, 1], [3, 3])).toThrow(IndexError);
    expect(() => pad(x, [-1, 0], [3, 3])).toThrow(IndexError);
    expect(() => pad(x, [1], [4, 5])).toThrow(GradGpuError); // starts of the wrong rank
    expect(() => pad(x, [0, 0], [4, 5, 6])).toThrow(GradGpuError); // shape of the wrong rank
  });

  it('concatenate random pieces along a random axis (including empty pieces)', async () => {
    const piecesArb = shapeArb(1, 4, 3000).chain((s) =>
      fc.tuple(
        fc.constant(s),
        fc.integer({ min: 0, max: s.length - 1 }),
        fc.array(fc.constantFrom(0, 1, 2, 3, 7, 65), { minLength: 1, maxLength: 4 }),
      ),
    );
    await check(
      fc.asyncProperty(piecesArb, seedArb, async ([shape, axis, lens], seed) => {
        const parts = lens.map((len, k) =>
          input(
            shape.map((dim, i) => (i === axis ? len : dim)),
            seed + k,
            -5,
            5,
          ),
        );
        const y = concatenate(
          parts.map((p) => p.x),
          axis,
        );
        const want = R.concatenate(
          parts.map((p) => p.r),
          axis,
        );
        expect(y.shape).toEqual(want.shape);
        expectClose(await y.data('float32'), want, 0, `concatenate axis ${axis} of ${parts.map((p) => `[${p.r.shape}]`).join(' ')}`);
      }),
      20,
    );
    expect(() => concatenate([zeros([2, 3]), zeros([3, 3])], 1)).toThrow(ShapeError);
    expect(() => concatenate([])).toThrow(ValueError);
    // Special values are copied, not added to zeros.
    const s = await concatenate([array([NaN, -Infinity]), array([Infinity])]).data('float32');
    expectClose(s, new Float64Array([NaN, -Infinity, Infinity]), 0);
  });

  it('concatenate on the GPU: many pieces, dtypes, empty pieces, one dispatch per run of pieces a kernel can bind', async () => {
    await check(
      fc.asyncProperty(
        shapeArb(1, 3, 600),
        fc.integer({ min: 0, max: 2 }),
        fc.array(fc.constantFrom(0, 1, 2, 5), { minLength: 2, maxLength: 40 }),
        fc.constantFrom('float32', 'int32', 'bool'),
        seedArb,
        async (shape, axisPick, lens, dtype, seed) => {
          const axis = axisPick % shape.length;
          const parts = lens.map((len, k) =>
            input(
              shape.map((dim, i) => (i === axis ? len : dim)),
              seed + k,
              -5,
              5,
            ),
          );
          // Computed on the GPU first (an upload alone would be a constant).
          const xs = parts.map((p) => astype(addScalar(p.x, 0.5), dtype as DType));
          await evaluate(...xs);
          const s = await stats(async () => {
            const y = concatenate(xs, axis);
            return [y, await y.data()] as const;
          });
          const [y, got] = s.value;
          const want = R.concatenate(
            parts.map((p) =>
              R.ref(
                p.r.shape,
                p.d.map((v) =>
                  dtype === 'float32'
                    ? Math.fround(v + 0.5)
                    : dtype === 'int32'
                      ? Math.trunc(Math.fround(v + 0.5))
                      : Math.fround(v + 0.5) !== 0
                        ? 1
                        : 0,
                ),
              ),
            ),
            axis,
          );
          expect(y.shape).toEqual(want.shape);
          expect(y.dtype).toBe(dtype);
          expectClose(Float32Array.from(got), want, 0, `concatenate axis ${axis} of ${parts.map((p) => `[${p.r.shape}]`).join(' ')} as ${dtype}`);
          const nonEmpty = parts.filter((p) => p.d.length > 0).length;
          const perCall = Math.min(15, (await deviceInfo()).limits.maxStorageBuffersPerShaderStage - 1);
          expect(s.dispatches).toBe(y.size === 0 ? 0 : Math.ceil(nonEmpty / perCall));
        },
      ),
      12,
    );
  });

  it('broadcastTo random targets', async () => {
    await check(
      fc.asyncProperty(
        shapeArb().chain((out) => fc.tuple(fc.constant(out), operandOf(out))),
        seedArb,
        async ([out, from], seed) => {
          const { x, r } = input(from, seed);
          const y = broadcastTo(x, out);
          expect(y.shape).toEqual(out);
          expectClose(await y.data('float32'), R.broadcastTo(r, out), 0, `broadcastTo [${from}] -> [${out}]`);
        },
      ),
      25,
    );
    expect(() => broadcastTo(zeros([3]), [4])).toThrow(ShapeError);
    expect(() => broadcastTo(zeros([2, 3]), [3])).toThrow(ShapeError);
    expect(await broadcastTo(2, [2, 2]).toNested()).toEqual([
      [2, 2],
      [2, 2],
    ]);
  });

  it('array(), toNested(), item() and creation ops', async () => {
    expect(
      await array([
        [1, 2, 3],
        [4, 5, 6],
      ]).toNested(),
    ).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(await array(new Float32Array([1, 2, 3, 4]), [2, 2]).toNested()).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(await array(7).item()).toBe(7);
    expect(await array([[7]]).item()).toBe(7);
    await expect(array([1, 2]).item()).rejects.toThrow(ValueError);
    expect(await full([2, 3], -1.5).toNested()).toEqual([
      [-1.5, -1.5, -1.5],
      [-1.5, -1.5, -1.5],
    ]);
    expect(await zeros([]).item()).toBe(0);
    expect(await arange(5).toNested()).toEqual([0, 1, 2, 3, 4]);
    expect(await arange(1, 2, 0.25).toNested()).toEqual([1, 1.25, 1.5, 1.75]);
    expect(await arange(5, 0, -2).toNested()).toEqual([5, 3, 1]);
    expect(arange(3, 3).shape).toEqual([0]);
    expect(() => array([[1, 2], [3]])).toThrow(ValueError);
  });
});

// ------------------------------------------------------------------ 5. beyond one dispatch

describe('arrays beyond one dispatch (> 65535 * 256 elements)', () => {
  it('elementwise on 17,000,000 floats, and sums over it', async () => {
    const N = 17_000_000;
    const BOUNDARY = 65535 * 256; // 16,776,960: the first element of the second grid row
    const x = arange(N); // value f32(i): exact below 2^24, even i exact above
    const y = addScalar(scale(x, 2), 1); // 2i + 1, one fused kernel
    const picks = [
      [0, 4],
      [BOUNDARY - 3, BOUNDARY + 3],
      [2 ** 24 - 2, 2 ** 24 + 4],
      [N - 6, N],
    ];
    const parts = await Promise.all(picks.map(([s, e]) => slice(y, [s!], [e!]).data('float32')));
    picks.forEach(([s, e], k) => {
      for (let i = s!; i < e!; i++) {
        const xi = i < 2 ** 24 || i % 2 === 0 ? i : NaN; // odd i above 2^24 may round either way (WGSL u32 -> f32)
        const got = parts[k]![i - s!]!;
        if (Number.isNaN(xi)) expect(Math.abs(got - (2 * i + 1))).toBeLessThanOrEqual(4);
        else expect(got, `element ${i}`).toBe(f(f(2 * xi) + 1));
      }
    });
    // The full sum of ones: 17e6 is exactly representable and every partial sum is an exact integer.
    expect(await sum(full([N], 1)).item()).toBe(N);
    // Rows path with more than 65535 workgroups (70000 rows of 243), and a sum over a long strided axis.
    const big = reshape(full([70_000 * 243], 0.5), [70_000, 243]);
    const rows = sum(big, 1);
    const rowParts = await Promise.all([slice(rows, [0], [3]).data('float32'), slice(rows, [69_997], [70_000]).data('float32')]);
    for (const p of rowParts) expect(Array.from(p)).toEqual([121.5, 121.5, 121.5]);
    const cols = sum(big, 0);
    const colParts = await slice(cols, [240], [243]).data('float32');
    expect(Array.from(colParts)).toEqual([35_000, 35_000, 35_000]);
  });
});

// ------------------------------------------------------------------ 6. laziness and fusion

describe('laziness: one submit per evaluation, fused elementwise chains', () => {
  it('a chain of 20 elementwise ops on one array is one submit and one dispatch', async () => {
    const { x, d } = input([1000, 3], 31, -1, 1);
    await x.data('float32');
    const s = await stats(async () => {
      let y = x;
      // 20 ops; the intermediates' handles are unreachable but not yet garbage-collected.
      for (let i = 0; i < 10; i++) y = addScalar(scale(y, 0.5), 0.25);
      return y.data('float32');
    });
    expect(s.submissions).toBe(1);
    expect(s.dispatches).toBe(1);
    const want = Float64Array.from(d, (v) => {
      let y = v;
      for (let i = 0; i < 10; i++) y = f(f(y * 0.5) + 0.25);
      return y;
    });
    expectClose(s.value, want, 0);
  });

  it('an outer product (K = 1) is a broadcast multiply that fuses with what reads it', async () => {
    const a = input([65, 1], 41);
    const b = input([1, 7], 42);
    await Promise.all([a.x.data('float32'), b.x.data('float32')]);
    const s = await stats(async () => addScalar(matmulT(reshape(a.x, [1, 65]), reshape(b.x, [7, 1]), true, true), 1).data('float32'));
    expect(s.dispatches).toBe(1);
    const want = new Float64Array(65 * 7);
    for (let i = 0; i < 65; i++) for (let j = 0; j < 7; j++) want[i * 7 + j] = f(f(a.d[i]! * b.d[j]!) + 1);
    expectClose(s.value, want, 2 * EPS32); // a GPU may fuse the multiply-add (one rounding, not two)
  });

  it('a chain of 20 mixed unary/binary ops with a second input is one dispatch', async () => {
    const a = input([65, 7], 1, 0.5, 1.5);
    const b = input([7], 2, 0.5, 1.5);
    await Promise.all([a.x.data('float32'), b.x.data('float32')]);
    const s = await stats(async () => {
      let y = a.x;
      for (let i = 0; i < 5; i++) y = sqrt(add(mul(abs(y), b.x), 0.125));
      return y.data('float32');
    });
    expect(s.submissions).toBe(1);
    expect(s.dispatches).toBe(1);
    const want = R.binary(a.r, b.r, (p, q) => {
      let y = p;
      for (let i = 0; i < 5; i++) y = Math.sqrt(Math.abs(y) * q + 0.125);
      return y;
    });
    // Per round: mul, add 0.5 ulp each, sqrt 5 ulp (inherited), halved by the next sqrt: < 40 ulp overall.
    expectClose(s.value, want, 40 * EPS32);
  });

  it('a mixed chain (matmul, add, sum) is one submit', async () => {
    const a = input([16, 33], 3);
    const b = input([33, 8], 4);
    const c = input([8], 5);
    await Promise.all([a.x.data('float32'), b.x.data('float32'), c.x.data('float32')]);
    const s = await stats(() => sum(add(matmul(a.x, b.x), c.x)).item());
    expect(s.submissions).toBe(1);
    const mm = R.matmul(a.r, b.r);
    const want = R.sum(R.binary(mm.value, c.r, (p, q) => p + q));
    const absBound = mm.abs.reduce((p, q) => p + q, 0) * (33 + 2) * U32 + want.abs[0]! * (128 + 1) * U32;
    expect(Math.abs(s.value - want.value.data[0]!)).toBeLessThanOrEqual(absBound);
  });

  it('nothing runs until a value is read', async () => {
    const s = await stats(async () => {
      const y = exp(ones([100]));
      void mul(y, y);
      return 0;
    });
    expect(s.submissions).toBe(0);
    expect(s.dispatches).toBe(0);
  });

  it('an intermediate that was fused away can still be read afterwards', async () => {
    const { x, d } = input([2000], 41, -1, 1);
    const y = exp(x);
    const z = addScalar(y, 1);
    expectClose(
      await z.data('float32'),
      Float64Array.from(d, (v) => Math.exp(v) + 1),
      { at: (i, w) => (3 + 2) * ulp(Math.exp(d[i]!)) + ulp(w) },
    );
    expectClose(await y.data('float32'), Float64Array.from(d, Math.exp), { at: (i, w) => (3 + 2 * Math.abs(d[i]!)) * ulp(w) });
  });

  // Regressions: an elementwise node nobody holds used to be fused into one reader's kernel although
  // another pending node still read it, so evaluating that other reader later threw DisposedArrayError.
  // Fusion now requires the node to have exactly one pending reader anywhere.
  // sin/cos of e^x for x in 1..3 (|e^x| <= 20.1): outside WGSL's documented [-pi, pi], so compare loosely.
  const want1 = [1, 2, 3].map(Math.exp);
  it('a node read by two pending arrays survives evaluating one of them (dispose)', async () => {
    const x = array([1, 2, 3]);
    const y = exp(x);
    const z1 = sin(y);
    const z2 = cos(y);
    y.dispose();
    expectClose(await z1.data('float32'), Float64Array.from(want1, Math.sin), { abs: 1e-3 });
    expectClose(await z2.data('float32'), Float64Array.from(want1, Math.cos), { abs: 1e-3 });
  });

  it('a node read by two pending arrays survives evaluating one of them (garbage-collected)', async () => {
    const twoReaders = (x: NDArray) => {
      const y = exp(x); // its handle dies with this frame
      return [sin(y), cos(y)] as const;
    };
    const [z1, z2] = twoReaders(array([1, 2, 3]));
    await settle();
    expectClose(await z1.data('float32'), Float64Array.from(want1, Math.sin), { abs: 1e-3 });
    expectClose(await z2.data('float32'), Float64Array.from(want1, Math.cos), { abs: 1e-3 });
  });

  it('a value read after a later evaluation that used its intermediates (logged losses)', async () => {
    // The shape of "push each step's loss, read them all after training".
    const step = (x: NDArray) => {
      const d = sub(mul(x, 3), 1); // a residual: its handle dies with this frame
      return [sum(square(d)), add(x, mul(d, 0.1))] as const; // [loss, next params]
    };
    const x = array([0.5, -1, 2]);
    const [loss, next] = step(x);
    await settle();
    await next.data('float32'); // d is fused into next's kernel
    expect(await loss.item()).toBeCloseTo(0.25 + 16 + 25, 4);
  });
});

// ------------------------------------------------------------------ 7. errors

describe('errors leave earlier arrays intact', () => {
  it('each kind of error, then earlier arrays still read back', async () => {
    const keep = array([
      [1, 2],
      [3, 4],
    ]);
    const keep2 = add(keep, 10); // pending
    const bigKeep = addScalar(zeros([3000]), 1);
    await bigKeep.data('float32');
    const intact = async () => {
      expect(await keep.toNested()).toEqual([
        [1, 2],
        [3, 4],
      ]);
      expect(await keep2.toNested()).toEqual([
        [11, 12],
        [13, 14],
      ]);
      expect(await sum(bigKeep).item()).toBe(3000);
    };
    const cases: Array<[() => unknown, new (...a: never[]) => Error, RegExp?]> = [
      [() => matmul(zeros([2, 3]), zeros([4, 5])), ShapeError, /\[2, 3\][\s\S]*\[4, 5\]/],
      [() => add(zeros([2, 3]), zeros([3, 2])), ShapeError],
      [() => slice(keep, [0, 1], [2, 3]), IndexError],
      [() => zeros([-1]), ValueError],
      [() => zeros([2, NaN]), ValueError],
      [() => ones([1.5]), ValueError],
      [() => array([1, 2, 3], [2, 2]), ValueError],
      [() => array(new Float32Array(5), [2, 3]), ValueError],
      [() => randomUniform([2], 0.5), ValueError],
    ];
    for (const [fn, cls, msg] of cases) {
      let err: unknown;
      try {
        fn();
      } catch (e) {
        err = e;
      }
      expect(err, String(fn)).toBeInstanceOf(cls);
      expect(err).toBeInstanceOf(GradGpuError);
      if (msg) expect((err as Error).message).toMatch(msg);
      await intact();
    }
  });

  it('using a disposed array throws DisposedArrayError; other arrays are unaffected', async () => {
    const a = array([1, 2, 3]);
    const b = addScalar(a, 1);
    const big = randomUniform([5000], 3);
    const bigSum = await sum(big).item();
    const c = exp(big); // pending reader of big
    big.dispose();
    await expect(big.data('float32')).rejects.toThrow(DisposedArrayError);
    expect(() => add(big, 1)).toThrow(DisposedArrayError);
    expect(big.isDisposed).toBe(true);
    b.dispose();
    b.dispose(); // idempotent
    await expect(b.data('float32')).rejects.toThrow(DisposedArrayError);
    expect(() => neg(b)).toThrow(DisposedArrayError);
    expect(await a.toNested()).toEqual([1, 2, 3]);
    expect((await c.data('float32')).length).toBe(5000); // still computable from the disposed input
    expect(Math.abs((await sum(log(c)).item()) - bigSum)).toBeLessThan(1e-2);
  });
});

// ------------------------------------------------------------------ 8. memory

describe('memory', () => {
  it('creating, reading and disposing 200 arrays keeps liveBuffers flat', async () => {
    const warm = async (i: number) => {
      const x = array(randomF32(3000, i), [3000]);
      const y = exp(x);
      const z = sum(y);
      await y.data('float32');
      await z.item();
      x.dispose();
      y.dispose();
      z.dispose();
    };
    await warm(0);
    await settle();
    const before = memoryStats();
    let peak = 0;
    for (let i = 1; i <= 200; i++) {
      await warm(i);
      peak = Math.max(peak, memoryStats().liveBuffers);
    }
    await settle();
    const after = memoryStats();
    expect(after.liveBuffers).toBe(before.liveBuffers);
    expect(after.liveBytes).toBe(before.liveBytes);
    expect(peak).toBeLessThanOrEqual(before.liveBuffers + 3); // flat all the way, not only after a collection
    expect(after.pooledBuffers).toBeLessThanOrEqual(before.pooledBuffers + 4); // buffers are recycled, not re-created
  });

  it('disposing an input and then its pending reader frees both buffers (regression)', async () => {
    const x = randomUniform([5000], 1);
    await x.data('float32');
    const s = await stats(async () => {
      const y = exp(x);
      x.dispose();
      y.dispose();
    });
    expect(s.liveBuffers).toBe(-1);
  });

  it('a fused-away intermediate that is disposed later releases its inputs', async () => {
    const x = randomUniform([5000], 2);
    await x.data('float32');
    const s = await stats(async () => {
      const y = exp(x);
      const z = addScalar(y, 1);
      await z.data('float32');
      x.dispose();
      y.dispose();
      return z; // z's buffer is the only one left of the three
    });
    expect(s.liveBuffers).toBe(0);
    expect((await s.value.data('float32')).length).toBe(5000);
  });

  it('a view re-uploaded after a host round trip reads from offset 0 (regression)', async () => {
    const base = arange(2048);
    await base.data('float32');
    // The upper half: a slice view of base's buffer, 1024 floats in.
    setHostEvaluation(0);
    const view = slice(base, [1024], [2048]);
    await evaluate(view);
    setHostEvaluation(1 << 15);
    const first = await view.data('float32'); // small: moved to the host
    expect(first[0]).toBe(1024);
    const again = await addScalar(view, 0).data('float32'); // re-uploaded to a fresh buffer
    expect(again[0]).toBe(1024);
    expect(again[1023]).toBe(2047);
  });
});

// ------------------------------------------------------------------ 9. random

describe('random', () => {
  it('randomUniform: reproducible, seed-dependent, in range, right moments', async () => {
    const n = 100_000;
    const a = await randomUniform([n], 7, -2, 4).data('float32');
    const b = await randomUniform([n], 7, -2, 4).data('float32');
    const c = await randomUniform([n], 8, -2, 4).data('float32');
    expect(a).toEqual(b);
    let same = 0;
    for (let i = 0; i < n; i++) if (a[i] === c[i]) same++;
    expect(same).toBeLessThan(10);
    let m = 0;
    let m2 = 0;
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of a) {
      m += v;
      m2 += v * v;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    m /= n;
    const sd = Math.sqrt(m2 / n - m * m);
    // mean 1 +- 5 standard errors; sd 6/sqrt(12)
    expect(Math.abs(m - 1)).toBeLessThan((5 * Math.sqrt(3)) / Math.sqrt(n));
    expect(Math.abs(sd - Math.sqrt(3))).toBeLessThan(0.02);
    expect(lo).toBeGreaterThanOrEqual(-2);
    expect(hi).toBeLessThan(4);
    expect(lo).toBeLessThan(-1.99);
    expect(hi).toBeGreaterThan(3.99);
    // 10 equal bins: each within 5 sigma of n/10.
    const bins = new Array(10).fill(0);
    for (const v of a) bins[Math.min(9, Math.floor(((v + 2) / 6) * 10))]++;
    for (const k of bins) expect(Math.abs(k - n / 10)).toBeLessThan(5 * Math.sqrt(n * 0.09));
    // Neighbouring elements are uncorrelated.
    let cov = 0;
    for (let i = 0; i + 1 < n; i++) cov += (a[i]! - m) * (a[i + 1]! - m);
    expect(Math.abs(cov / (n - 1) / (sd * sd))).toBeLessThan(0.02);
  });

  it('randomUniform in [0, 1) never returns 1 (regression: seed 264849, index 61)', async () => {
    const d = await randomUniform([62], 264849).data('float32');
    expect(d[61]).toBeLessThan(1);
    const e = await randomUniform([71], 328364).data('float32');
    expect(e[70]).toBeLessThan(1);
  });

  it('randomNormal: reproducible, seed-dependent, right mean/std and tails', async () => {
    const n = 100_000;
    const a = await randomNormal([n], 11, 3, 2).data('float32');
    const b = await randomNormal([n], 11, 3, 2).data('float32');
    const c = await randomNormal([n], 12, 3, 2).data('float32');
    expect(a).toEqual(b);
    let same = 0;
    for (let i = 0; i < n; i++) if (a[i] === c[i]) same++;
    expect(same).toBeLessThan(10);
    let m = 0;
    let m2 = 0;
    let within1 = 0;
    let within2 = 0;
    for (const v of a) {
      expect(Number.isFinite(v)).toBe(true);
      m += v;
      m2 += v * v;
      if (Math.abs(v - 3) < 2) within1++;
      if (Math.abs(v - 3) < 4) within2++;
    }
    m /= n;
    const sd = Math.sqrt(m2 / n - m * m);
    expect(Math.abs(m - 3)).toBeLessThan((5 * 2) / Math.sqrt(n));
    expect(Math.abs(sd - 2)).toBeLessThan(5 * (2 / Math.sqrt(2 * n)));
    expect(Math.abs(within1 / n - 0.6827)).toBeLessThan(0.008);
    expect(Math.abs(within2 / n - 0.9545)).toBeLessThan(0.005);
  });
});
