// Faults: a lost device, an array too large for the device, and concurrent
// evaluations. Each must end in a typed error or a correct result, and the
// library must keep working afterwards.
import { describe, expect, it } from 'vitest';
import {
  add, array, DeviceLostError, gradOverFlatParams, init, matmul, memoryStats, mul, OutOfMemoryError, randomNormal,
  reinit, sum, valueAndGrad, square, zeros, NDArray, deviceInfo,
} from '../src/index';

describe('concurrency', () => {
  it('two grad computations started before either is awaited give independent, correct results', async () => {
    const g1 = gradOverFlatParams([1, 0, 0], [[2, 3]]);
    const g2 = gradOverFlatParams([0, 0, 1], [[1, 0], [0, 1]]);
    const [a, b] = await Promise.all([g2.data(), g1.data()]);
    expect(Array.from(b)).toEqual([8, 12, 4]);
    expect(Array.from(a)).toEqual([2, 2, 4]);
  });

  it('readbacks interleaved with new work', async () => {
    const x = randomNormal([64, 64], 1);
    const pending: Array<Promise<Float32Array>> = [];
    let y = x;
    for (let i = 0; i < 8; i++) {
      y = add(matmul(y, x), 1);
      pending.push(sum(y).data()); // read while later work is still being built
    }
    const got = await Promise.all(pending);
    // Recompute sequentially and compare: same graph, same kernels, same numbers.
    let z = x;
    for (let i = 0; i < 8; i++) {
      z = add(matmul(z, x), 1);
      expect((await sum(z).data())[0]).toBe(got[i]![0]);
    }
  });
});

describe('too large for the device', () => {
  it('throws OutOfMemoryError naming the size and the limit, and keeps working', async () => {
    const limit = (await deviceInfo()).limits.maxStorageBufferBindingSize;
    const n = Math.floor(limit / 4) + 1024;
    const before = memoryStats().liveBuffers;
    const big = zeros([n]);
    await expect(big.data()).rejects.toThrow(OutOfMemoryError);
    await expect(big.data()).rejects.toThrow(new RegExp(`${n * 4} bytes.*${limit}`));
    expect(memoryStats().liveBuffers).toBeLessThanOrEqual(before); // a late finalizer may free others meanwhile
    expect(await sum(array([1, 2, 3])).item()).toBe(6);
  });
});

describe('device loss', () => {
  it('the next op throws DeviceLostError; reinit() gives a working device; host copies survive', async () => {
    const ctx = await init();
    const params = { w: array([1, 2]), b: array([0.5]) };
    const x = array([[1, -1]]);
    const loss = (p: typeof params) => sum(square(add(matmul(x, p.w), p.b)));
    const [l] = valueAndGrad(loss)(params);
    const onHost = await params.w.data();
    expect(await l.item()).toBeCloseTo(0.25, 6);
    ctx.device.destroy();
    await new Promise((r) => setTimeout(r, 50)); // device.lost resolves asynchronously
    expect(() => add(params.w, 1)).toThrow(DeviceLostError);
    expect(() => mul(x, 2)).toThrow(/lost/);
    await reinit();
    // Arrays on the old device are gone; values read to the host are not.
    const w = array(onHost);
    expect(Array.from(await mul(w, 2).data())).toEqual([2, 4]);
    await expect(sum(params.b as NDArray).data()).rejects.toThrow(DeviceLostError);
  });
});

describe('debugNans', () => {
  it('names the first primitive that produced a NaN; off again, NaN just propagates', async () => {
    const { setDebugNans, log, sqrt, NanError } = await import('../src/index');
    const x = array([1, -1, 4]);
    const f = () => sum(mul(sqrt(add(x, 0)), 2)); // sqrt(-1) is the first NaN
    setDebugNans(true);
    try {
      await expect(f().data()).rejects.toThrow(NanError);
      await expect(f().data()).rejects.toThrow(/primitive 'sqrt' produced NaN/);
      expect(await sum(log(array([1, 2]))).item()).toBeCloseTo(Math.log(2), 6); // NaN-free work passes
    } finally {
      setDebugNans(false);
    }
    expect(Number.isNaN(await f().item())).toBe(true);
  });
});

describe('vjp', () => {
  it('reading the gradients of one vjpFn call costs one submission', async () => {
    const { vjp, memoryStats: stats, ones } = await import('../src/index');
    const a = randomNormal([8, 5], 1);
    const b = randomNormal([5, 3], 2);
    const [out, vjpFn] = vjp((p: NDArray, q: NDArray) => matmul(p, q), a, b);
    const [da, db] = vjpFn(ones(out.shape)) as [NDArray, NDArray];
    const before = stats().submissions;
    await da.data();
    await db.data();
    expect(stats().submissions - before).toBe(1);
  });
});
