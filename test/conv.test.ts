// conv2d, maxPool and avgPool against direct float64 loops (TF/JAX 'SAME'
// and 'VALID' padding, strides), with their gradients against the float64
// VJPs written out by hand, on the GPU and the host path.
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { array, avgPool, conv2d, grad, maxPool, mul, setHostEvaluation, ShapeError, sum, ValueError, type NDArray, type Padding } from '../src/index';
import { randomF32, sizeOf } from './helpers/reference';

fc.configureGlobal({ seed: Number(process.env.FC_SEED ?? 13), numRuns: 10 });
afterEach(() => setHostEvaluation(0));

interface Geometry {
  oh: number;
  ow: number;
  pt: number;
  pl: number;
}
function geometry(H: number, W: number, kh: number, kw: number, sh: number, sw: number, padding: Padding): Geometry {
  if (padding === 'VALID') return { oh: Math.floor((H - kh) / sh) + 1, ow: Math.floor((W - kw) / sw) + 1, pt: 0, pl: 0 };
  const oh = Math.ceil(H / sh);
  const ow = Math.ceil(W / sw);
  return { oh, ow, pt: Math.floor(Math.max((oh - 1) * sh + kh - H, 0) / 2), pl: Math.floor(Math.max((ow - 1) * sw + kw - W, 0) / 2) };
}

/** Direct convolution in float64, and its VJPs for a cotangent g: dx, dw. */
function conv64(x: Float32Array, xs: number[], w: Float32Array, ws: number[], s: [number, number], padding: Padding, g?: Float32Array) {
  const [N, H, W, C] = xs as [number, number, number, number];
  const [KH, KW, , O] = ws as [number, number, number, number];
  const { oh, ow, pt, pl } = geometry(H, W, KH, KW, s[0], s[1], padding);
  const y = new Float64Array(N * oh * ow * O);
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(w.length);
  for (let n = 0; n < N; n++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++)
        for (let o = 0; o < O; o++) {
          const yi = ((n * oh + i) * ow + j) * O + o;
          for (let a = 0; a < KH; a++)
            for (let b = 0; b < KW; b++) {
              const ih = i * s[0] + a - pt;
              const iw = j * s[1] + b - pl;
              if (ih < 0 || iw < 0 || ih >= H || iw >= W) continue;
              for (let c = 0; c < C; c++) {
                const xi = ((n * H + ih) * W + iw) * C + c;
                const wi = ((a * KW + b) * C + c) * O + o;
                y[yi]! += x[xi]! * w[wi]!;
                if (g) {
                  dx[xi]! += g[yi]! * w[wi]!;
                  dw[wi]! += g[yi]! * x[xi]!;
                }
              }
            }
        }
  return { y, dx, dw, shape: [N, oh, ow, O] };
}

function expectNear(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, label: string) {
  expect(got.length, label).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!), `${label} [${i}]: ${got[i]} vs ${want[i]}`).toBeLessThanOrEqual(tol);
}

const caseArb = fc.record({
  N: fc.integer({ min: 1, max: 3 }),
  H: fc.integer({ min: 1, max: 9 }),
  W: fc.integer({ min: 1, max: 9 }),
  C: fc.constantFrom(1, 2, 3),
  O: fc.constantFrom(1, 4),
  KH: fc.integer({ min: 1, max: 3 }),
  KW: fc.integer({ min: 1, max: 3 }),
  s: fc.constantFrom<[number, number]>([1, 1], [2, 2], [1, 2]),
  padding: fc.constantFrom<Padding>('SAME', 'VALID'),
  seed: fc.integer({ min: 1, max: 2 ** 30 }),
  host: fc.boolean(),
});

describe('conv2d vs a direct float64 convolution', () => {
  it('values and both gradients, random geometry (odd sizes, strides, SAME and VALID)', async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, async ({ N, H, W, C, O, KH, KW, s, padding, seed, host }) => {
        if (padding === 'VALID' && (KH > H || KW > W)) return;
        setHostEvaluation(host ? 1 << 20 : 0);
        const xs = [N, H, W, C];
        const ws = [KH, KW, C, O];
        const x = randomF32(sizeOf(xs), seed);
        const w = randomF32(sizeOf(ws), seed + 1);
        const ref0 = conv64(x, xs, w, ws, s, padding);
        const g = randomF32(ref0.y.length, seed + 2);
        const ref = conv64(x, xs, w, ws, s, padding, g);
        const y = conv2d(array(x, xs), array(w, ws), { strides: s, padding });
        expect(y.shape).toEqual(ref.shape);
        const tol = 1e-6 * KH * KW * C * 4;
        expectNear(await y.data(), ref.y, tol, 'y');
        const [dx, dw] = grad((a: NDArray, b: NDArray) => sum(mul(array(g, ref.shape), conv2d(a, b, { strides: s, padding }))), { argnums: [0, 1] })(
          array(x, xs),
          array(w, ws),
        );
        expectNear(await dx.data(), ref.dx, tol * 2, 'dx');
        expectNear(await dw.data(), ref.dw, tol * N * ref.shape[1]! * ref.shape[2]!, 'dw');
      }),
    );
  });
  it('names bad arguments', () => {
    expect(() => conv2d(array([1]), array([1]))).toThrow(ShapeError);
    const x = array(new Float32Array(2 * 4 * 4 * 3), [2, 4, 4, 3]);
    expect(() => conv2d(x, array(new Float32Array(9 * 2), [3, 3, 2, 1]))).toThrow(/I = 3/);
    expect(() => conv2d(x, array(new Float32Array(27), [3, 3, 3, 1]), { padding: 'FULL' as Padding })).toThrow(ValueError);
    expect(() => conv2d(x, array(new Float32Array(27 * 4), [6, 6, 3, 1]), { padding: 'VALID' })).toThrow(ShapeError);
  });
});

describe('maxPool and avgPool vs float64', () => {
  it('values and gradients, windows 2 and 3, strides, SAME and VALID', async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, async ({ N, H, W, C, KH, s, padding, seed, host }) => {
        if (padding === 'VALID' && (KH > H || KH > W)) return;
        setHostEvaluation(host ? 1 << 20 : 0);
        const xs = [N, H, W, C];
        // Distinct values (no ties), so max's gradient is one-hot.
        const x = Float32Array.from(randomF32(sizeOf(xs), seed), (v, i) => v + i * 1e-3);
        const { oh, ow, pt, pl } = geometry(H, W, KH, KH, s[0], s[1], padding);
        const mx = new Float64Array(N * oh * ow * C).fill(-Infinity);
        const av = new Float64Array(N * oh * ow * C);
        const arg = new Int32Array(mx.length).fill(-1);
        for (let n = 0; n < N; n++)
          for (let i = 0; i < oh; i++)
            for (let j = 0; j < ow; j++)
              for (let c = 0; c < C; c++) {
                const o = ((n * oh + i) * ow + j) * C + c;
                for (let a = 0; a < KH; a++)
                  for (let b = 0; b < KH; b++) {
                    const ih = i * s[0] + a - pt;
                    const iw = j * s[1] + b - pl;
                    if (ih < 0 || iw < 0 || ih >= H || iw >= W) continue;
                    const xi = ((n * H + ih) * W + iw) * C + c;
                    av[o]! += x[xi]! / (KH * KH);
                    if (x[xi]! > mx[o]!) [mx[o], arg[o]] = [x[xi]!, xi];
                  }
              }
        const opts = { strides: s, padding };
        expectNear(await maxPool(array(x, xs), KH, opts).data(), mx, 0, 'maxPool');
        expectNear(await avgPool(array(x, xs), KH, opts).data(), av, 2e-6, 'avgPool');
        const gm = await grad((t: NDArray) => sum(maxPool(t, KH, opts)))(array(x, xs)).data();
        const want = new Float64Array(x.length);
        arg.forEach((i) => i >= 0 && (want[i]! += 1));
        expectNear(gm, want, 0, 'maxPool gradient');
      }),
    );
  });
  it("gives each window's gradient to its first maximum (ties do not share, as in JAX), on both paths", async () => {
    for (const host of [false, true]) {
      setHostEvaluation(host ? 1 << 20 : 0);
      // Rows of equal values, a NaN, and -Inf everywhere in the last window.
      const x = array([1, 1, 2, 2, 3, NaN, -Infinity, -Infinity, 1, 1, 2, 2, 3, 3, -Infinity, -Infinity], [1, 2, 8, 1]);
      expect(Array.from(await maxPool(x, [2, 2]).data())).toEqual([1, 2, NaN, -Infinity]);
      const g = await grad((t: NDArray) => sum(mul(maxPool(t, [2, 2]), array([1, 10, 100, 1000], [1, 1, 4, 1]))))(x).data();
      expect(Array.from(g)).toEqual([1, 0, 10, 0, 0, 100, 1000, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    }
    setHostEvaluation(0);
  });
});
