// A representative subset of the Node suite, run in headless Chromium with
// WebGPU (SwiftShader on CPU-only machines): device discovery in a browser,
// kernels, fusion, autodiff and the reference problem.
import { describe, it, expect } from 'vitest';
import {
  add,
  array,
  deviceInfo,
  gradOverFlatParams,
  grad,
  matmul,
  memoryStats,
  mul,
  randomNormal,
  square,
  sum,
  tanh,
  valueAndGrad,
  adam,
  applyUpdates,
  mean,
  sub,
  NDArray,
  setHostEvaluation,
} from '../../src/index';

const close = (got: ArrayLike<number>, want: number[], tol = 1e-5) => {
  expect(got.length).toBe(want.length);
  want.forEach((w, i) => expect(Math.abs(got[i]! - w)).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(w))));
};

describe('browser WebGPU', () => {
  it('finds an adapter through navigator.gpu', async () => {
    const info = await deviceInfo();
    expect(info.backend).toBe('browser');
    expect(info.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
  });

  it('solves the reference problem examples', async () => {
    close(await gradOverFlatParams([1, 0, 0], [[2, 3]]).data(), [8, 12, 4]);
    close(
      await gradOverFlatParams(
        [0, 0, 1],
        [
          [1, 0],
          [0, 1],
        ],
      ).data(),
      [2, 2, 4],
    );
  });

  it('solves them on the host too, with no GPU submission, when small-graph host evaluation is on', async () => {
    setHostEvaluation(1 << 15);
    try {
      const s0 = memoryStats();
      close(await gradOverFlatParams([1, 0, 0], [[2, 3]]).data(), [8, 12, 4], 0);
      close(
        await gradOverFlatParams(
          [0, 0, 1],
          [
            [1, 0],
            [0, 1],
          ],
        ).data(),
        [2, 2, 4],
        0,
      );
      expect(memoryStats().hostEvaluations - s0.hostEvaluations).toBe(2);
      expect(memoryStats().submissions).toBe(s0.submissions);
    } finally {
      setHostEvaluation(0);
    }
  });

  it('matches the closed form 2·[xᵀy; Σy] on a random problem', async () => {
    const n = 300,
      d = 7;
    const x = randomNormal([n, d], 1);
    const p = randomNormal([d + 1], 2);
    const [xs, ps, g] = await Promise.all([x.data(), p.data(), gradOverFlatParams(p, x).data()]);
    const want = new Array(d + 1).fill(0);
    for (let i = 0; i < n; i++) {
      let y = ps[d]!;
      for (let j = 0; j < d; j++) y += xs[i * d + j]! * ps[j]!;
      for (let j = 0; j < d; j++) want[j] += 2 * y * xs[i * d + j]!;
      want[d] += 2 * y;
    }
    close(g, want, 1e-4);
  });

  it('runs elementwise, broadcasting, matmul and sum kernels', async () => {
    const a = array([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    close(await add(a, array([10, 20, 30])).data(), [11, 22, 33, 14, 25, 36]);
    close(await matmul(a, array([[1], [0], [-1]])).data(), [-2, -2]);
    expect(await sum(square(a)).item()).toBe(91);
  });

  it('submits a chain of 20 ops once', async () => {
    let x = array([0.1, 0.2, 0.3]);
    const before = memoryStats().submissions;
    for (let i = 0; i < 20; i++) x = i % 2 ? tanh(x) : mul(x, 1.5);
    await x.data();
    expect(memoryStats().submissions - before).toBe(1);
  });

  it('differentiates a pytree and trains it with Adam', async () => {
    type P = { w: NDArray; b: NDArray };
    const x = randomNormal([64, 3], 3);
    const y = matmul(x, array([1, -2, 0.5]));
    const loss = (p: P) => mean(square(sub(add(matmul(x, p.w), p.b), y)));
    let params: P = { w: array([0, 0, 0]), b: array([0]) };
    const g = grad(loss)(params);
    expect(Object.keys(g).sort()).toEqual(['b', 'w']);
    expect(g.w.shape).toEqual([3]);
    const opt = adam(0.1);
    let state = opt.init(params);
    const first = await loss(params).item();
    let last = first;
    for (let i = 0; i < 60; i++) {
      const [l, gr] = valueAndGrad(loss)(params);
      const [u, s] = opt.update(gr, state, params);
      state = s;
      params = applyUpdates(params, u);
      if (i === 59) last = await l.item();
    }
    expect(last).toBeLessThan(first / 10);
  });
});
