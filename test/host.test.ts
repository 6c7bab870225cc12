// Small graphs evaluated on the host (setHostEvaluation, src/array/host.ts).
// The other Node test files turn this off so they exercise the kernels; here
// it is on, and every host rule is checked against a float64 reference and
// against the GPU kernels on the same inputs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  NDArray,
  array,
  add,
  sub,
  mul,
  div,
  maximum,
  greaterEqual,
  astype,
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
  scale,
  addScalar,
  pow,
  sum,
  reshape,
  transpose,
  slice,
  pad,
  broadcastTo,
  matmul,
  full,
  arange,
  randomNormal,
  grad,
  valueAndGrad,
  checkGrads,
  gradOverFlatParams,
  memoryStats,
  setHostEvaluation,
  deviceInfo,
} from '../src/index';
import { matmulT } from '../src/array/linalg';
import { primitives } from '../src/array/primitives';
import * as R from './helpers/reference';
import { erf64, erfInv64 } from './helpers/fd64';
import { expectClose, randomF32, sizeOf, EPS32 } from './helpers/reference';

const FC_SEED = Number(process.env.FC_SEED ?? 7);
fc.configureGlobal({ seed: FC_SEED, numRuns: 25 });
const f = Math.fround;
const LIMIT = 1 << 15;

beforeAll(async () => {
  await deviceInfo();
  setHostEvaluation(LIMIT);
  console.log(`host.test: fast-check seed ${FC_SEED}`);
});
afterAll(() => setHostEvaluation(0));

/** Values of `make()` computed on the host (and checked that it was), then on the GPU. */
async function hostAndGpu(make: () => NDArray): Promise<[Float32Array, Float32Array]> {
  const s0 = memoryStats();
  const onHost = await make().data('float32');
  const s1 = memoryStats();
  expect(s1.hostEvaluations - s0.hostEvaluations).toBe(1);
  expect(s1.submissions).toBe(s0.submissions);
  setHostEvaluation(0);
  try {
    return [onHost, await make().data('float32')];
  } finally {
    setHostEvaluation(LIMIT);
  }
}

const shapeArb = fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 0, maxLength: 3 });

/** ulps of float32 at v, as an absolute allowance. */
const ulps = (k: number) => ({ at: (_: number, e: number) => k * Math.max(Math.abs(e), 2 ** -126) * EPS32 });

const UNARY: Array<[string, (x: NDArray) => NDArray, (v: number) => number, number, number, number]> = [
  // name, op, float64 reference, input low, high, allowed ulps of the GPU against the host (0 = bit-exact)
  ['neg', neg, (v) => -v, -4, 4, 0],
  ['square', square, (v) => v * v, -4, 4, 0],
  ['abs', abs, Math.abs, -4, 4, 0],
  ['sign', sign, Math.sign, -4, 4, 0],
  ['relu', relu, (v) => Math.max(v, 0), -4, 4, 0],
  ['scale', (x) => scale(x, 0.3), (v) => v * f(0.3), -4, 4, 0],
  ['addScalar', (x) => addScalar(x, 1.7), (v) => v + f(1.7), -4, 4, 0],
  ['sqrt', sqrt, Math.sqrt, 0, 9, 3],
  ['exp', exp, Math.exp, -4, 4, 4],
  ['log', log, Math.log, 0.1, 9, 4],
  ['sin', sin, Math.sin, -3, 3, 2048],
  ['cos', cos, Math.cos, -3, 3, 2048],
  ['tanh', tanh, Math.tanh, -4, 4, 4096],
  ['pow 3', (x) => pow(x, 3), (v) => v ** 3, -3, 3, 16], // the GPU's pow goes through exp2(e * log2 x)
  ['pow 0.5', (x) => pow(x, 0.5), (v) => (v < 0 ? NaN : Math.sqrt(v)), -3, 3, 4],
  ['log1p', log1p, Math.log1p, -0.9, 9, 64], // the GPU's log near 1 is 2^-21 absolute
  ['erf', erf, erf64, -4, 4, 64],
  ['erfInv', erfInv, erfInv64, -0.99, 0.99, 256], // the GPU's log and sqrt; the host's float64

  ['isFinite', (x) => astype(isFinite(log(x)), 'float32'), (v) => (Number.isFinite(Math.log(v)) ? 1 : 0), -3, 3, 0],
  ['astype int32', (x) => astype(astype(scale(x, 1000), 'int32'), 'float32'), (v) => Math.trunc(f(v * f(1000))), -4, 4, 0],
  ['logicalNot', (x) => astype(logicalNot(greater(x, 0)), 'float32'), (v) => (v > 0 ? 0 : 1), -4, 4, 0],
];

const BINARY: Array<[string, (a: NDArray, b: NDArray) => NDArray, (x: number, y: number) => number, number]> = [
  ['add', add, (x, y) => x + y, 0],
  ['sub', sub, (x, y) => x - y, 0],
  ['mul', mul, (x, y) => x * y, 0],
  ['div', div, (x, y) => x / y, 3],
  ['maximum', maximum, Math.max, 0],
  ['greaterEqual', (a: NDArray, b: NDArray) => astype(greaterEqual(a, b), 'float32'), (x, y) => (x >= y ? 1 : 0), 0],
  ['equal', (a: NDArray, b: NDArray) => astype(equal(a, a), 'float32'), () => 1, 0],
  ['notEqual', (a: NDArray, b: NDArray) => astype(notEqual(a, b), 'float32'), (x, y) => (x !== y ? 1 : 0), 0],
  ['less', (a: NDArray, b: NDArray) => astype(less(a, b), 'float32'), (x, y) => (x < y ? 1 : 0), 0],
  ['lessEqual', (a: NDArray, b: NDArray) => astype(lessEqual(a, b), 'float32'), (x, y) => (x <= y ? 1 : 0), 0],
  ['greater', (a: NDArray, b: NDArray) => astype(greater(a, b), 'float32'), (x, y) => (x > y ? 1 : 0), 0],
  ['logicalAnd', (a: NDArray, b: NDArray) => astype(logicalAnd(greater(a, 0), greater(b, 1)), 'float32'), (x, y) => (x > 0 && y > 1 ? 1 : 0), 0],
  ['logicalOr', (a: NDArray, b: NDArray) => astype(logicalOr(greater(a, 0), greater(b, 1)), 'float32'), (x, y) => (x > 0 || y > 1 ? 1 : 0), 0],
  ['where', (a: NDArray, b: NDArray) => where(greater(a, 0), a, b), (x, y) => (x > 0 ? x : y), 0],
];

function expectGpuNearHost(gpu: Float32Array, host: Float32Array, k: number, label: string): void {
  if (k === 0) expect(Array.from(gpu), label).toEqual(Array.from(host));
  else expectClose(gpu, Float64Array.from(host), { at: (_, e) => k * Math.max(Math.abs(e), 1) * EPS32 }, label);
}

describe('host rules match a float64 reference and the GPU kernels', () => {
  it('every primitive has a host rule, except the ones whose kernel defines the values', () => {
    const gpuOnly = ['random_uniform', 'random_normal', 'constant'];
    const missing = Object.entries(primitives)
      .filter(([p, rule]) => !rule.host && !gpuOnly.includes(p))
      .map(([p]) => p);
    expect(missing).toEqual([]);
  });

  it.each(UNARY)('%s', async (name, op, ref, lo, hi, k) => {
    await fc.assert(
      fc.asyncProperty(shapeArb, fc.integer({ min: 1, max: 1e6 }), async (shape, seed) => {
        const d = randomF32(sizeOf(shape), seed, lo, hi);
        const [host, gpu] = await hostAndGpu(() => op(array(d, shape)));
        expectClose(
          host,
          Float64Array.from(d, (v) => f(ref(v))),
          ulps(1),
          `${name} host`,
        );
        expectGpuNearHost(gpu, host, k, `${name} gpu vs host`);
      }),
    );
  });

  it.each(BINARY)('%s, with broadcasting', async (name, op, ref, k) => {
    await fc.assert(
      fc.asyncProperty(shapeArb, fc.array(fc.boolean(), { maxLength: 3 }), fc.integer({ min: 1, max: 1e6 }), async (shape, ones, seed) => {
        // b: a suffix of a's shape with some axes set to 1
        const bShape = shape.slice(shape.length - Math.min(shape.length, ones.length)).map((d, i) => (ones[i] ? 1 : d));
        const da = randomF32(sizeOf(shape), seed, -3, 3);
        const db = randomF32(sizeOf(bShape), seed + 1, 0.5, 3);
        const [host, gpu] = await hostAndGpu(() => op(array(da, shape), array(db, bShape)));
        const want = R.binary(R.ref(shape, da), R.ref(bShape, db), (x, y) => f(ref(x, y)));
        expectClose(host, want, ulps(0), `${name} host`);
        expectGpuNearHost(gpu, host, k, `${name} gpu vs host`);
      }),
    );
  });

  it('sum over random axes, matmul with transposes and batches, against float64', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 9 }),
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 1, max: 1e6 }),
        async (M, K, N, ta, tb, seed) => {
          const da = randomF32(M * K, seed),
            db = randomF32(K * N, seed + 1);
          const [host, gpu] = await hostAndGpu(() => matmulT(array(da, ta ? [K, M] : [M, K]), array(db, tb ? [N, K] : [K, N]), ta, tb));
          const A = R.ref(ta ? [K, M] : [M, K], da),
            B = R.ref(tb ? [N, K] : [K, N], db);
          const want = R.matmul(A, B, ta, tb);
          expectClose(host, want.value, { bound: Float64Array.from(want.abs, (v) => v * EPS32) });
          expectClose(gpu, Float64Array.from(host), { bound: Float64Array.from(want.abs, (v) => 2 * K * v * EPS32) });
          const x = randomF32(M * K * N, seed + 2);
          const axes = [[0], [1], [2], [0, 1], [1, 2], [0, 2], [0, 1, 2]][seed % 7]!;
          const [hs, gs] = await hostAndGpu(() => sum(array(x, [M, K, N]), axes));
          const ws = R.sum(R.ref([M, K, N], x), axes);
          expectClose(hs, ws.value, { bound: Float64Array.from(ws.abs, (v) => v * EPS32) });
          expectClose(gs, Float64Array.from(hs), { bound: Float64Array.from(ws.abs, (v) => ws.count * v * EPS32) });
        },
      ),
      { numRuns: 15 },
    );
    const [hb] = await hostAndGpu(() => matmul(array(randomF32(2 * 3 * 4, 5), [2, 3, 4]), array(randomF32(4 * 5, 6), [4, 5])));
    expect(hb.length).toBe(2 * 3 * 5);
  });

  it('data movement and creation: transpose, slice, pad, reshape, broadcastTo, full, arange (bit-exact)', async () => {
    const d = randomF32(2 * 3 * 4, 9);
    const cases: Array<[string, () => NDArray]> = [
      ['transpose', () => transpose(array(d, [2, 3, 4]), [2, 0, 1])],
      ['slice', () => slice(array(d, [2, 3, 4]), [1, 0, 1], [2, 3, 3])],
      ['pad', () => pad(array(d, [2, 3, 4]), [1, 0, 2], [4, 3, 7])],
      ['reshape + add', () => addScalar(reshape(array(d, [2, 3, 4]), [6, 4]), 1)],
      ['broadcastTo', () => broadcastTo(array(d.subarray(0, 4), [4]), [3, 4])],
      ['full', () => full([3, 2], 0.1)],
      ['arange', () => arange(0.5, 40, 0.3)],
    ];
    for (const [name, make] of cases) {
      const [host, gpu] = await hostAndGpu(make);
      expect(Array.from(host), name).toEqual(Array.from(gpu));
    }
  });
});

describe('what runs on the host', () => {
  it('the reference problem: both worked examples, one host evaluation each, no GPU submission', async () => {
    const s0 = memoryStats();
    expect(Array.from(await gradOverFlatParams(array([1, 0, 0]), array([[2, 3]])).data('float32'))).toEqual([8, 12, 4]);
    expect(
      Array.from(
        await gradOverFlatParams(
          array([0, 0, 1]),
          array([
            [1, 0],
            [0, 1],
          ]),
        ).data('float32'),
      ),
    ).toEqual([2, 2, 4]);
    const s1 = memoryStats();
    expect(s1.hostEvaluations - s0.hostEvaluations).toBe(2);
    expect(s1.submissions - s0.submissions).toBe(0);
  });

  it('gradients on the host pass checkGrads (orders 1 and 2) and match the GPU', async () => {
    const fn = (x: NDArray, w: NDArray) => sum(tanh(matmul(x, w)));
    const x = array(randomF32(5 * 3, 1), [5, 3]);
    const w = array(randomF32(3 * 2, 2), [3, 2]);
    await checkGrads(fn, [x, w], { order: 2 });
    const [host, gpu] = await hostAndGpu(() => grad(fn, { argnums: 1 })(x, w) as NDArray);
    expectClose(gpu, Float64Array.from(host), { abs: 1e-5 });
  });

  it('a graph reading a GPU-resident array, or over the work limit, runs on the GPU', async () => {
    const big = randomNormal([8], 1); // made by a kernel: no host copy
    const s0 = memoryStats();
    await add(big, 1).data('float32');
    const s1 = memoryStats();
    expect(s1.submissions - s0.submissions).toBe(1);
    expect(s1.hostEvaluations).toBe(s0.hostEvaluations);
    const x = array(randomF32(64 * 64, 3), [64, 64]); // > 1024 elements: uploaded, no host copy kept
    const small = array(randomF32(32 * 32, 4), [32, 32]); // 32^3 multiply-adds = the limit: host
    const s2 = memoryStats();
    await matmul(small, small).data('float32');
    const s3 = memoryStats();
    expect(s3.hostEvaluations - s2.hostEvaluations).toBe(1);
    await matmul(x, x).data('float32');
    expect(memoryStats().submissions - s3.submissions).toBe(1);
  });

  it('a training loop on the host keeps memory flat and frees its intermediates', async () => {
    const loss = (p: { w: NDArray; b: NDArray }, x: NDArray) => sum(square(add(matmul(x, p.w), p.b)));
    let p = { w: array([[0.5], [-0.25]]), b: array([0.1]) };
    const x = array([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    const before = memoryStats();
    let first = 0,
      last = 0;
    for (let i = 0; i < 300; i++) {
      const [l, g] = valueAndGrad(loss)(p, x);
      p = { w: sub(p.w, scale(g.w, 0.002)), b: sub(p.b, scale(g.b, 0.002)) };
      const v = await l.item();
      if (i === 0) first = v;
      last = v;
    }
    const after = memoryStats();
    expect(last).toBeLessThan(first / 10);
    expect(after.liveBuffers).toBe(before.liveBuffers);
    expect(after.submissions).toBe(before.submissions);
    expect(after.hostEvaluations - before.hostEvaluations).toBe(300);
  });
});
