// Compiled programs, jit's fast path (src/gpu/program.ts): once a recipe has
// been compiled, a call encodes its recorded dispatch list without building a
// graph. It must give the general path's numbers bit for bit, dispatch the
// same kernels, keep a donated loop's memory flat without the garbage
// collector, take host data, and step aside whenever the general path has
// something to decide.
import { afterEach, describe, expect, it } from 'vitest';
import {
  adam,
  applyUpdates,
  DisposedArrayError,
  evaluate,
  jit,
  logDispatches,
  matmul,
  memoryStats,
  mul,
  NDArray,
  randomUniform,
  reshape,
  sgd,
  sin,
  sum,
  valueAndGrad,
} from '../src/index';
import { programs } from '../src/gpu/program';
import { runtimeNow } from '../src/gpu/runtime';
import { loss, makeParams, values, type P } from './helpers/sine-mlp';

const opt = adam(0.01);
const step = (p: P, s: unknown, x: NDArray, y: NDArray): [NDArray, P, unknown] => {
  const [l, g] = valueAndGrad(loss)(p, x, y);
  const [u, s2] = opt.update(g, s as ReturnType<typeof opt.init>, p);
  return [l, applyUpdates(p, u), s2];
};

/** `steps` jitted Adam steps, donating params and state, reading the loss every `readEvery`. */
async function train(steps: number, readEvery: number, onStep?: (k: number) => void) {
  const x = randomUniform([64, 1], 5, -3, 3);
  const y = sin(x);
  const f = jit(step, { donateArgnums: [0, 1] });
  let p = makeParams(3);
  let s: unknown = opt.init(p);
  await evaluate(p, s, x, y);
  const losses: number[] = [];
  for (let k = 0; k < steps; k++) {
    const [l, p2, s2] = f(p, s, x, y);
    p = p2;
    s = s2;
    if ((k + 1) % readEvery === 0) losses.push(await l.item());
    onStep?.(k);
  }
  return { losses, params: await values(p), state: await values(s) };
}

afterEach(() => {
  programs.enabled = true;
});

describe('compiled programs (jit)', () => {
  it('run a jitted Adam step with the general path numbers bit for bit, and the same dispatches', async () => {
    programs.enabled = false;
    const general = await train(40, 1);
    const logGeneral = logDispatches(true);
    await train(3, 1);
    logDispatches(false);
    programs.enabled = true;
    const runs = programs.runs;
    const compiled = await train(40, 1);
    expect(programs.runs - runs).toBeGreaterThanOrEqual(38); // the first call or two take the general path
    expect(compiled.losses).toEqual(general.losses);
    expect(compiled.params).toEqual(general.params);
    expect(compiled.state).toEqual(general.state);
    const logCompiled = logDispatches(true);
    await train(3, 1);
    logDispatches(false);
    // The same kernels over the same grids (the init's dispatches are in both logs; the order may differ).
    expect([...logCompiled].sort()).toEqual([...logGeneral].sort());
  });

  it('keep a donated loop flat without the garbage collector: live buffers and bytes stay level, and bind groups are reused', async () => {
    // (Not the pool's size: the garbage collector may hand it an earlier test's arrays meanwhile.)
    const seen: Array<{ live: number; bytes: number; made: number; dispatches: number }> = [];
    await train(300, 10, (k) => {
      const made = runtimeNow()!.bindGroups.stats.misses;
      const { liveBuffers: live, liveBytes: bytes, dispatches } = memoryStats();
      if (k >= 100 && k % 50 === 0) seen.push({ live, bytes, made, dispatches });
    });
    for (const m of seen.slice(1)) {
      expect(m.live).toBeLessThanOrEqual(seen[0]!.live);
      expect(m.bytes).toBeLessThanOrEqual(seen[0]!.bytes);
    }
    // Each run takes the buffers it had before, so its bind groups repeat: over 200 steps, under
    // 10% are new (an earlier test's arrays, collected meanwhile, reshuffle the pool for a while; 0-3% seen).
    const [a, b] = [seen[0]!, seen[seen.length - 1]!];
    expect(b.made - a.made).toBeLessThan(0.1 * (b.dispatches - a.dispatches));
  });

  it('leave an unread, dropped loss nothing to pin: it goes to a small-value slot', async () => {
    const x = randomUniform([64, 1], 6, -3, 3);
    const y = sin(x);
    const f = jit((p: P, s: unknown) => step(p, s, x, y), { donateArgnums: [0, 1] });
    let p = makeParams(4);
    let s: unknown = opt.init(p);
    await evaluate(p, s, x, y);
    const live: number[] = [];
    for (let k = 0; k < 400; k++) {
      [, p, s] = f(p, s); // the loss is never read, never disposed
      if (k % 100 === 99) {
        await evaluate(p);
        live.push(memoryStats().liveBuffers);
      }
    }
    expect(live[3]).toBeLessThanOrEqual(live[0]!);
  });

  it('read a view of a loss in a small-value slot (a reshape) before the loss itself: its value, not an empty array (regression)', async () => {
    const x = randomUniform([64, 1], 7, -3, 3);
    const y = sin(x);
    const f = jit(step, { donateArgnums: [0, 1] });
    let p = makeParams(5);
    let s: unknown = opt.init(p);
    await evaluate(p, s, x, y);
    for (let k = 0; k < 3; k++) {
      const [l, p2, s2] = f(p, s, x, y);
      [p, s] = [p2, s2];
      // The loss went to a slot of the active batch; the views share its buffer but not its slot.
      const views = [reshape(l, [1, 1]), reshape(l, [1])];
      const got = await Promise.all(views.map((v) => v.data()));
      const want = await l.item();
      for (const g of got) expect(Array.from(g)).toEqual([want]);
      expect(Array.from(await reshape(l, [1, 1, 1]).data())).toEqual([want]); // after the batch was read
    }
  });

  it('take host data for a batch argument, uploaded each call, the same numbers as an array batch', async () => {
    const w = randomUniform([8, 1], 7);
    const f = jit((w: NDArray, xs: NDArray) => sum(mul(matmul(reshape(xs, [-1, 8]), w), 2)));
    const batches = Array.from({ length: 12 }, (_, k) => Float32Array.from({ length: 32 }, (_, i) => Math.sin(k * 31 + i)));
    const runs = programs.runs;
    const live0 = memoryStats().liveBuffers;
    const got: number[] = [];
    for (const b of batches) got.push(await f(w, b as unknown as NDArray).item());
    expect(programs.runs - runs).toBeGreaterThanOrEqual(10);
    expect(memoryStats().liveBuffers).toBeLessThanOrEqual(live0 + 1);
    programs.enabled = false;
    for (let k = 0; k < batches.length; k++) expect(await f(w, batches[k] as unknown as NDArray).item()).toBe(got[k]);
  });

  it('step aside for a pending input, and say which array was disposed', async () => {
    const c = randomUniform([65536], 8); // past the host backend's work limit
    const f = jit((x: NDArray) => sum(mul(x, c)));
    const x = randomUniform([65536], 9);
    await evaluate(c, x); // (a held random array left pending is recomputed inside its readers' kernels)
    const first = await f(x).item();
    expect(await f(x).item()).toBe(first);
    const runs = programs.runs;
    const pending = mul(x, 1); // not yet computed: the general path takes it
    expect(await f(pending).item()).toBe(first);
    expect(programs.runs).toBe(runs);
    expect(await f(x).item()).toBe(first);
    expect(programs.runs).toBe(runs + 1);
    c.dispose(); // a captured constant, gone: the program says so
    expect(() => f(x)).toThrow(DisposedArrayError);
  });

  it('donate inside the program: old params read as donated, new ones correct (SGD, one program run per call)', async () => {
    const o = sgd(0.1);
    const f = jit(
      (p: NDArray, x: NDArray) => {
        const [, g] = valueAndGrad((q: NDArray) => sum(mul(q, x)))(p);
        const [u] = o.update(g, o.init(p), p);
        return applyUpdates(p, u);
      },
      { donateArgnums: 0 },
    );
    const x = randomUniform([300], 10);
    let p = randomUniform([300], 11);
    const start = await p.data('float32');
    const xs = await x.data('float32');
    for (let k = 0; k < 5; k++) {
      const old = p;
      p = f(p, x);
      expect(() => old.shape && old.use()).toThrow(/donated/);
    }
    const got = await p.data('float32');
    got.forEach((v, i) => expect(v).toBeCloseTo(start[i]! - 0.5 * xs[i]!, 5));
  });

  it('return a view of a donated input (a slice) with its own values, call after call', async () => {
    const { exp, slice } = await import('../src/index');
    const f = jit((q: NDArray): [NDArray, NDArray] => [slice(q, [1024], [2048]), exp(q)], { donateArgnums: [0] });
    const data = (k: number) => Float32Array.from({ length: 2048 }, (_, i) => k * 10000 + i);
    const outs: NDArray[] = [];
    for (let k = 0; k < 4; k++) {
      const q = reshape(randomUniform([2048], k), [2048]);
      await evaluate(q);
      const fresh = (await import('../src/index')).array(data(k));
      await evaluate(fresh);
      outs.push(f(fresh)[0]);
      q.dispose();
    }
    for (let k = 0; k < 4; k++) {
      const got = await outs[k]!.data('float32');
      expect(got[0]).toBe(k * 10000 + 1024);
      expect(got[1023]).toBe(k * 10000 + 2047);
    }
  });

  it('count the dispatches of a 64-256-1 MLP Adam step: 9, jitted or eager', async () => {
    const { add, matmul, mean, randomNormal, scale, square, sub, tanh } = await import('../src/index');
    type Q = { w1: NDArray; b1: NDArray; w2: NDArray; b2: NDArray };
    const mlp = (q: Q, x: NDArray, y: NDArray) => mean(square(sub(add(matmul(tanh(add(matmul(x, q.w1), q.b1)), q.w2), q.b2), y)));
    const o = adam(0.003);
    const mstep = (q: Q, s: unknown, x: NDArray, y: NDArray): [NDArray, Q, unknown] => {
      const [l, g] = valueAndGrad(mlp)(q, x, y);
      const [u, s2] = o.update(g, s as ReturnType<typeof o.init>, q);
      return [l, applyUpdates(q, u), s2];
    };
    const x = randomUniform([256, 64], 12, -1, 1);
    const y = randomUniform([256, 1], 13, -1, 1);
    const count = async (f: typeof mstep) => {
      let q: Q = {
        w1: scale(randomNormal([64, 256], 1), 0.1),
        b1: randomNormal([256], 2),
        w2: scale(randomNormal([256, 1], 3), 0.05),
        b2: randomNormal([1], 4),
      };
      let s: unknown = o.init(q);
      await evaluate(q, s, x, y);
      for (let k = 0; k < 3; k++) [, q, s] = f(q, s, x, y);
      await evaluate(q, s);
      const log = logDispatches(true);
      const [l] = f(q, s, x, y);
      await l.item();
      logDispatches(false);
      return log.length;
    };
    // The first layer's matmul with its bias and tanh as the epilogue, the matvec to the output;
    // the loss (one kernel: the mean computes the squared error as it reads it), 2 elementwise
    // kernels back (the mean's seed is a constant inside them); the weight gradients (a matmul and
    // a matvec) and the bias gradients (2 one-pass sums), each running its parameter's Adam update
    // (moments, update and new parameter together) as its epilogue. Jitted, Adam's step count is
    // an array, written out by the first update's kernel (a constant learning rate keeps none);
    // eager, it is a number.
    expect(await count(jit(mstep, { donateArgnums: [0, 1] }))).toBeLessThanOrEqual(9);
    expect(await count(mstep)).toBeLessThanOrEqual(9);
  });
});
