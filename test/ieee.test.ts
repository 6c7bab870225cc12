// IEEE special values through every elementwise primitive, on both paths:
// NaN in gives NaN out unless IEEE says otherwise, infinities go where IEEE
// sends them, and the GPU kernels and the host rules agree, so a NaN loss
// never reads as a number and the answer never depends on which path ran.
// Plus JAX's derivatives at kinks and the stable primitives.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { abs, array, cos, grad, maximum, minimum, NDArray, pow, relu, setHostEvaluation, sigmoid, sin, sum, tanh } from '../src/index';
import { bind } from '../src/array/ops';
import { primitives } from '../src/array/primitives';
import type { Prim } from '../src/array/prims';
import type { DType } from '../src/array/dtype';
import { erf64, erfInv64 } from './helpers/fd64';

const f32 = Math.fround;
/** float64 references with IEEE semantics for NaN and infinities (inputs already float32). */
const refs: Partial<Record<Prim, { ref: (a: number, b?: number) => number; params?: Record<string, number>; binary?: boolean; dtype?: DType }>> = {
  add: { ref: (a, b) => a + b!, binary: true },
  sub: { ref: (a, b) => a - b!, binary: true },
  mul: { ref: (a, b) => a * b!, binary: true },
  div: { ref: (a, b) => a / b!, binary: true },
  maximum: { ref: (a, b) => (Number.isNaN(a) || Number.isNaN(b!) ? NaN : Math.max(a, b!)), binary: true },
  equal: { ref: (a, b) => (a === b! ? 1 : 0), binary: true, dtype: 'bool' },
  not_equal: { ref: (a, b) => (a !== b! ? 1 : 0), binary: true, dtype: 'bool' },
  less: { ref: (a, b) => (a < b! ? 1 : 0), binary: true, dtype: 'bool' },
  less_equal: { ref: (a, b) => (a <= b! ? 1 : 0), binary: true, dtype: 'bool' },
  greater: { ref: (a, b) => (a > b! ? 1 : 0), binary: true, dtype: 'bool' },
  greater_equal: { ref: (a, b) => (a >= b! ? 1 : 0), binary: true, dtype: 'bool' },
  is_finite: { ref: (a) => (Number.isFinite(a) ? 1 : 0), dtype: 'bool' },
  // float32 to int32: toward zero, saturating, NaN to 0; to bool: != 0, NaN true.
  convert: { ref: (a) => (Number.isNaN(a) ? 0 : Math.max(-2147483648, Math.min(2147483647, Math.trunc(a)))), dtype: 'int32' },
  log1p: { ref: Math.log1p },
  erf: { ref: erf64 },
  erf_inv: { ref: (a) => (Math.abs(a) === 1 ? a * Infinity : erfInv64(a)) },
  neg: { ref: (a) => -a },
  square: { ref: (a) => a * a },
  sqrt: { ref: Math.sqrt },
  exp: { ref: Math.exp },
  log: { ref: Math.log },
  sin: { ref: Math.sin },
  cos: { ref: Math.cos },
  tanh: { ref: Math.tanh },
  relu: { ref: (a) => (Number.isNaN(a) ? NaN : Math.max(a, 0)) },
  logistic: { ref: (a) => 1 / (1 + Math.exp(-a)) },
  abs: { ref: Math.abs },
  sign: { ref: (a) => (Number.isNaN(a) ? NaN : Math.sign(a)) },
  scale: { ref: (a) => a * 2.5, params: { c: 2.5 } },
  add_scalar: { ref: (a) => a - 1.5, params: { c: -1.5 } },
  pow_scalar: { ref: (a) => a ** 3, params: { c: 3 } },
  broadcast_to: { ref: (a) => a },
};
/**
 * Elementwise primitives with no inputs (nothing to propagate), and those whose
 * inputs are bool words, not floats (logical ops, select's condition: test/dtypes.test.ts).
 */
const noInputs = ['fill', 'arange', 'random_uniform', 'random_normal', 'logical_and', 'logical_or', 'logical_not', 'select'];

const specials = [NaN, Infinity, -Infinity, 0, -0, 1, -1, 0.75, -3.5, 40];
// No subnormals: GPUs may flush them to zero (WGSL allows it), which is not what this is about.
const valueArb = fc.oneof(
  fc.constantFrom(...specials),
  fc.float({ noNaN: true, min: -50, max: 50 }).map((x) => (Math.abs(x) < 2 ** -126 ? 0 : f32(x))),
);

async function run(
  prim: Prim,
  params: Record<string, number> | undefined,
  inputs: number[][],
  onHost: boolean,
  dtype?: DType,
): Promise<Float64Array> {
  setHostEvaluation(onHost ? 1 << 20 : 0);
  try {
    const xs = inputs.map((v) => array(v));
    const out = bind(prim, xs, (params ?? {}) as never, xs[0]!.shape, dtype).data();
    return Float64Array.from(await out);
  } finally {
    setHostEvaluation(0);
  }
}

/** The float32 outcomes IEEE allows: NaN exactly where the float64 result is NaN, the same infinity, else close. */
function judge(got: number, want: number, prim: string): string | null {
  if (Number.isNaN(want)) return Number.isNaN(got) ? null : 'want NaN';
  if (Number.isNaN(got)) return `got NaN, want ${want}`;
  const w = f32(want);
  if (!Number.isFinite(w)) return got === w ? null : `want ${w}`;
  // Finite: a loose bound (accuracy is tested elsewhere); sin/cos of 50 carry WGSL's 2^-11 absolute error.
  const tol = /sin|cos/.test(prim) ? 2 ** -10 : 1e-5 * Math.max(1, Math.abs(w));
  return Math.abs(got - w) <= tol || (got === Infinity && w > 3e38) ? null : `want ${w}`;
}

describe('IEEE special values, every elementwise primitive, GPU and host', () => {
  it('every elementwise primitive with inputs has a case', () => {
    const missing = Object.entries(primitives)
      .filter(([p, r]) => 'elementwise' in r && r.elementwise && !noInputs.includes(p) && !(p in refs))
      .map(([p]) => p);
    expect(missing).toEqual([]);
  });

  for (const [prim, c] of Object.entries(refs) as Array<[Prim, NonNullable<(typeof refs)[Prim]>]>) {
    it(prim, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(valueArb, { minLength: 1, maxLength: 24 }), fc.array(valueArb, { minLength: 24, maxLength: 24 }), async (a, b0) => {
          const b = b0.slice(0, a.length);
          const inputs = c.binary ? [a, b] : [a];
          const [gpu, host] = [await run(prim, c.params, inputs, false, c.dtype), await run(prim, c.params, inputs, true, c.dtype)];
          a.forEach((x, i) => {
            const want = c.ref(f32(x), c.binary ? f32(b[i]!) : undefined);
            const at = `${prim}(${c.binary ? `${x}, ${b[i]}` : x})`;
            const wg = judge(gpu[i]!, want, prim);
            if (wg) throw new Error(`${at} on the GPU: got ${gpu[i]}: ${wg}`);
            const wh = judge(host[i]!, want, prim);
            if (wh) throw new Error(`${at} on the host: got ${host[i]}: ${wh}`);
          });
        }),
        { numRuns: 8, seed: 11 },
      );
    });
  }

  it('pow(x, 0) is 1 everywhere, NaN included (IEEE), and pow(NaN, 3) is NaN', async () => {
    expect(Array.from(await pow(array([NaN, 0, -Infinity, 2]), 0).data('float32'))).toEqual([1, 1, 1, 1]);
    expect(Number.isNaN((await pow(array([NaN]), 3).data('float32'))[0]!)).toBe(true);
  });
});

describe('derivatives at kinks follow JAX', () => {
  const g = async (fn: (x: NDArray) => NDArray, xs: number[]) => Array.from(await grad((x: NDArray) => sum(fn(x)))(array(xs)).data('float32'));
  it("abs'(0) = 1, relu'(0) = 0", async () => {
    expect(await g(abs, [-2, 0, 3])).toEqual([-1, 1, 1]);
    expect(await g(relu, [-2, 0, 3])).toEqual([0, 0, 1]);
  });
  it('a tie in maximum or minimum gives each side half the cotangent', async () => {
    const a = array([1, 2, 3]);
    const b = array([1, 5, 0]);
    const [ga, gb] = grad((p: NDArray, q: NDArray) => sum(maximum(p, q)), { argnums: [0, 1] })(a, b);
    expect(Array.from(await ga.data('float32'))).toEqual([0.5, 0, 1]);
    expect(Array.from(await gb.data('float32'))).toEqual([0.5, 1, 0]);
    const [ha, hb] = grad((p: NDArray, q: NDArray) => sum(minimum(p, q)), { argnums: [0, 1] })(a, b);
    expect(Array.from(await ha.data('float32'))).toEqual([0.5, 1, 0]);
    expect(Array.from(await hb.data('float32'))).toEqual([0.5, 0, 1]);
  });
});

describe('stable primitives', () => {
  it("sigmoid's gradient far left is ~0, not NaN (JAX: out (1 - out))", async () => {
    const d = await grad((x: NDArray) => sum(sigmoid(x)))(array([-100, -89, -20, 0, 100])).data('float32');
    expect(Array.from(d).every(Number.isFinite)).toBe(true);
    expect(d[0]).toBe(0);
    expect(d[2]).toBeCloseTo(Math.exp(-20), 12);
    expect(d[3]).toBeCloseTo(0.25, 6);
  });
  it('d/dx pow(x, 0) is 0, also at 0', async () => {
    expect(Array.from(await grad((x: NDArray) => sum(pow(x, 0)))(array([0, 2])).data('float32'))).toEqual([0, 0]);
  });
  it('sin and cos within 2^-22 of float64 (about 2 ulp of 1) from 0 to 1e6 (positional encodings)', async () => {
    const grid = Array.from({ length: 4001 }, (_, i) => -50 + i / 40);
    const xs = [...grid, 1000, 1e4, 12345.678, 1e5, 3.7e5, 1e6, -1e4, -54321.5, 1.5e6].map(f32);
    const [s, c] = [await sin(array(xs)).data('float32'), await cos(array(xs)).data('float32')];
    xs.forEach((x, i) => {
      expect(Math.abs(s[i]! - Math.sin(x)), `sin(${x})`).toBeLessThanOrEqual(2 ** -22);
      expect(Math.abs(c[i]! - Math.cos(x)), `cos(${x})`).toBeLessThanOrEqual(2 ** -22);
    });
  });

  it('tanh near 0 keeps its digits: tanh(1e-8) = 1e-8, within 2 ulp from 1e-8 to 0.25', async () => {
    const xs = [1e-30, 1e-8, 1e-6, 1e-4, 0.01, 0.1, 0.2, 0.2499, -1e-6, -0.1];
    const got = await tanh(array(xs)).data('float32');
    xs.forEach((x, i) => {
      const w = Math.tanh(f32(x));
      const ulp = 2 ** (Math.floor(Math.log2(Math.abs(w))) - 23);
      expect(Math.abs(got[i]! - w), `tanh(${x})`).toBeLessThanOrEqual(2 * ulp);
    });
  });
});
