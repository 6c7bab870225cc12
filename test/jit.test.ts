// jit: a recorded graph replayed over new inputs gives the eager numbers bit for bit, retraces
// per kind of input, keeps a bounded cache, uploads host data without leaving arrays behind,
// donates, and says why when a jitted function reads a value or uses a disposed array.
import { describe, expect, it } from 'vitest';
import {
  adam,
  add,
  applyUpdates,
  array,
  ConcretizationError,
  DisposedArrayError,
  jit,
  JIT_CACHE_SIZE,
  matmul,
  memoryStats,
  mul,
  NDArray,
  randomUniform,
  reshape,
  scale,
  sin,
  sub,
  sum,
  tree,
  valueAndGrad,
} from '../src/index';

import { loss, makeParams, values, type P } from './helpers/sine-mlp';

describe('jit', () => {
  it('gives the same loss and gradients as eager, bit for bit, and runs f once per kind of input', async () => {
    const params = makeParams(1);
    const x = randomUniform([64, 1], 5, -3, 3);
    const y = sin(x);
    let traces = 0;
    const counted = (p: P, x: NDArray, y: NDArray) => {
      traces++;
      return valueAndGrad(loss)(p, x, y);
    };
    const f = jit(counted);
    const eager = await values(valueAndGrad(loss)(params, x, y));
    for (let i = 0; i < 3; i++) expect(await values(f(params, x, y))).toEqual(eager);
    expect(traces).toBe(1);
    expect(f.cacheSize()).toBe(1);
    // A new batch size is a new kind of input: traced again, and both are kept.
    const x2 = randomUniform([33, 1], 6, -3, 3);
    const y2 = sin(x2);
    expect(await values(f(params, x2, y2))).toEqual(await values(valueAndGrad(loss)(params, x2, y2)));
    expect(traces).toBe(2);
    expect(await values(f(params, x, y))).toEqual(eager);
    expect(traces).toBe(2);
  });

  it('traces number leaves as 0-d arrays (no retrace), keys on static arguments, and keeps at most JIT_CACHE_SIZE recipes', async () => {
    let traces = 0;
    const f = jit(
      (x: NDArray, c: NDArray, opts: { power: number; tag?: number }) => {
        traces++;
        expect(c.shape).toEqual([]);
        let r = mul(x, c);
        for (let i = 1; i < opts.power; i++) r = matmul(reshape(r, [1, -1]), reshape(x, [-1, 1]));
        return sum(r);
      },
      { staticArgnums: 2 },
    );
    const x = array([1, 2, 3]);
    expect(await f(x, 2, { power: 1 }).item()).toBe(12);
    expect(await f(x, 3, { power: 1 }).item()).toBe(18);
    expect(await f(x, 2, { power: 2 }).item()).toBe(28);
    expect(await f(x, 0.5, { power: 1 }).item()).toBe(3);
    expect(traces).toBe(2);
    for (let c = 0; c < JIT_CACHE_SIZE + 5; c++) expect(await f(x, c, { power: 1, tag: c }).item()).toBe(6 * c);
    expect(f.cacheSize()).toBe(JIT_CACHE_SIZE);
  });

  it('takes host data as inputs, uploads it per call and frees it: live buffers stay flat with no dispose', async () => {
    const params = makeParams(11);
    const f = jit((p: P, xs: NDArray, ys: NDArray) => loss(p, reshape(xs, [-1, 1]), reshape(ys, [-1, 1])));
    const batch = (k: number) => {
      const xs = Float32Array.from({ length: 32 }, (_, i) => Math.sin(i * 7 + k));
      return [xs, xs.map((v) => Math.sin(3 * v))] as const;
    };
    const [xs0, ys0] = batch(0);
    const expected = await loss(params, reshape(array(xs0), [-1, 1]), reshape(array(ys0), [-1, 1])).item();
    expect(await f(params, xs0, ys0).item()).toBe(expected);
    const live: number[] = [];
    for (let i = 0; i < 300; i++) {
      const [xs, ys] = batch(i);
      const l = f(params, xs, ys);
      if (i % 50 === 49) {
        await l.item();
        live.push(memoryStats().liveBuffers);
      }
    }
    expect(Math.max(...live)).toBeLessThanOrEqual(live[0]! + 1); // a leak climbs; collection of earlier tests' garbage only lowers it
  });

  it('donateArgnums consumes the old params: a jitted SGD loop keeps memory flat with no dispose', async () => {
    const step = (p: P, x: NDArray, y: NDArray): [NDArray, P] => {
      const [l, g] = valueAndGrad(loss)(p, x, y);
      return [l, tree.map((w: NDArray, d: NDArray) => sub(w, scale(d, 0.05)), p, g) as P];
    };
    const x = randomUniform([64, 1], 21, -3, 3);
    const y = sin(x);
    const jstep = jit(step, { donateArgnums: 0 });
    let pe = makeParams(7);
    let pj = makeParams(7);
    const old = pj;
    const live: number[] = [];
    let first = 0;
    let last = 0;
    for (let i = 0; i < 400; i++) {
      const [le, ne] = step(pe, x, y);
      for (const w of Object.values(pe)) w.dispose(); // the eager twin frees by hand, so only jit's handling is measured
      pe = ne;
      const [lj, nj] = jstep(pj, x, y);
      pj = nj;
      if (i === 0) first = await lj.item();
      if (i % 100 === 99) {
        last = await lj.item();
        expect(last).toBe(await le.item());
        live.push(memoryStats().liveBuffers);
      }
    }
    expect(await values(pj)).toEqual(await values(pe));
    expect(last).toBeLessThan(first / 2);
    expect(() => old.w1.shape && jstep(old, x, y)).toThrow(DisposedArrayError);
    expect(old.w1.isDisposed).toBe(true);
    // Never above the first sample: earlier tests' forgotten arrays may be collected meanwhile (live falls), a leak would make it climb.
    expect(Math.max(...live)).toBeLessThanOrEqual(live[0]! + 2);
  });

  it('jits a whole Adam step (its count traced, not a key): one recipe for 150 steps, the eager losses to float32 rounding', async () => {
    const opt = adam(0.02);
    const x = randomUniform([64, 1], 31, -3, 3);
    const y = sin(x);
    let traces = 0;
    const step = jit(
      (p: P, s: unknown, xb: NDArray, yb: NDArray): [NDArray, P, unknown] => {
        traces++;
        const [l, g] = valueAndGrad(loss)(p, xb, yb);
        const [u, s2] = opt.update(g, s as unknown[], p);
        return [l, applyUpdates(p, u), s2];
      },
      { donateArgnums: [0, 1] },
    );
    let pe = makeParams(11);
    let se = opt.init(pe);
    let pj = makeParams(11);
    let sj: unknown = opt.init(pj);
    for (let i = 0; i < 150; i++) {
      const [le, g] = valueAndGrad(loss)(pe, x, y);
      const [u, s2] = opt.update(g, se, pe);
      se = s2;
      pe = applyUpdates(pe, u);
      const [lj, p2, s3] = step(pj, sj, x, y);
      pj = p2;
      sj = s3;
      if (i % 30 === 29) expect(await lj.item()).toBeCloseTo(await le.item(), 5);
    }
    expect(traces).toBe(1);
    expect(await (sj as { count: NDArray }[])[0]!.count.item()).toBe(150);
  });

  it('gives each output leaf its own handle, passes numbers through, and returns inputs and captured arrays as new handles', async () => {
    const c = array([10, 20]);
    const f = jit((x: NDArray) => {
      const s = add(x, c);
      return { a: s, b: s, n: 3, x, c };
    });
    const x = array([1, 2]);
    const out = f(x);
    out.a.dispose();
    expect(Array.from(await out.b.data())).toEqual([11, 22]);
    expect(out.n).toBe(3);
    out.x.dispose();
    expect(Array.from(await x.data())).toEqual([1, 2]);
    expect(Array.from(await out.c.data())).toEqual([10, 20]);
    c.dispose();
    expect(() => f(x)).toThrow(DisposedArrayError);
  });

  it('is a ConcretizationError to read a value inside, and a DisposedArrayError naming the leaf to pass a disposed array', async () => {
    let read: Promise<unknown> | undefined;
    const f = jit((x: NDArray) => {
      read = x.data();
      return sum(x);
    });
    f(array([1, 2]));
    await expect(read).rejects.toThrow(ConcretizationError);
    await expect(read).rejects.toThrow(/inside a jitted function/);
    const g = jit((p: { w: NDArray }) => sum(p.w));
    const w = array([1, 2]);
    w.dispose();
    expect(() => g({ w })).toThrow(/jit: \[0\]\.w|jit: .*w/);
  });
});
