// On-device loops (foriLoop, scan): the body recorded once and replayed per
// iteration gives the eager loop's numbers bit for bit, in one submission (per
// LOOP_CHUNK_NODES nodes), keeps nothing of the iterations but the last carry,
// says which carry leaf changed type, and unrolls inside grad and jit.
import { afterEach, describe, expect, it } from 'vitest';
import {
  adam,
  add,
  applyUpdates,
  DTypeError,
  evaluate,
  foriLoop,
  grad,
  jit,
  LOOP_CHUNK_NODES,
  logDispatches,
  memoryStats,
  mul,
  NDArray,
  randomUniform,
  reshape,
  scale,
  scan,
  setHostEvaluation,
  ShapeError,
  sin,
  slice,
  stack,
  sub,
  sum,
  tree,
  TreeStructureError,
  valueAndGrad,
  array,
  astype,
} from '../src/index';

import { loss, makeParams, values, type P } from './helpers/sine-mlp';

const sgd = (p: P, x: NDArray, y: NDArray): [P, NDArray] => {
  const [l, g] = valueAndGrad(loss)(p, x, y);
  return [tree.map((w: NDArray, d: NDArray) => sub(w, scale(d, 0.05)), p, g) as P, l];
};

afterEach(() => setHostEvaluation(32768));

describe('foriLoop', () => {
  it('trains 60 SGD steps with the eager numbers bit for bit, in one submission, keeping only the last carry', async () => {
    setHostEvaluation(0);
    const x = randomUniform([64, 1], 5, -3, 3);
    const y = sin(x);
    const p0 = makeParams(2);
    await evaluate(p0, x, y);
    let pe = p0;
    for (let i = 0; i < 60; i++) pe = sgd(pe, x, y)[0];
    const eager = await values(pe);

    await evaluate();
    const before = memoryStats();
    const pl = foriLoop(0, 60, (_i, p: P) => sgd(p, x, y)[0], p0);
    const after = memoryStats();
    expect(after.submissions - before.submissions).toBe(1);
    expect(await values(pl)).toEqual(eager);
    await evaluate();
    // The four new params, x and y (small arrays read back live on the host until used again), at
    // most one small-value batch: nothing of the 60 iterations' intermediates stays.
    expect(memoryStats().liveBuffers - before.liveBuffers).toBeLessThanOrEqual(4 + 2 + 1);
    expect(p0.w1.isDisposed).toBe(false); // the initial carry is the caller's
  });

  it('passes i as an int32 0-d array, turns a number carry into an array, and returns init for an empty range', async () => {
    const seen: string[] = [];
    const total = foriLoop(
      3,
      8,
      (i, acc: NDArray) => {
        seen.push(`${i.dtype}${JSON.stringify(i.shape)}`);
        return add(acc, i);
      },
      0 as unknown as NDArray,
    );
    expect(seen).toEqual(['int32[]']); // traced once
    expect(total.dtype).toBe('float32');
    expect(await total.item()).toBe(3 + 4 + 5 + 6 + 7);
    const init = { a: array([1, 2]) };
    expect(foriLoop(5, 5, () => ({ a: array([9, 9]) }), init)).toBe(init);
  });

  it('names the carry leaf whose structure, shape or dtype the body changed', () => {
    const c = { w: array([1, 2]), n: array([3]) };
    expect(() => foriLoop(0, 2, (_i, t: typeof c) => ({ w: t.w }) as typeof c, c)).toThrow(TreeStructureError);
    expect(() => foriLoop(0, 2, (_i, t) => ({ ...t, w: reshape(t.w, [2, 1]) }), c)).toThrow(
      /foriLoop: the body returned w with shape \[2, 1\]; it went in as \[2\]/,
    );
    expect(() => foriLoop(0, 2, (_i, t) => ({ ...t, w: reshape(t.w, [2, 1]) }), c)).toThrow(ShapeError);
    expect(() => foriLoop(0, 2, (_i, t) => ({ ...t, n: astype(t.n, 'int32') }), c)).toThrow(DTypeError);
    expect(() => foriLoop(0, 2, (_i, t) => ({ ...t, n: astype(t.n, 'int32') }), c)).toThrow(/n as int32; it went in as float32/);
    expect(c.w.isDisposed).toBe(false);
  });

  it('cuts a loop past LOOP_CHUNK_NODES nodes into whole-iteration submissions with the same result', async () => {
    setHostEvaluation(0);
    const start = array([0.5, -1, 2]);
    await evaluate(start);
    const body = (_i: NDArray, c: NDArray) => add(scale(c, 0.5), 1); // converges to 2
    const iterations = Math.ceil((2.5 * LOOP_CHUNK_NODES) / 4);
    const before = memoryStats().submissions;
    const out = foriLoop(0, iterations, body, start);
    const submissions = memoryStats().submissions - before;
    expect(submissions).toBeGreaterThanOrEqual(2);
    expect(submissions).toBeLessThanOrEqual(4);
    expect(Array.from(await out.data())).toEqual([2, 2, 2]);
  });
});

describe('scan', () => {
  it('trains one step per stacked minibatch, returning the per-step losses, the eager numbers bit for bit in one submission', async () => {
    setHostEvaluation(0);
    const K = 12;
    const X = randomUniform([K, 32, 1], 9, -3, 3);
    const Y = sin(X);
    const p0 = makeParams(4);
    await evaluate(p0, X, Y);
    // The eager twin slices exactly as scan does.
    let pe2 = p0;
    const eager2: number[] = [];
    for (let k = 0; k < K; k++) {
      const [next, l] = sgd(pe2, reshape(slice(X, [k], [k + 1]), [32, 1]), reshape(slice(Y, [k], [k + 1]), [32, 1]));
      pe2 = next;
      eager2.push(await l.item());
    }
    await evaluate();
    const before = memoryStats().submissions;
    const [pf, losses] = scan((p: P, [x, y]: NDArray[]) => sgd(p, x!, y!), p0, [X, Y]);
    expect(memoryStats().submissions - before).toBe(1);
    expect(losses.shape).toEqual([K]);
    expect(Array.from(await losses.data())).toEqual(eager2);
    expect(await values(pf)).toEqual(await values(pe2));
    expect(eager2[K - 1]).toBeLessThan(eager2[0]!);
  });

  it('runs Adam inside the body (its step count carried on the device), 40 steps as the eager loop to float32 rounding', async () => {
    const opt = adam(0.02);
    const K = 40;
    const X = randomUniform([K, 32, 1], 13, -3, 3);
    const Y = sin(X);
    let pe = makeParams(6);
    let se = opt.init(pe);
    const eager: number[] = [];
    for (let k = 0; k < K; k++) {
      const [l, g] = valueAndGrad(loss)(pe, reshape(slice(X, [k], [k + 1]), [32, 1]), reshape(slice(Y, [k], [k + 1]), [32, 1]));
      const [u, s2] = opt.update(g, se, pe);
      se = s2;
      pe = applyUpdates(pe, u);
      eager.push(await l.item());
    }
    const p0 = makeParams(6);
    const before = memoryStats().submissions;
    const [[pf, sf], losses] = scan(
      ([p, s]: [P, unknown], [x, y]: NDArray[]): [[P, unknown], NDArray] => {
        const [l, g] = valueAndGrad(loss)(p, x!, y!);
        const [u, s2] = opt.update(g, s as unknown[], p);
        return [[applyUpdates(p, u), s2], l];
      },
      [p0, opt.init(p0)] as [P, unknown],
      [X, Y],
    );
    expect(memoryStats().submissions - before).toBeLessThanOrEqual(1);
    const got = Array.from(await losses.data());
    got.forEach((v, k) => expect(v).toBeCloseTo(eager[k]!, 5));
    expect(await (sf as { count: NDArray }[])[0]!.count.item()).toBe(K);
    const want = (await values(pe)).flat();
    (await values(pf)).flat().forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 4));
  });

  it("dispatches about what a jitted step does per iteration: a carry is written once, by the kernel that computes it, and read from memory by the next iteration's", async () => {
    const opt = adam(0.02);
    const body = ([p, s]: [P, unknown], [x, y]: NDArray[]): [[P, unknown], NDArray] => {
      const [l, g] = valueAndGrad(loss)(p, x!, y!);
      const [u, s2] = opt.update(g, s as unknown[], p);
      return [[applyUpdates(p, u), s2], l];
    };
    const count = async (K: number) => {
      const X = randomUniform([K, 32, 1], 13, -3, 3);
      const Y = sin(X);
      const p0 = makeParams(6);
      const s0 = opt.init(p0);
      await evaluate(X, Y, p0, s0);
      const log = logDispatches(true);
      const [, losses] = scan(body, [p0, s0] as [P, unknown], [X, Y]);
      await losses.data();
      logDispatches(false);
      return log.length;
    };
    const perIteration = ((await count(8)) - (await count(4))) / 4;
    const step = jit((p: P, s: unknown, x: NDArray, y: NDArray) => body([p, s], [x, y]));
    const p0 = makeParams(6);
    const s0 = opt.init(p0);
    const [x, y] = [randomUniform([32, 1], 3, -3, 3), randomUniform([32, 1], 4, -3, 3)];
    await evaluate(p0, s0, x, y);
    for (let k = 0; k < 2; k++) await step(p0, s0, x, y)[1].item(); // compiled from the second call
    const log = logDispatches(true);
    await step(p0, s0, x, y)[1].item();
    logDispatches(false);
    // + slicing x[k] and y[k] (copies here: small arrays are not viewed), the loss's pad into the
    // stacked ys and its share of their sum (17.25 against 14 jitted here; 25 when the next
    // iteration computed each carry again or a kernel of its own wrote it)
    expect(perIteration).toBeLessThanOrEqual(log.length + 4);
  });

  it('takes a pytree of xs, number ys, length without xs, and gives empty ys for length 0', async () => {
    const xs = {
      a: array([
        [1, 2],
        [3, 4],
        [5, 6],
      ]),
      b: array([10, 20, 30]),
    };
    const [c, ys] = scan((acc: NDArray, x: { a: NDArray; b: NDArray }) => [add(acc, add(sum(x.a), x.b)), { s: acc, one: 1 }], array(0), xs);
    expect(await c.item()).toBe(3 + 7 + 11 + 60);
    expect(Array.from(await ys.s.data())).toEqual([0, 13, 40]);
    expect(Array.from(await (ys.one as unknown as NDArray).data())).toEqual([1, 1, 1]);
    const [c2, counts] = scan((n: NDArray) => [add(n, 1), n], array(0), null, 4);
    expect(await c2.item()).toBe(4);
    expect(Array.from(await counts.data())).toEqual([0, 1, 2, 3]);
    const [c3, none] = scan((n: NDArray, x: NDArray) => [add(n, sum(x)), scale(x, 2)], array(7), array([], [0, 5]));
    expect(await c3.item()).toBe(7);
    expect(none.shape).toEqual([0, 5]);
    expect(() => scan((n: NDArray) => [n, n], array(0), [array([1, 2]), array([1, 2, 3])])).toThrow(ShapeError);
  });

  it('unrolls inside grad (gradients through the loop) and inside jit (recorded unrolled)', async () => {
    const p = array(2);
    // d/dp of p^3 through a carried product: 3 p^2 = 12.
    const cube = (q: NDArray) => foriLoop(0, 3, (_i, c: NDArray) => mul(c, q), array(1));
    expect(await grad(cube)(p).item()).toBe(12);
    // d/dq sum_k q * x_k = sum x.
    const xs = array([1, 2, 3, 4]);
    const dot = (q: NDArray) => scan((c: NDArray, x: NDArray) => [add(c, mul(q, x)), c], array(0), xs)[0];
    expect(await grad(dot)(p).item()).toBe(10);
    const jitted = jit((q: NDArray) => scan((c: NDArray, x: NDArray) => [mul(c, q), c], array(1), xs));
    const [last, hist] = jitted(p);
    expect(await last.item()).toBe(16);
    expect(Array.from(await hist.data())).toEqual([1, 2, 4, 8]);
    expect(Array.from(await stack([last]).data())).toEqual([16]);
  });
});
