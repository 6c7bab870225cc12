// int32 and bool arrays, JAX's promotion between dtypes, and the ops that
// choose or index elements (max, min, argmax, argmin, logsumexp, take,
// takeAlongAxis, where), each against a float64 (or exact integer) reference
// on random shapes, on the GPU and on the host path, including values near
// the float32 limits and indices that repeat, are negative or out of range.
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  NDArray,
  abs,
  add,
  argmax,
  argmin,
  array,
  astype,
  copy,
  concatenate,
  div,
  DTypeError,
  equal,
  exp,
  expandDims,
  grad,
  greater,
  IndexError,
  logsumexp,
  matmul,
  max,
  maximum,
  mean,
  min,
  moveaxis,
  mul,
  neg,
  ones,
  setHostEvaluation,
  sign,
  slice,
  split,
  square,
  squeeze,
  stack,
  sub,
  sum,
  swapaxes,
  take,
  takeAlongAxis,
  transpose,
  ValueError,
  where,
  zeros,
  arange,
  full,
} from '../src/index';
import { randomF32, sizeOf } from './helpers/reference';
import { rng } from './helpers/fd64';

const FC_SEED = Number(process.env.FC_SEED ?? 11);
fc.configureGlobal({ seed: FC_SEED, numRuns: 12 });

afterEach(() => setHostEvaluation(0));

/** Run make() on the GPU (host evaluation off) and on the host path; both results as plain number arrays. */
async function bothPaths(make: () => NDArray): Promise<[number[], number[], NDArray]> {
  setHostEvaluation(0);
  const g = make();
  const gpu = Array.from(await g.data());
  setHostEvaluation(1 << 20);
  const h = make();
  const host = Array.from(await h.data());
  setHostEvaluation(0);
  return [gpu, host, g];
}

const dimArb = fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 1, max: 5 }) }, { weight: 2, arbitrary: fc.constantFrom(7, 65, 1031) });
const shapeArb = (minRank = 1, maxRank = 3) => fc.array(dimArb, { minLength: minRank, maxLength: maxRank }).filter((s) => sizeOf(s) <= 5000);
const seedArb = fc.integer({ min: 1, max: 2 ** 30 });

/** Row-major walk over (A, R, B) around `axis`. */
function around(shape: readonly number[], axis: number): [number, number, number] {
  const p = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
  return [p(shape.slice(0, axis)), shape[axis]!, p(shape.slice(axis + 1))];
}

const I32 = (x: number) => x | 0;
const int32Arb = fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.constantFrom(2147483647, -2147483648, 65536, -1, 0), fc.integer());

describe('creating arrays: the dtype comes from the data', () => {
  it('Int32Array (and other integer typed arrays) give int32, values kept exactly', async () => {
    const x = array(new Int32Array([16777217, -2147483648, 2147483647]));
    expect(x.dtype).toBe('int32');
    expect(Array.from(await x.data('int32'))).toEqual([16777217, -2147483648, 2147483647]);
    expect(array(new Uint8Array([200, 3])).dtype).toBe('int32');
    expect(Array.from(await array(new Uint8Array([200, 3])).data())).toEqual([200, 3]);
    expect(() => array(new Uint32Array([2 ** 32 - 1]))).toThrow(ValueError);
  });
  it('numbers are float32, booleans bool, and { dtype } casts as JAX does', async () => {
    expect(array([1, 2]).dtype).toBe('float32');
    expect(array(new Float64Array([1.5])).dtype).toBe('float32');
    const b = array([true, false, true]);
    expect(b.dtype).toBe('bool');
    expect(await b.toNested()).toEqual([true, false, true]);
    expect(Array.from(await b.data('bool'))).toEqual([1, 0, 1]);
    expect(Array.from(await array([1.9, -1.9, 0], { dtype: 'int32' }).data())).toEqual([1, -1, 0]);
    expect(Array.from(await array([2, 0, -0.5], { dtype: 'bool' }).data())).toEqual([1, 0, 1]);
    expect(array([[1, 2]], { shape: [2], dtype: 'int32' }).shape).toEqual([2]);
    expect(() => array([1], { dtype: 'float64' as never })).toThrow(ValueError);
    expect(() => array([3e9], { dtype: 'int32' })).toThrow(/does not fit in int32/);
    expect(String(array(new Int32Array(2)))).toBe('NDArray(shape=[2], int32)');
  });
  it("data('float32') names the dtype it expects: another one is a DTypeError", async () => {
    await expect(array(new Int32Array([1])).data('float32')).rejects.toThrow(DTypeError);
    await expect(array([1]).data('int32')).rejects.toThrow(/is float32/);
  });
  it('copy(x) is a new array; array(x) is x', async () => {
    const x = array([1, 2, 3]);
    expect(array(x)).toBe(x);
    const c = copy(x);
    expect(c).not.toBe(x);
    x.dispose();
    expect(Array.from(await c.data())).toEqual([1, 2, 3]);
  });
});

describe("JAX's promotion: bool < int32 < float32, JS numbers weakly typed", () => {
  const i = () => array(new Int32Array([7, -3]));
  const b = () => array([true, false]);
  const f = () => array([0.5, 2]);
  it.each([
    ['int32 + int32', () => add(i(), i()), 'int32', [14, -6]],
    ['int32 + float32', () => add(i(), f()), 'float32', [7.5, -1]],
    ['int32 + 1', () => add(i(), 1), 'int32', [8, -2]],
    ['int32 + 0.5', () => add(i(), 0.5), 'float32', [7.5, -2.5]],
    ['int32 * 3', () => mul(i(), 3), 'int32', [21, -9]],
    ['int32 / int32 (true division)', () => div(i(), i()), 'float32', [1, 1]],
    ['exp(int32)', () => exp(array(new Int32Array([0]))), 'float32', [1]],
    ['bool + bool (or)', () => add(b(), array([true, true])), 'bool', [1, 1]],
    ['bool * bool (and)', () => mul(b(), array([true, true])), 'bool', [1, 0]],
    ['bool + 1', () => add(b(), 1), 'int32', [2, 1]],
    ['bool * 2.5', () => mul(b(), 2.5), 'float32', [2.5, 0]],
    ['bool + int32', () => add(b(), i()), 'int32', [8, -3]],
    ['sum(bool)', () => sum(b()), 'int32', [1]],
    ['mean(int32)', () => mean(i()), 'float32', [2]],
    ['maximum(int32, 0)', () => maximum(i(), 0), 'int32', [7, 0]],
    ['abs, sign, neg of int32', () => concatenate([abs(i()), sign(i()), neg(i())]), 'int32', [7, 3, 1, -1, -7, 3]],
    ['matmul(int32, int32) in float32', () => matmul(reshape2(i()), reshape2(i(), true)), 'float32', [49, -21, -21, 9]],
    ['where(bool, int32, float32)', () => where(b(), i(), f()), 'float32', [7, 2]],
    ['concatenate([bool, int32])', () => concatenate([b(), i()]), 'int32', [1, 0, 7, -3]],
    ['equal(int32, float32)', () => equal(i(), array([7, 3])), 'bool', [1, 0]],
  ] as const)('%s', async (_name, make, dtype, want) => {
    const [gpu, host, x] = await bothPaths(make as () => NDArray);
    expect(x.dtype).toBe(dtype);
    expect(gpu).toEqual(want);
    expect(host).toEqual(want);
  });
  it('bool - bool and -bool are DTypeErrors (NumPy), naming the fix', () => {
    expect(() => sub(array([true]), array([false]))).toThrow(DTypeError);
    expect(() => neg(array([true]))).toThrow(/logicalNot/);
  });
});
const reshape2 = (x: NDArray, col = false) => (col ? expandDims(x, 0) : expandDims(x, 1));

describe('int32 arithmetic wraps as two-s complement, on the GPU and the host', () => {
  it('add, sub, mul, square, maximum, neg, abs at random int32 values', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(int32Arb, int32Arb), { minLength: 1, maxLength: 40 }), async (pairs) => {
        const a = Int32Array.from(pairs, (p) => p[0]);
        const b = Int32Array.from(pairs, (p) => p[1]);
        const cases: Array<[string, (x: NDArray, y: NDArray) => NDArray, (x: number, y: number) => number]> = [
          ['add', add, (x, y) => I32(x + y)],
          ['sub', sub, (x, y) => I32(x - y)],
          ['mul', mul, (x, y) => Math.imul(x, y)],
          ['square', (x) => square(x), (x) => Math.imul(x, x)],
          ['maximum', maximum, Math.max],
          ['neg', (x) => neg(x), (x) => I32(-x)],
          ['abs', (x) => abs(x), (x) => I32(Math.abs(x))],
          ['sum', (x) => sum(x), () => I32(a.reduce((s, v) => s + v, 0))],
          ['max', (x) => max(x), () => Math.max(...a)],
          ['min', (x) => min(x), () => Math.min(...a)],
        ];
        for (const [name, op, ref] of cases) {
          const [gpu, host] = await bothPaths(() => op(array(a), array(b)));
          const want = name === 'sum' || name === 'max' || name === 'min' ? [ref(0, 0)] : Array.from(a, (x, k) => ref(x, b[k]!));
          expect(gpu, `${name} GPU`).toEqual(want);
          expect(host, `${name} host`).toEqual(want);
        }
      }),
      { numRuns: 8 },
    );
  });
  it('sums of int32 are exact past 2^24 (where float32 is not)', async () => {
    const x = full([3], 16777217, 'int32');
    const [gpu, host] = await bothPaths(() => sum(x));
    expect(gpu).toEqual([50331651]);
    expect(host).toEqual([50331651]);
    expect(Array.from(await arange(0, 5, 1, 'int32').data('int32'))).toEqual([0, 1, 2, 3, 4]);
  });
  it('astype: float32 to int32 truncates toward zero and saturates (NaN gives 0); to bool is x != 0 (NaN is true)', async () => {
    const x = [1.9, -1.9, 3e9, -3e9, NaN, Infinity, -0, 0.4];
    const [gi, hi] = await bothPaths(() => astype(array(x), 'int32'));
    const want = [1, -1, 2147483647, -2147483648, 0, 2147483647, 0, 0];
    expect(gi).toEqual(want);
    expect(hi).toEqual(want);
    const [gb, hb] = await bothPaths(() => astype(array(x), 'bool'));
    expect(gb).toEqual([1, 1, 1, 1, 1, 1, 0, 1]);
    expect(hb).toEqual(gb);
  });
});

/** Reference reduction over one axis in float64 (NaN propagates). */
function reduceRef(d: ArrayLike<number>, shape: number[], axis: number, kind: 'max' | 'min' | 'argmax' | 'argmin' | 'lse'): number[] {
  const [A, R, B] = around(shape, axis);
  const out: number[] = [];
  for (let a = 0; a < A; a++)
    for (let b = 0; b < B; b++) {
      const row = Array.from({ length: R }, (_, r) => d[(a * R + r) * B + b]!);
      if (kind === 'max') out.push(row.some(Number.isNaN) ? NaN : Math.max(...row));
      else if (kind === 'min') out.push(row.some(Number.isNaN) ? NaN : Math.min(...row));
      else if (kind === 'lse') {
        const m = Math.max(...row);
        out.push(Number.isFinite(m) ? m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0)) : m);
      } else {
        const nan = row.findIndex(Number.isNaN);
        if (nan >= 0) out.push(nan);
        else {
          const best = kind === 'argmax' ? Math.max(...row) : Math.min(...row);
          out.push(row.indexOf(best));
        }
      }
    }
  return out;
}

describe('max, min, argmax, argmin, logsumexp over an axis vs float64', () => {
  for (const kind of ['max', 'min', 'argmax', 'argmin', 'lse'] as const) {
    it(`${kind} on random shapes (ties and NaN included)`, async () => {
      await fc.assert(
        fc.asyncProperty(shapeArb(), seedArb, fc.boolean(), async (shape, seed, withNan) => {
          const r = rng(seed);
          const axis = Math.floor(r() * shape.length);
          // Values on a coarse grid, so ties happen; now and then a NaN.
          const d = Float32Array.from(randomF32(sizeOf(shape), seed, -4, 4), (v) => Math.round(v * 2) / 2);
          if (withNan && d.length > 1) d[Math.floor(r() * d.length)] = NaN;
          const op = (x: NDArray) =>
            kind === 'max'
              ? max(x, axis)
              : kind === 'min'
                ? min(x, axis)
                : kind === 'argmax'
                  ? argmax(x, axis)
                  : kind === 'argmin'
                    ? argmin(x, axis)
                    : logsumexp(x, axis);
          const [gpu, host, y] = await bothPaths(() => op(array(d, shape)));
          expect(y.shape).toEqual(shape.filter((_, i) => i !== axis));
          expect(y.dtype).toBe(kind.startsWith('arg') ? 'int32' : 'float32');
          const want = reduceRef(d, shape, axis, kind);
          const close = (got: number[], label: string) =>
            got.forEach((g, k) => {
              const w = want[k]!;
              if (Number.isNaN(w)) expect(g, `${label} ${k}`).toBeNaN();
              else if (kind === 'lse')
                expect(Math.abs(g - w), `${label} ${k}: ${g} vs ${w}`).toBeLessThanOrEqual(
                  4e-6 * Math.max(1, Math.abs(w)) * Math.log2(2 + shape[axis]!),
                );
              else expect(g, `${label} ${k}`).toBe(w);
            });
          close(gpu, 'GPU');
          close(host, 'host');
        }),
      );
    });
  }
  it('over several axes, all axes, and with keepdims', async () => {
    const d = randomF32(2 * 3 * 4, 5);
    const x = array(d, [2, 3, 4]);
    const want = Math.max(...d);
    expect(await max(x).item()).toBe(want);
    expect((await max(x, [0, 2], true).data()).length).toBe(3);
    expect(max(x, [0, 2], true).shape).toEqual([1, 3, 1]);
    expect(argmax(x).shape).toEqual([]);
    expect(await argmax(x).item()).toBe(d.indexOf(want));
    expect(argmax(x, -1, true).shape).toEqual([2, 3, 1]);
    expect(Array.from(await max(x, [0, 2]).data())).toEqual(
      [0, 1, 2].map((j) => Math.max(...[0, 1].flatMap((i) => [0, 1, 2, 3].map((k) => d[i * 12 + j * 4 + k]!)))),
    );
    expect(() => max(zeros([2, 0]), 1)).toThrow(ValueError);
    expect(() => argmax(zeros([0]))).toThrow(ValueError);
  });
  it('max, min near ±3e38 and argmax, argmin near ±3e38: exact, and a row of -Inf stays -Inf', async () => {
    const x = array([3.4e38, -3.4e38, 3.3e38, -Infinity, -Infinity, -Infinity], [2, 3]);
    expect(Array.from(await max(x, 1).data())).toEqual([Math.fround(3.4e38), -Infinity]);
    expect(Array.from(await min(x, 1).data())).toEqual([Math.fround(-3.4e38), -Infinity]);
    expect(Array.from(await argmax(x, 1).data())).toEqual([0, 0]);
    expect(Array.from(await argmin(x, 1).data())).toEqual([1, 0]);
  });
  it('logsumexp is exact for inputs near 3e38 and gives -Inf (not NaN) for a row of -Inf', async () => {
    const rows = [
      [3e38, 3e38],
      [-Infinity, -Infinity],
      [-3e38, -3e38],
      [0, -Infinity],
      [Infinity, 1],
    ];
    for (const host of [false, true]) {
      setHostEvaluation(host ? 1 << 20 : 0);
      const got = Array.from(await logsumexp(array(rows), 1).data());
      expect(got[0]).toBe(Math.fround(Math.fround(3e38) + Math.LN2) === Infinity ? Infinity : Math.fround(3e38));
      expect(got[1]).toBe(-Infinity);
      expect(got[2]).toBe(Math.fround(-3e38));
      expect(got[3]).toBe(0);
      expect(got[4]).toBe(Infinity);
    }
    // Its gradient is softmax, also where the max shift matters.
    const g = await grad((x: NDArray) => logsumexp(x))(array([1000, 1000, -Infinity])).data();
    expect(Array.from(g)).toEqual([0.5, 0.5, 0]);
  });
  it("max's VJP shares the cotangent equally among ties, as JAX's", async () => {
    const g = grad((x: NDArray) => sum(mul(max(x, 1), array([1, 2]))))(
      array([
        [1, 5, 5],
        [2, 2, 2],
      ]),
    );
    expect(Array.from(await g.data())).toEqual([0, 0.5, 0.5, 2 / 3, 2 / 3, 2 / 3].map(Math.fround));
  });
});

describe('take and takeAlongAxis vs a reference, with their scatter-add VJPs', () => {
  it('take: random shapes, axes and indices (repeated, negative), on both paths', async () => {
    await fc.assert(
      fc.asyncProperty(shapeArb(), seedArb, async (shape, seed) => {
        const r = rng(seed);
        const axis = Math.floor(r() * shape.length);
        const N = shape[axis]!;
        const idx = Int32Array.from({ length: 1 + Math.floor(r() * 9) }, () => Math.floor(r() * 2 * N) - N);
        const d = randomF32(sizeOf(shape), seed);
        const [gpu, host, y] = await bothPaths(() => take(array(d, shape), array(idx), axis));
        const [A, , B] = around(shape, axis);
        const want: number[] = [];
        for (let a = 0; a < A; a++) for (const i of idx) for (let b = 0; b < B; b++) want.push(d[(a * N + (i < 0 ? i + N : i)) * B + b]!);
        expect(y.shape).toEqual([...shape.slice(0, axis), idx.length, ...shape.slice(axis + 1)]);
        expect(gpu).toEqual(want);
        expect(host).toEqual(want);
        // The VJP adds every cotangent back where it was taken from (float64 reference; repeats add up).
        const w = randomF32(want.length, seed + 1);
        const [gg, gh] = await bothPaths(() => grad((x: NDArray) => sum(mul(array(w, y.shape), take(x, array(idx), axis))))(array(d, shape)));
        const acc = new Float64Array(d.length);
        let k = 0;
        for (let a = 0; a < A; a++) for (const i of idx) for (let b = 0; b < B; b++) acc[(a * N + (i < 0 ? i + N : i)) * B + b]! += w[k++]!;
        const tol = (v: number) => 4e-7 * Math.max(1, Math.abs(v)) * idx.length;
        gg.forEach((v, j) => expect(Math.abs(v - acc[j]!), `GPU grad ${j}`).toBeLessThanOrEqual(tol(acc[j]!)));
        gh.forEach((v, j) => expect(Math.abs(v - acc[j]!), `host grad ${j}`).toBeLessThanOrEqual(tol(acc[j]!)));
      }),
    );
  });
  it('takeAlongAxis picks one element per row (a label per example), and broadcasts the other axes', async () => {
    const logits = array([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const labels = array(new Int32Array([2, 0]), [2, 1]);
    const [gpu, host] = await bothPaths(() => takeAlongAxis(logits, labels, 1));
    expect(gpu).toEqual([3, 4]);
    expect(host).toEqual([3, 4]);
    const b = takeAlongAxis(array([[1, 2, 3]]), array(new Int32Array([0, 2]), [2, 1]), 1);
    expect(b.shape).toEqual([2, 1]);
    expect(Array.from(await b.data())).toEqual([1, 3]);
    const g = grad((x: NDArray) => sum(takeAlongAxis(x, array(new Int32Array([1, 1, 0, 1]), [2, 2]), 1)))(
      array([
        [1, 2],
        [3, 4],
      ]),
    );
    expect(Array.from(await g.data())).toEqual([0, 2, 1, 1]);
  });
  it('moves int32 and bool words bit for bit, NaN payloads too', async () => {
    const ints = array(new Int32Array([-2147483648, 2147483647, -1]));
    expect(Array.from(await take(ints, [2, 0]).data())).toEqual([-1, -2147483648]);
    const nan = new Float32Array(new Uint32Array([0x7fc01234, 0x3f800000]).buffer);
    const out = new Uint32Array((await take(array(nan), [0, 1]).data('float32')).buffer);
    expect(Array.from(out)).toEqual([0x7fc01234, 0x3f800000]);
    expect(Array.from(await take(array([true, false]), [1, 0, 0]).data())).toEqual([0, 1, 1]);
  });
  it('out-of-range indices: an IndexError where the indices are on the host, clamped where the GPU computed them', async () => {
    const x = array([10, 20, 30]);
    expect(() => take(x, [3])).toThrow(IndexError);
    expect(() => take(x, [-4])).toThrow(/index -4/);
    expect(() => takeAlongAxis(x, [5], 0)).toThrow(IndexError);
    // Computed on the GPU (not known on the host): clamped to [0, N - 1].
    setHostEvaluation(0);
    const idx = add(array(new Int32Array([0, 0])), array(new Int32Array([7, -9])));
    expect(Array.from(await take(x, idx).data())).toEqual([30, 10]);
    expect(() => take(x, array([0.5]))).toThrow(DTypeError);
  });
});

describe('where, shape ops and batched matmul', () => {
  it('where broadcasts its three arguments; gradients flow to the chosen side only', async () => {
    const c = array([[true], [false]]);
    const y = where(c, array([1, 2, 3]), 0);
    expect(y.shape).toEqual([2, 3]);
    expect(Array.from(await y.data())).toEqual([1, 2, 3, 0, 0, 0]);
    const [gx, gy] = grad((a: NDArray, b: NDArray) => sum(where(greater(a, 0), a, b)), { argnums: [0, 1] })(array([1, -1, 2]), array([5, 5, 5]));
    expect(Array.from(await gx.data())).toEqual([1, 0, 1]);
    expect(Array.from(await gy.data())).toEqual([0, 1, 0]);
  });
  it('expandDims, squeeze, stack, split, swapaxes, moveaxis, negative axes in transpose and slice', async () => {
    const x = array([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(expandDims(x, -1).shape).toEqual([2, 3, 1]);
    expect(expandDims(x, [0, 2]).shape).toEqual([1, 2, 1, 3]);
    expect(squeeze(expandDims(x, 1)).shape).toEqual([2, 3]);
    expect(() => squeeze(x, 0)).toThrow(/size 2, not 1/);
    expect(Array.from(await stack([x, x], -1).data())).toEqual([1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]);
    const [p, q] = split(x, [1], -1);
    expect(Array.from(await p!.data())).toEqual([1, 4]);
    expect(Array.from(await q!.data())).toEqual([2, 3, 5, 6]);
    expect(split(x, 3, 1).map((s) => s.shape)).toEqual([
      [2, 1],
      [2, 1],
      [2, 1],
    ]);
    expect(Array.from(await swapaxes(x, 0, -1).data())).toEqual([1, 4, 2, 5, 3, 6]);
    expect(moveaxis(zeros([2, 3, 4]), 0, -1).shape).toEqual([3, 4, 2]);
    expect(Array.from(await transpose(x, [-1, -2]).data())).toEqual([1, 4, 2, 5, 3, 6]);
    expect(Array.from(await slice(x, [0, -2], [2, 3]).data())).toEqual([2, 3, 5, 6]);
  });
  it('matmul over broadcast batch axes (B, H, T, D) @ (B, H, D, T) and (B, T, D) @ (D, E) matches float64, with gradients', async () => {
    const shapes: Array<[number[], number[]]> = [
      [
        [2, 3, 4, 5],
        [2, 3, 5, 4],
      ],
      [
        [2, 3, 4, 5],
        [5, 2],
      ],
      [
        [2, 1, 4, 5],
        [1, 3, 5, 2],
      ],
      [
        [3, 4],
        [2, 2, 4, 3],
      ],
    ];
    for (const [sa, sb] of shapes) {
      const da = randomF32(sizeOf(sa), 1);
      const db = randomF32(sizeOf(sb), 2);
      const y = matmul(array(da, sa), array(db, sb));
      const batch = sa.slice(0, -2).length >= sb.slice(0, -2).length ? sa.slice(0, -2) : sb.slice(0, -2);
      const bA = sa.slice(0, -2);
      const bB = sb.slice(0, -2);
      const full = batch.map((_, i) => Math.max(bA[bA.length - batch.length + i] ?? 1, bB[bB.length - batch.length + i] ?? 1));
      const [M, K, N] = [sa[sa.length - 2]!, sa[sa.length - 1]!, sb[sb.length - 1]!];
      expect(y.shape).toEqual([...full, M, N]);
      const got = await y.data();
      const count = sizeOf(full);
      const idxOf = (own: number[], z: number) => {
        // batch index z of the broadcast batch, mapped into an operand's own (broadcast) batch
        let rem = z;
        let off = 0;
        let stride = 1;
        for (let d = full.length - 1; d >= 0; d--) {
          const pos = rem % full[d]!;
          rem = Math.floor(rem / full[d]!);
          const od = own[own.length - full.length + d];
          if (od !== undefined) {
            off += (od === 1 ? 0 : pos) * stride;
            stride *= od;
          }
        }
        return off;
      };
      for (let z = 0; z < count; z++)
        for (let i = 0; i < M; i++)
          for (let j = 0; j < N; j++) {
            let s = 0;
            for (let k = 0; k < K; k++) s += da[idxOf(bA, z) * M * K + i * K + k]! * db[idxOf(bB, z) * K * N + k * N + j]!;
            expect(Math.abs(got[(z * M + i) * N + j]! - s)).toBeLessThan(1e-5);
          }
      const ga = grad((a: NDArray) => sum(matmul(a, array(db, sb))))(array(da, sa));
      expect(ga.shape).toEqual(sa);
    }
    expect(ones([2, 3]).dtype).toBe('float32');
  });
});

describe('grad and dtypes', () => {
  it('grad with respect to an int32 argument is a DTypeError naming it; an int32 output too', () => {
    expect(() => grad((x: NDArray) => sum(astype(x, 'float32')))(array(new Int32Array([1])))).toThrow(DTypeError);
    expect(() => grad((p: { w: NDArray; n: NDArray }) => sum(p.w))({ w: array([1]), n: array(new Int32Array([1])) })).toThrow(/at n/);
    expect(() => grad((x: NDArray) => sum(astype(x, 'int32')))(array([1.5]))).toThrow(/float32 output/);
  });
  it('integer data inside the loss gets no gradient and needs none', async () => {
    const idx = array(new Int32Array([1, 1]));
    const g = grad((w: NDArray, i: NDArray) => sum(take(w, i)))(array([1, 2, 3]), idx);
    expect(Array.from(await g.data())).toEqual([0, 2, 0]);
  });
});
