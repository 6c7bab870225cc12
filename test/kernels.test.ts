// Every kernel variant is tested on this machine, whichever one the adapter
// would pick by itself: the policy is forced, then reset.
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  logDispatches,
  matmul,
  randomNormal,
  setHostEvaluation,
  setKernelPolicy,
  sum,
  transpose,
  type KernelPolicy,
  type NDArray,
} from '../src/index';
import { matmulT } from '../src/array/linalg';

afterAll(() => setKernelPolicy({ matmul: 'auto', reduce: 'auto', matvec: 'auto' }));

function refMatmul(a: Float32Array, b: Float32Array, M: number, K: number, N: number): Float64Array {
  const c = new Float64Array(M * N);
  for (let i = 0; i < M; i++) for (let k = 0; k < K; k++) for (let j = 0; j < N; j++) c[i * N + j] += a[i * K + k]! * b[k * N + j]!;
  return c;
}
function expectNear(got: Float32Array, want: Float64Array, bound: (i: number) => number) {
  expect(got.length).toBe(want.length);
  let worst = -1,
    at = -1;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i]! - want[i]!) - bound(i);
    if (e > worst) {
      worst = e;
      at = i;
    }
  }
  if (worst > 0) throw new Error(`element ${at}: got ${got[at]}, want ${want[at]} (bound ${bound(at)})`);
}
const EPS = 2 ** -23;

const policies: Array<Partial<KernelPolicy>> = [
  { matmul: 'auto', reduce: 'tree', matvec: 'thread' },
  { matmul: 'auto', reduce: 'strided', matvec: 'group' },
  { matmul: 'register', reduce: 'strided' },
  { matmul: 'shared', reduce: 'tree' },
  { matmul: 'auto', reduce: 'auto', matvec: 'auto' }, // this adapter's own picks (rows_block4 and cols16 on CPU adapters)
];

describe.each(policies)('kernel policy %o', (p) => {
  it('matrix-vector and vector-matrix products (odd and vec4 widths)', async () => {
    setKernelPolicy({ matmul: 'auto', reduce: 'auto', matvec: 'auto', ...p });
    for (const [R, C] of [
      [1, 1],
      [7, 3],
      [65, 8],
      [1030, 64],
      [3000, 13],
    ] as const) {
      const A = randomNormal([R, C], R * 7 + C);
      const v = randomNormal([C], 11);
      const u = randomNormal([R, 1], 12);
      const [a, vv, uu, av, atu] = await Promise.all([
        A.data('float32'),
        v.data('float32'),
        u.data('float32'),
        matmul(A, v).data('float32'),
        matmulT(A, u, true, false).data('float32'),
      ]);
      const absA = a.map(Math.abs);
      const want1 = refMatmul(a, vv, R, C, 1);
      const bound1 = refMatmul(absA, vv.map(Math.abs), R, C, 1);
      expectNear(av, want1, (i) => 2 * C * EPS * bound1[i]! + 1e-30);
      const at = await transpose(A).data('float32');
      const want2 = refMatmul(at, uu, C, R, 1);
      const bound2 = refMatmul(at.map(Math.abs), uu.map(Math.abs), C, R, 1);
      expectNear(atu, want2, (i) => 2 * Math.log2(R + 2) * 64 * EPS * bound2[i]! + 1e-30);
    }
  });

  it('sums rows longer than one workgroup chunk, exactly for integers', async () => {
    setKernelPolicy({ matmul: 'auto', reduce: 'auto', matvec: 'auto', ...p });
    const log = logDispatches(true);
    const x = randomNormal([3, 5000], 3);
    const got = await sum(x, 1).data('float32');
    logDispatches(false);
    const { deviceInfo } = await import('../src/index');
    const tree = p.reduce === 'tree' || (p.reduce === 'auto' && !(await deviceInfo()).isFallback);
    const want = tree ? 'reduce:reduce_rows' : 'reduce:reduce_strided';
    expect(log.some((l) => l.startsWith(want))).toBe(true);
    const xs = await x.data('float32');
    for (let r = 0; r < 3; r++) {
      let s = 0,
        abs = 0;
      for (let i = 0; i < 5000; i++) {
        s += xs[r * 5000 + i]!;
        abs += Math.abs(xs[r * 5000 + i]!);
      }
      expect(Math.abs(got[r]! - s)).toBeLessThanOrEqual(64 * EPS * abs);
    }
  });
});

describe.each(['register', 'shared'] as const)('tiled matmul (%s) with transpose flags', (variant) => {
  it('matches float64 for every transpose combination, aligned (vec4 path) and odd sizes, with split-K', async () => {
    setKernelPolicy({ matmul: variant });
    for (const [M, K, N] of [
      [8, 12, 4],
      [64, 36, 68],
      [12, 20, 132],
      [5, 7, 3],
      [4, 2048, 8],
    ] as const) {
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          const A = randomNormal(ta ? [K, M] : [M, K], M + K);
          const B = randomNormal(tb ? [N, K] : [K, N], K + N);
          const [a, b, c] = await Promise.all([
            (ta ? transpose(A) : A).data('float32'),
            (tb ? transpose(B) : B).data('float32'),
            matmulT(A, B, ta, tb).data('float32'),
          ]);
          const want = refMatmul(a, b, M, K, N);
          const bound = refMatmul(a.map(Math.abs), b.map(Math.abs), M, K, N);
          expectNear(c, want, (i) => 2 * K * EPS * bound[i]! + 1e-30);
        }
      }
    }
    setKernelPolicy({ matmul: 'auto' });
  });
});

describe('profileKernels', () => {
  it('times each kernel of a submission with timestamp queries, and stops when asked', async () => {
    const { deviceInfo, profileKernels } = await import('../src/index');
    const a = randomNormal([64, 64], 1);
    const b = randomNormal([64, 64], 2);
    await Promise.all([a.data('float32'), b.data('float32')]);
    const log = profileKernels(true);
    await sum(matmul(a, b)).data('float32');
    await new Promise((r) => setTimeout(r, 50)); // timings arrive just after the results
    profileKernels(false);
    const hasTimestamps = (await deviceInfo()).hasTimestampQuery;
    if (!hasTimestamps) return expect(log).toEqual([]);
    expect(log.map((t) => t.kernel)).toEqual(expect.arrayContaining([expect.stringMatching(/^matmul_/), expect.stringMatching(/^reduce:/)]));
    for (const t of log) {
      expect(t.ms).toBeGreaterThanOrEqual(0);
      expect(t.grid.every((g) => g >= 1)).toBe(true);
    }
    const n = log.length;
    await sum(matmul(a, b)).data('float32');
    await new Promise((r) => setTimeout(r, 50));
    expect(log.length).toBe(n);
  });
});

describe('fused elementwise kernel, one element or four (vec4) per thread', () => {
  it('reads each kind of input right in both forms: same shape, row, column, middle-axis and scalar broadcasts, and the index itself', async () => {
    const { add, mul, sub, tanh, arange, reshape, array } = await import('../src/index');
    const rnd = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 1000 + i * 1.7));
    // [rows, cols]: cols % 4 == 0 takes the vec4 form, the others the scalar one.
    for (const [R, C] of [
      [6, 8],
      [5, 12],
      [3, 7],
      [4, 6],
    ] as const) {
      const x = rnd(R * C, 1),
        row = rnd(C, 2),
        col = rnd(R, 3),
        mid = rnd(C, 4);
      const X = array(x, [R, C]),
        Row = array(row, [C]),
        Col = array(col, [R, 1]),
        S = array([0.5]);
      const Mid = array(mid, [1, C, 1]); // (2, C, 2) broadcasts on both sides of C
      const log = logDispatches(true);
      const got = await tanh(mul(sub(add(X, Row), Col), S)).data('float32');
      const idx = await add(reshape(arange(0, R * C), [R, C]), X).data('float32'); // reads i inside each component's block
      const bob = await add(reshape(arange(0, 4 * C), [2, C, 2]), Mid).data('float32');
      logDispatches(false);
      const vec = C % 4 === 0;
      expect(log.length).toBe(5); // the chain; arange and add; arange and add (arange feeds a reshape, so it is its own kernel)
      expect(log.every((l) => l.startsWith('elementwise'))).toBe(true);
      const threads = Number(/\[(\d+),/.exec(log[0]!)![1]);
      expect(threads).toBe(Math.ceil((vec ? (R * C) / 4 : R * C) / 256));
      for (let r = 0; r < R; r++) {
        for (let c = 0; c < C; c++) {
          const i = r * C + c;
          expect(got[i]).toBeCloseTo(Math.tanh((x[i]! + row[c]! - col[r]!) * 0.5), 5);
          expect(idx[i]).toBeCloseTo(i + x[i]!, 4);
        }
      }
      for (let a = 0; a < 2; a++)
        for (let c = 0; c < C; c++)
          for (let b = 0; b < 2; b++) {
            const i = (a * C + c) * 2 + b;
            expect(bob[i]).toBeCloseTo(i + mid[c]!, 4);
          }
    }
  });
});

describe('multi-output fusion: a target read by one same-shape kernel is written out from it', () => {
  it('computes the moments and the parameter of an Adam-like update in one kernel, each value right, vec4 or not, with a bool output', async () => {
    const { add, array, evaluate, exp, greater, mul, scale, sqrt, where } = await import('../src/index');
    for (const n of [1, 7, 64, 1027]) {
      const rnd = (seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 1000 + i * 1.3));
      const [p, g, m0, v0] = [rnd(1), rnd(2), rnd(3), rnd(4).map(Math.abs)];
      const [P, G, M0, V0] = [p, g, m0, v0].map((d) => array(d));
      const log = logDispatches(true);
      const m = add(scale(M0!, 0.9), scale(G!, 0.1));
      const v = add(scale(V0!, 0.99), scale(mul(G!, G!), 0.01));
      const pos = greater(G!, M0!); // a bool extra output (against M0: a constant 0 would take a binding)
      const step = scale(mul(m, exp(scale(sqrt(v), -1))), -0.5);
      const next = add(P!, where(pos, step, scale(step, 0.25)));
      await evaluate(m, v, pos, next);
      logDispatches(false);
      expect(log).toHaveLength(1);
      const [gm, gv, gpos, gnext] = await Promise.all([m.data('float32'), v.data('float32'), pos.data('bool'), next.data('float32')]);
      for (let i = 0; i < n; i++) {
        const wm = 0.9 * m0[i]! + 0.1 * g[i]!;
        const wv = 0.99 * v0[i]! + 0.01 * g[i]! * g[i]!;
        expect(gm[i]).toBeCloseTo(wm, 6);
        expect(gv[i]).toBeCloseTo(wv, 6);
        expect(gpos[i]).toBe(g[i]! > m0[i]! ? 1 : 0);
        const step = -0.5 * wm * Math.exp(-Math.sqrt(wv));
        expect(gnext[i]).toBeCloseTo(p[i]! + (g[i]! > m0[i]! ? step : 0.25 * step), 5);
      }
    }
  });
  it('does not write out a target reached through an intermediate that two kernels inline (the demo MLP: pred = h W2 + b2, its residual read by the loss and the backward pass)', async () => {
    const { add, array, mean, square, sub, tanh, valueAndGrad } = await import('../src/index');
    type P = { w1: NDArray; b1: NDArray; w2: NDArray; b2: NDArray };
    const [n, h] = [256, 32]; // past what runs on the host
    const rnd = (len: number, seed: number) => Float32Array.from({ length: len }, (_, i) => Math.sin(seed * 100 + i * 0.7));
    const [x, y, w1, b1, w2] = [rnd(n, 1), rnd(n, 2), rnd(h, 3), rnd(h, 4), rnd(h, 5)];
    const b2 = 0.5;
    const X = array(x, [n, 1]);
    const Y = array(y, [n, 1]);
    const f = (p: P): [NDArray, NDArray] => {
      const pred = add(matmul(tanh(add(matmul(X, p.w1), p.b1)), p.w2), p.b2);
      return [mean(square(sub(pred, Y))), pred];
    };
    const p = { w1: array(w1, [1, h]), b1: array(b1), w2: array(w2, [h, 1]), b2: array([b2]) };
    const [[loss, pred], g] = valueAndGrad(f, { hasAux: true })(p);
    const gw2 = await g.w2.data('float32'); // the read that plans the aux and the gradients together
    const [gp, gl, gb2] = [await pred.data('float32'), await loss.item(), await g.b2.item()];
    const act = (i: number, j: number) => Math.tanh(x[i]! * w1[j]! + b1[j]!);
    let [wantLoss, wantB2] = [0, 0];
    const wantW2 = new Float64Array(h);
    for (let i = 0; i < n; i++) {
      let q = b2;
      for (let j = 0; j < h; j++) q += act(i, j) * w2[j]!;
      expect(gp[i]).toBeCloseTo(q, 4);
      const r = q - y[i]!;
      wantLoss += (r * r) / n;
      wantB2 += (2 * r) / n;
      for (let j = 0; j < h; j++) wantW2[j]! += (2 * r * act(i, j)) / n;
    }
    expect(gl).toBeCloseTo(wantLoss, 4);
    expect(gb2).toBeCloseTo(wantB2, 4);
    for (let j = 0; j < h; j++) expect(gw2[j]).toBeCloseTo(wantW2[j]!, 4);
  });
});

describe('multi-output fusion with readers in later kernels', () => {
  beforeEach(() => setHostEvaluation(0));
  afterEach(() => setHostEvaluation(1 << 15));
  it('writes a target read by its own kernel and by later ones out once; the later ones read it from memory', async () => {
    const { add, array, evaluate, exp, mul, scale, sum: total } = await import('../src/index');
    const n = 200;
    const rnd = (seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 10 + i * 0.3));
    const [a, b, c] = [rnd(1), rnd(2), rnd(3)];
    const [A, B, C] = [array(a), array(b), array(c)];
    await evaluate(A, B, C);
    const log = logDispatches(true);
    const m = add(scale(A, 0.9), B); // a target, read by two kernels
    const p = mul(m, C);
    const q = total(exp(scale(m, 0.5))); // a later reader of another kind
    await evaluate(m, p, q);
    logDispatches(false);
    expect(log).toHaveLength(2); // m written out by p's kernel; the sum computes exp(m / 2) as it reads m
    const [gm, gp, gq] = [await m.data('float32'), await p.data('float32'), await q.item()];
    let want = 0;
    for (let i = 0; i < n; i++) {
      const w = 0.9 * a[i]! + b[i]!;
      expect(gm[i]).toBeCloseTo(w, 6);
      expect(gp[i]).toBeCloseTo(w * c[i]!, 6);
      want += Math.exp(w / 2);
    }
    expect(gq).toBeCloseTo(want, 2);
  });

  it('writes a scalar target (a step count) out from the first bigger kernel that reads it, vec4 or not', async () => {
    const { add, array, evaluate, mul, scale } = await import('../src/index');
    for (const n of [256, 37]) {
      const xs = Float32Array.from({ length: n }, (_, i) => Math.cos(i * 0.7));
      const [X, Y, T] = [array(xs), array(xs.map((v) => v * 3)), array(41)];
      await evaluate(X, Y, T);
      const log = logDispatches(true);
      const t = add(T, 1); // the new count: a target that kernels of another size read
      const a = mul(X, scale(t, 0.5));
      const b = add(Y, t);
      await evaluate(t, a, b);
      logDispatches(false);
      expect(log, `n = ${n}`).toHaveLength(2);
      const [gt, ga, gb] = [await t.item(), await a.data('float32'), await b.data('float32')];
      expect(gt).toBe(42);
      for (let i = 0; i < n; i++) {
        expect(ga[i]).toBe(Math.fround(xs[i]! * 21));
        expect(gb[i]).toBe(Math.fround(Math.fround(xs[i]! * 3) + 42));
      }
    }
  });
});

describe('strided sums, one column or four (vec4) per thread', () => {
  it('sums the middle axis of (A, R, B) for B a multiple of 4 and not, over several passes', async () => {
    for (const [A, R, B] of [
      [1, 5000, 8],
      [3, 700, 12],
      [2, 300, 6],
      [1, 64, 4],
    ] as const) {
      const x = randomNormal([A, R, B], A * R + B);
      const xs = await x.data('float32'); // computed first: else a sum of 256 rows or fewer computes it inline
      const log = logDispatches(true);
      const got = await sum(x, 1).data('float32');
      logDispatches(false);
      expect(log.some((l) => l.startsWith(B % 4 === 0 ? 'reduce:reduce_strided4' : 'reduce:reduce_strided '))).toBe(true);
      for (let a = 0; a < A; a++)
        for (let b = 0; b < B; b++) {
          let s = 0,
            abs = 0;
          for (let r = 0; r < R; r++) {
            const v = xs[(a * R + r) * B + b]!;
            s += v;
            abs += Math.abs(v);
          }
          expect(Math.abs(got[a * B + b]! - s)).toBeLessThanOrEqual(64 * EPS * abs);
        }
    }
  });
});

describe('constants and means cost no kernels of their own', () => {
  beforeEach(() => setHostEvaluation(0)); // the kernels, not the host rules
  afterEach(() => setHostEvaluation(1 << 15));
  it('folds +, −, × and reshape over fills on the host to the bits the kernels give (a broadcast fill stays a node)', async () => {
    const { add, addScalar, array, broadcastTo, full, mul, neg, reshape, scale, sub } = await import('../src/index');
    const vals = [0.1, -3.7, 1e-30, 3e38, -0, Infinity, NaN, 12345.678];
    for (const a of vals)
      for (const b of [0.3, -1e-3, 7e37, -2.5]) {
        const fa = full([2, 2], a);
        const fb = full([2, 2], b);
        const [ga, gb] = [array(new Float32Array(4).fill(a), [2, 2]), array(new Float32Array(4).fill(b), [2, 2])];
        const pairs: Array<[NDArray, NDArray]> = [
          [scale(fa, b), scale(ga, b)],
          [addScalar(fa, b), addScalar(ga, b)],
          [neg(fa), neg(ga)],
          [add(fa, fb), add(ga, gb)],
          [sub(fa, fb), sub(ga, gb)],
          [mul(fa, fb), mul(ga, gb)],
          [reshape(fa, [4]), reshape(ga, [4])],
          [broadcastTo(fa, [3, 2, 2]), broadcastTo(ga, [3, 2, 2])],
        ];
        for (const [folded, kernel] of pairs) {
          expect(folded.shape).toEqual(kernel.shape);
          const [x, y] = [await folded.data('float32'), await kernel.data('float32')];
          const bits = (v: Float32Array) => Array.from(new Uint32Array(v.buffer), (u, i) => (Number.isNaN(v[i]) ? 'NaN' : u)); // (a NaN's sign and payload are not specified)
          expect(bits(x)).toEqual(bits(y));
        }
      }
  });

  it('computes a mean in the sum kernel (one dispatch), one pass or several, and its gradient', async () => {
    const { grad, mean, randomUniform } = await import('../src/index');
    for (const shape of [[256], [7, 1000], [3, 5, 4], [5000]]) {
      const x = randomUniform(shape, 3, -1, 1);
      const xs = await x.data('float32');
      const log = logDispatches(true);
      const m = mean(x);
      const got = await m.item();
      logDispatches(false);
      expect(log.length).toBeGreaterThan(0);
      expect(log.every((d) => d.startsWith('reduce:'))).toBe(true);
      if (shape[0] === 256) expect(log).toHaveLength(1); // (256 rows or fewer: one pass)
      const want = xs.reduce((s: number, v) => s + v, 0) / xs.length;
      expect(got).toBeCloseTo(want, 5);
      const g = await grad((y: NDArray) => mean(y))(x).data('float32');
      expect(g.every((v) => v === Math.fround(1 / xs.length))).toBe(true);
    }
  });
});

describe('a sum computes its elementwise input as it reads it (≤ 256 rows)', () => {
  beforeEach(() => setHostEvaluation(0));
  afterEach(() => setHostEvaluation(1 << 15));
  const cases: Array<{ shape: number[]; axes: number[]; bshape: number[] }> = [
    { shape: [256], axes: [0], bshape: [] },
    { shape: [3, 200, 5], axes: [1], bshape: [200, 1] },
    { shape: [7, 13], axes: [0], bshape: [13] },
    { shape: [4, 5, 6], axes: [1, 2], bshape: [4, 1, 1] },
    { shape: [2, 3, 1], axes: [2], bshape: [1] },
    { shape: [9, 1, 3], axes: [0, 1], bshape: [3] },
  ];
  it('one kernel for mean(square(2x − b)) and sum(...), values against float64, odd shapes and broadcasting', async () => {
    const { array, mean, mul, square, sub } = await import('../src/index');
    for (const { shape, axes, bshape } of cases) {
      const size = shape.reduce((a, b) => a * b, 1);
      const bsize = bshape.reduce((a, b) => a * b, 1);
      const xs = Float32Array.from({ length: size }, (_, i) => Math.sin(i * 1.7 + 0.3));
      const bs = Float32Array.from({ length: bsize }, (_, i) => Math.cos(i * 0.9));
      const [x, b] = [array(xs, shape), array(bs, bshape)];
      // float64 reference over (A, R, B) with b broadcast against x's trailing axes
      const st = shape.map((_, d) => shape.slice(d + 1).reduce((a, c) => a * c, 1));
      const bst = bshape.map((_, d) => bshape.slice(d + 1).reduce((a, c) => a * c, 1));
      const off = shape.length - bshape.length;
      const kept = shape.filter((_, d) => !axes.includes(d));
      const want = new Float64Array(kept.reduce((a, c) => a * c, 1));
      for (let e = 0; e < size; e++) {
        const idx = shape.map((_, d) => Math.floor(e / st[d]!) % shape[d]!);
        let bi = 0;
        bshape.forEach((dim, d) => (bi += (dim === 1 ? 0 : idx[d + off]!) * bst[d]!));
        const o = idx.filter((_, d) => !axes.includes(d)).reduce((acc, v, k) => acc * kept[k]! + v, 0);
        want[o]! += (2 * xs[e]! - bs[bi]!) ** 2;
      }
      const count = axes.reduce((a, d) => a * shape[d]!, 1);
      for (const [op, scaleBy] of [
        [mean, 1 / count],
        [sum, 1],
      ] as const) {
        const log = logDispatches(true);
        const got = await op(square(sub(mul(x, 2), b)), axes).data('float32');
        logDispatches(false);
        expect(log, JSON.stringify({ shape, axes, log })).toHaveLength(1);
        expect(log[0]).toMatch(/^elementwise:/);
        expect(got.length).toBe(want.length);
        want.forEach((w, i) => expect(got[i]).toBeCloseTo(w * scaleBy, 3));
      }
    }
  });

  it('leaves a held input computed and right, and differentiates through the fused sum', async () => {
    const { array, grad, mean, square, sub } = await import('../src/index');
    const xs = Float32Array.from({ length: 100 }, (_, i) => Math.sin(i));
    const x = array(xs, [100]);
    const e = square(sub(x, 0.5)); // held by us: computed on its own, not only inside the sum
    const m = mean(e);
    const [gm, ge] = [await m.item(), await e.data('float32')];
    let want = 0;
    xs.forEach((v, i) => {
      expect(ge[i]).toBeCloseTo((v - 0.5) ** 2, 6);
      want += (v - 0.5) ** 2 / 100;
    });
    expect(gm).toBeCloseTo(want, 5);
    const g = await grad((y: NDArray) => mean(square(sub(y, 0.5))))(x).data('float32');
    xs.forEach((v, i) => expect(g[i]).toBeCloseTo((2 * (v - 0.5)) / 100, 6));
  });
});

describe('a contiguous slice of a computed array is a view of its buffer', () => {
  beforeEach(() => setHostEvaluation(0));
  afterEach(() => setHostEvaluation(1 << 15));
  it('no kernel where the run starts on a 256-byte boundary, a gather elsewhere; right values either way, and after the array is disposed', async () => {
    const { array, evaluate, matmul, slice } = await import('../src/index');
    const [K, R, C] = [5, 64, 8]; // one slice x[k] is 512 floats = 2048 bytes (and x past a small value)
    const xs = Float32Array.from({ length: K * R * C }, (_, i) => Math.sin(i * 0.37));
    const cases: Array<{ starts: number[]; stops: number[]; view: boolean }> = [
      { starts: [3, 0, 0], stops: [4, R, C], view: true }, // x[3]
      { starts: [1, 0, 0], stops: [4, R, C], view: true }, // x[1:4]
      { starts: [2, 8, 0], stops: [3, 16, C], view: true }, // x[2, 8:16]: 2 * 512 + 64 floats = 4352 bytes
      { starts: [2, 1, 0], stops: [3, 3, C], view: false }, // starts at 1032 floats: not on a boundary
      { starts: [0, 0, 2], stops: [K, R, 4], view: false }, // not contiguous
      { starts: [0, 0, 0], stops: [K, R, C], view: true }, // the whole array
    ];
    for (const { starts, stops, view } of cases) {
      const x = array(xs, [K, R, C]);
      await evaluate(x);
      const log = logDispatches(true);
      const s = slice(x, starts, stops);
      await evaluate(s);
      logDispatches(false);
      expect(log, JSON.stringify(starts)).toHaveLength(view ? 0 : 1);
      if (s !== x) x.dispose(); // a view keeps its buffer alive (the whole array is x itself)
      const got = await s.data('float32');
      const shape = stops.map((e, d) => e - starts[d]!);
      let k = 0;
      for (let a = 0; a < shape[0]!; a++)
        for (let b = 0; b < shape[1]!; b++)
          for (let c = 0; c < shape[2]!; c++) expect(got[k++]).toBe(xs[((a + starts[0]!) * R + b + starts[1]!) * C + c + starts[2]!]);
    }
    // A view as a kernel's input, at its offset.
    const x = array(xs, [K * R, C]);
    await evaluate(x);
    const w = array(
      Float32Array.from({ length: C * 3 }, (_, i) => i - 4),
      [C, 3],
    );
    const got = await matmul(slice(x, [2 * R, 0], [3 * R, C]), w).data('float32');
    for (let r = 0; r < R; r++)
      for (let j = 0; j < 3; j++) {
        let want = 0;
        for (let c = 0; c < C; c++) want += xs[(2 * R + r) * C + c]! * (c * 3 + j - 4);
        expect(got[r * 3 + j]).toBeCloseTo(want, 4);
      }
  });
});
