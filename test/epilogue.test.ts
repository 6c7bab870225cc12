// Epilogues (src/gpu/epilogue.ts): an elementwise kernel that reads a matrix
// product or a one-pass reduction runs inside that kernel, on each result as
// it is stored. On every kernel variant (the policy is forced, then reset):
// the same bits as with epilogues off, one dispatch fewer where the product
// is one kernel call, and a dense layer against float64.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  add,
  div,
  evaluate,
  exp,
  logDispatches,
  matmul,
  max,
  mean,
  mul,
  randomNormal,
  relu,
  scale,
  setHostEvaluation,
  setKernelPolicy,
  sqrt,
  square,
  sub,
  sum,
  tanh,
  transpose,
  type KernelPolicy,
  type NDArray,
} from '../src/index';
import { matmulT } from '../src/array/linalg';

const AUTO: KernelPolicy = { matmul: 'auto', reduce: 'auto', matvec: 'auto', epilogue: 'auto' };
beforeAll(() => setHostEvaluation(0));
afterAll(() => {
  setHostEvaluation(1 << 15);
  setKernelPolicy(AUTO);
});

const policies: Array<Partial<KernelPolicy>> = [
  { matmul: 'auto', reduce: 'tree', matvec: 'thread' },
  { matmul: 'auto', reduce: 'strided', matvec: 'group' },
  { matmul: 'register', reduce: 'strided' },
  { matmul: 'shared', reduce: 'tree' },
  {}, // this adapter's own picks
];

/** `f`'s outputs, computed in one evaluation with epilogues on or off, and the dispatches it took. */
async function run(f: () => NDArray[], epilogue: 'auto' | 'off'): Promise<{ values: Float32Array[]; dispatches: number }> {
  setKernelPolicy({ epilogue });
  const outs = f();
  const log = logDispatches(true);
  await evaluate(...outs);
  const dispatches = log.length;
  logDispatches(false);
  setKernelPolicy({ epilogue: 'auto' });
  return { values: await Promise.all(outs.map((o) => o.data('float32') as Promise<Float32Array>)), dispatches };
}

/** With and without epilogues: the same bits; `fewer` dispatches fewer with them (null: at most as many). */
async function same(f: () => NDArray[], fewer: number | null): Promise<Float32Array[]> {
  const off = await run(f, 'off');
  const on = await run(f, 'auto');
  on.values.forEach((v, k) => expect(Array.from(v), `output ${k}`).toEqual(Array.from(off.values[k]!)));
  if (fewer === null) expect(on.dispatches).toBeLessThanOrEqual(off.dispatches);
  else expect(on.dispatches).toBe(off.dispatches - fewer);
  return on.values;
}

async function inputs(...shapes: number[][]): Promise<NDArray[]> {
  const xs = shapes.map((s, k) => randomNormal(s, 100 + k * 17 + s.length));
  await evaluate(...xs);
  return xs;
}

const EPS = 2 ** -23;

describe.each(policies)('kernel policy %o', (p) => {
  beforeAll(() => setKernelPolicy({ ...AUTO, ...p }));

  it('runs a dense layer (bias and tanh) in every matrix-product kernel, to float64 accuracy', async () => {
    // Aligned (main8), odd (main), thin (small, small4), matrix-vector (rows), vector-matrix (cols).
    for (const [M, K, N] of [
      [256, 64, 256],
      [37, 19, 23],
      [5, 8, 12],
      [5, 7, 13],
      [64, 32, 1],
      [1, 48, 64],
    ] as const) {
      const [x, w, b] = await inputs([M, K], [K, N], [N]);
      const [y] = await same(() => [tanh(add(matmul(x!, w!), b!))], 1);
      const [xv, wv, bv] = await Promise.all([x!.data('float32'), w!.data('float32'), b!.data('float32')]);
      for (let i = 0; i < M; i++)
        for (let j = 0; j < N; j++) {
          let s = bv[j]!;
          let bound = Math.abs(bv[j]!);
          for (let k = 0; k < K; k++) {
            s += xv[i * K + k]! * wv[k * N + j]!;
            bound += Math.abs(xv[i * K + k]! * wv[k * N + j]!);
          }
          const got = y![i * N + j]!;
          if (Math.abs(got - Math.tanh(s)) > 2 * (K + 1) * EPS * bound + 8 * EPS)
            throw new Error(`[${M},${K},${N}] (${i}, ${j}): got ${got}, want ${Math.tanh(s)}`);
        }
    }
  });

  it('runs an epilogue on transposed operands, broadcast inputs and a scalar', async () => {
    const [a, bm, row, col] = await inputs([24, 40], [36, 24], [36], [40, 1]);
    for (const [ta, tb] of [
      [true, true],
      [true, false],
    ] as const) {
      const b = tb ? bm! : transpose(bm!); // op(b) is (24, 36) either way
      await same(() => [relu(sub(mul(add(matmulT(a!, b, ta, tb), row!), col!), 0.5))], null);
    }
    await same(() => [scale(exp(sub(matmulT(a!, bm!, true, true), row!)), 0.25)], 1);
  });

  it('writes an optimizer-style update and its moments from the weight gradient kernel', async () => {
    // g = x^T d, then Adam-like moments and the new parameter, all three outputs.
    for (const [R, K, N] of [
      [64, 32, 48],
      [50, 9, 7],
      [40, 16, 1],
    ] as const) {
      const [x, d, pm, m, v] = await inputs([R, K], [R, N], [K, N], [K, N], [K, N]);
      const v0 = square(v!);
      await evaluate(v0);
      await same(() => {
        const g = matmulT(x!, d!, true, false);
        const m2 = add(scale(m!, 0.9), scale(g, 0.1));
        const v2 = add(scale(v0, 0.99), scale(square(g), 0.01));
        return [sub(pm!, div(scale(m2, 0.01), add(sqrt(v2), 1e-8))), m2, v2];
      }, 1);
    }
  });

  it('runs an epilogue after one-pass sums, means and maxima', async () => {
    const [a, c, d, e] = await inputs([200, 12], [12], [77, 5], [5]);
    await same(() => [relu(add(mul(sum(a!, 0), c!), 0.1))], 1);
    await same(() => [exp(sub(scale(mean(d!, 0), 3), e!))], 1);
    await same(() => [tanh(add(max(a!, 0), c!))], 1);
    // Rows of 300: one pass with a workgroup tree, two passes (no epilogue) without.
    const [f, g] = await inputs([6, 300], [6]);
    await same(() => [mul(sum(f!, 1), g!)], null);
  });

  it('leaves a product a user still holds pending, with its inputs, and computes it when read', async () => {
    const [x, w, b] = await inputs([48, 20], [20, 32], [32]);
    const [xv, wv] = await Promise.all([x!.data('float32'), w!.data('float32')]);
    setKernelPolicy({ epilogue: 'off' });
    const yOff = await matmul(x!, w!).data('float32');
    setKernelPolicy({ epilogue: 'auto' });
    const y = matmul(x!, w!); // held, not returned: the tanh's kernel computes it as its epilogue
    const z = tanh(add(y, b!));
    const log = logDispatches(true);
    await evaluate(z);
    logDispatches(false);
    expect(log).toHaveLength(1);
    const got = await y.data('float32'); // computed now, on its own
    expect(Array.from(got)).toEqual(Array.from(yOff));
    expect(Math.abs(got[5 * 32 + 7]! - xv.slice(5 * 20, 6 * 20).reduce((a, v, k) => a + v * wv[k * 32 + 7]!, 0))).toBeLessThan(1e-5);
  });

  it('keeps a product that is read elsewhere or returned in memory', async () => {
    const [x, w] = await inputs([48, 20], [20, 32]);
    // Read by two kernels; returned with a reader.
    await same(() => {
      const y = matmul(x!, w!);
      return [exp(y), tanh(y)];
    }, 0);
    await same(() => {
      const y = matmul(x!, w!);
      return [y, tanh(y)];
    }, 0);
  });
});
