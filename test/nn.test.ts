// jax.nn's functions and Optax's classification losses against float64
// references, at ordinary inputs and at the extremes where a naive formula
// overflows, underflows or loses its digits.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { NDArray, array, grad, mean, nn, softmax, sum, oneHot, DTypeError, ShapeError } from '../src/index';
import { randomF32, sizeOf } from './helpers/reference';
import { erf64, rng } from './helpers/fd64';

fc.configureGlobal({ seed: Number(process.env.FC_SEED ?? 5), numRuns: 10 });

const rowsArb = fc.tuple(fc.integer({ min: 1, max: 9 }), fc.constantFrom(1, 2, 3, 10, 65, 1031), fc.integer({ min: 1, max: 2 ** 30 }));

/** Row-wise float64 softmax and log-softmax of (R, C) data. */
function softmax64(d: ArrayLike<number>, C: number): { p: number[]; logp: number[] } {
  const p: number[] = [];
  const logp: number[] = [];
  for (let r = 0; r < d.length / C; r++) {
    const row = Array.from({ length: C }, (_, c) => d[r * C + c]!);
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
    for (const v of row) {
      logp.push(v - lse);
      p.push(Math.exp(v - lse));
    }
  }
  return { p, logp };
}

function expectNear(got: ArrayLike<number>, want: ArrayLike<number>, tol: (w: number) => number, label: string): void {
  expect(got.length, label).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    if (!Number.isFinite(w)) expect(got[i], `${label} [${i}]`).toBe(w);
    else expect(Math.abs(got[i]! - w), `${label} [${i}]: got ${got[i]}, want ${w}`).toBeLessThanOrEqual(tol(w));
  }
}

describe('softmax and logSoftmax vs float64', () => {
  it('random rows, including logits spread over ±80 (a plain exp would overflow)', async () => {
    await fc.assert(
      fc.asyncProperty(rowsArb, async ([R, C, seed]) => {
        const d = randomF32(R * C, seed, -80, 80);
        const x = array(d, [R, C]);
        const { p, logp } = softmax64(d, C);
        expectNear(await softmax(x).data(), p, (w) => 1e-6 + 8e-6 * w, `softmax [${R}, ${C}]`);
        expectNear(await nn.logSoftmax(x).data(), logp, (w) => 2e-6 * Math.max(1, Math.abs(w)) * Math.log2(2 + C), `logSoftmax [${R}, ${C}]`);
      }),
    );
  });
  it('along another axis, and at ±3e38', async () => {
    const x = array([
      [1, 2],
      [3, 4],
    ]);
    expectNear(await softmax(x, 0).data(), [0.11920292, 0.11920292, 0.88079708, 0.88079708], () => 1e-6, 'axis 0');
    const big = await nn.logSoftmax(array([[3e38, 3e38, -3e38]])).data();
    expectNear(big.slice(0, 2), [-Math.LN2, -Math.LN2], () => 1e-6, 'logSoftmax near the float32 maximum');
    expect(big[2]).toBe(-Infinity);
  });
});

describe('activations vs float64', () => {
  const cases: Array<[string, (x: NDArray) => NDArray, (v: number) => number, number, number, (v: number, w: number) => number]> = [
    ['gelu (tanh)', (x) => nn.gelu(x), (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))), -6, 6, () => 2e-6],
    ['gelu (exact)', (x) => nn.gelu(x, false), (v) => 0.5 * v * (1 + erf64(v / Math.SQRT2)), -6, 6, (v) => 2e-6 * Math.max(1, Math.abs(v))],
    ['silu', nn.silu, (v) => v / (1 + Math.exp(-v)), -20, 20, (_v, w) => 2e-6 * Math.max(1, Math.abs(w))],
    // Relative to the result even where it is 1e-40: exp(-|x|)'s 3 + 2|x| ulp (WGSL), log1p's few.
    [
      'softplus',
      nn.softplus,
      (v) => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v))),
      -80,
      80,
      (v, w) => (6 + 2 * Math.abs(v)) * 1.2e-7 * Math.abs(w) + 1e-44,
    ],
    [
      'logSigmoid',
      nn.logSigmoid,
      (v) => -(Math.max(-v, 0) + Math.log1p(Math.exp(-Math.abs(v)))),
      -80,
      80,
      (v, w) => (6 + 2 * Math.abs(v)) * 1.2e-7 * Math.abs(w) + 1e-44,
    ],
    ['leakyRelu', (x) => nn.leakyRelu(x), (v) => (v >= 0 ? v : 0.01 * v), -5, 5, (_v, w) => 1e-7 * Math.abs(w)],
  ];
  for (const [name, op, ref, lo, hi, tol] of cases) {
    it(name, async () => {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 1, max: 2 ** 30 }), async (n, seed) => {
          const d = randomF32(n, seed, lo, hi);
          const got = await op(array(d)).data();
          for (let i = 0; i < n; i++) {
            const w = ref(d[i]!);
            expect(Math.abs(got[i]! - w), `${name}(${d[i]}): got ${got[i]}, want ${w}`).toBeLessThanOrEqual(tol(d[i]!, w));
          }
        }),
        { numRuns: 5 },
      );
    });
  }
  it('softplus and logSigmoid keep their digits far out: softplus(-30) ≈ 9.4e-14, logSigmoid(-100) = -100', async () => {
    const sp = await nn.softplus(array([-30, 100, 0])).data();
    expect(Math.abs(sp[0]! - Math.exp(-30)) / Math.exp(-30)).toBeLessThan(1e-5); // exp's 63 ulp bound at -30
    expect(sp[1]).toBe(100);
    expect(Math.abs(sp[2]! - Math.LN2)).toBeLessThan(1e-7);
    expect(Array.from(await nn.logSigmoid(array([-100])).data())).toEqual([-100]);
  });
});

describe('oneHot, standardize, variance', () => {
  it('oneHot: float32 rows, zeros for an out-of-range label', async () => {
    const y = oneHot(array(new Int32Array([0, 2, 5])), 3);
    expect(y.dtype).toBe('float32');
    expect(y.shape).toEqual([3, 3]);
    expect(Array.from(await y.data())).toEqual([1, 0, 0, 0, 0, 1, 0, 0, 0]);
  });
  it('standardize gives mean 0 and variance 1 per row; variance matches float64', async () => {
    const r = rng(3);
    const d = Float32Array.from({ length: 4 * 65 }, () => 10 + 5 * r());
    const x = array(d, [4, 65]);
    const z = nn.standardize(x);
    const zd = await z.data();
    for (let row = 0; row < 4; row++) {
      const v = Array.from(zd.slice(row * 65, row * 65 + 65));
      const m = v.reduce((a, b) => a + b, 0) / 65;
      expect(Math.abs(m)).toBeLessThan(1e-5);
      expect(Math.abs(v.reduce((a, b) => a + (b - m) ** 2, 0) / 65 - 1)).toBeLessThan(1e-3); // epsilon 1e-5 over a variance near 2
    }
    const v64 = (() => {
      const m = d.reduce((a, b) => a + b, 0) / d.length;
      return d.reduce((a, b) => a + (b - m) ** 2, 0) / d.length;
    })();
    expect(Math.abs((await nn.variance(x).item()) - v64) / v64).toBeLessThan(1e-5);
  });
});

describe("Optax's softmax cross-entropy losses", () => {
  it('with integer labels equals the one-hot form and the float64 reference, with the float64 gradient softmax - onehot', async () => {
    await fc.assert(
      fc.asyncProperty(rowsArb, async ([R, C, seed]) => {
        const d = randomF32(R * C, seed, -10, 10);
        const r = rng(seed);
        const labels = Int32Array.from({ length: R }, () => Math.floor(r() * C));
        const x = array(d, [R, C]);
        const { p, logp } = softmax64(d, C);
        const want = Array.from(labels, (l, i) => -logp[i * C + l]!);
        const a = await nn.softmaxCrossEntropyWithIntegerLabels(x, array(labels)).data();
        const b = await nn.softmaxCrossEntropy(x, oneHot(array(labels), C)).data();
        expectNear(a, want, (w) => 4e-6 * Math.max(1, Math.abs(w)) * Math.log2(2 + C), 'integer labels');
        expectNear(b, want, (w) => 4e-6 * Math.max(1, Math.abs(w)) * Math.log2(2 + C), 'one-hot labels');
        const g = await grad((z: NDArray) => mean(nn.softmaxCrossEntropyWithIntegerLabels(z, array(labels))))(x).data();
        const gw = p.map((v, k) => (v - (labels[Math.floor(k / C)] === k % C ? 1 : 0)) / R);
        expectNear(g, gw, () => 2e-6, 'gradient');
      }),
    );
  });
  it('names wrong labels: float labels, a shape that does not match', () => {
    const x = array([[1, 2, 3]]);
    expect(() => nn.softmaxCrossEntropyWithIntegerLabels(x, array([1]))).toThrow(DTypeError);
    expect(() => nn.softmaxCrossEntropyWithIntegerLabels(x, array(new Int32Array([1, 2])))).toThrow(ShapeError);
    expect(() => nn.softmaxCrossEntropy(x, array([[1, 0]]))).toThrow(ShapeError);
  });
  it('sum over a batch is the sum of per-example losses', async () => {
    const x = array(randomF32(6, 9), [2, 3]);
    const l = nn.softmaxCrossEntropyWithIntegerLabels(x, array(new Int32Array([0, 2])));
    const parts = await l.data();
    expect(Math.abs((await sum(l).item()) - (parts[0]! + parts[1]!))).toBeLessThan(1e-6);
    expect(sizeOf(l.shape)).toBe(2);
  });
});
