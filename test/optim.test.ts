// Optimizers against float64 CPU implementations of Optax's published update
// equations, donation semantics, structure errors, and flat memory over a
// long training loop.
import { describe, expect, it } from 'vitest';
import {
  adam,
  adamw,
  applyUpdates,
  array,
  chain,
  clipByGlobalNorm,
  cosineDecaySchedule,
  DisposedArrayError,
  memoryStats,
  NDArray,
  randomNormal,
  randomUniform,
  scaleByLearningRate,
  sgd,
  sin,
  square,
  sub,
  add,
  matmul,
  mean,
  tanh,
  scale,
  TreeStructureError,
  valueAndGrad,
  type GradientTransformation,
} from '../src/index';

type Tree = { a: NDArray; nested: { b: NDArray } };
const shapes = { a: [7], b: [4, 5] }; // 7: the one-per-thread Adam kernel; 20: the four-per-thread one

function rng(seed: number) {
  let s = seed;
  return () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
}
function host(seed: number): { a: number[]; b: number[] } {
  const r = rng(seed);
  return { a: Array.from({ length: 7 }, r), b: Array.from({ length: 20 }, r) };
}
const toTree = (h: { a: number[]; b: number[] }): Tree => ({ a: array(h.a, shapes.a), nested: { b: array(h.b, shapes.b) } });

/** Run `steps` updates on the GPU and return the params after each step. */
async function runGpu(opt: GradientTransformation<any>, p0: { a: number[]; b: number[] }, grads: Array<{ a: number[]; b: number[] }>) {
  let params = toTree(p0);
  let state = opt.init(params);
  const out: Array<{ a: Float32Array; b: Float32Array }> = [];
  for (const g of grads) {
    const [u, s] = opt.update(toTree(g), state, params);
    state = s;
    params = applyUpdates(params, u) as Tree;
    out.push({ a: await params.a.data('float32'), b: await params.nested.b.data('float32') });
  }
  return out;
}

type Ref = (p: number[], g: number[], st: Record<string, number[]>, t: number) => number[];
function runRef(update: Ref, p0: { a: number[]; b: number[] }, grads: Array<{ a: number[]; b: number[] }>) {
  const params = { a: [...p0.a], b: [...p0.b] };
  const st: Record<'a' | 'b', Record<string, number[]>> = { a: {}, b: {} };
  return grads.map((g, t) => {
    for (const k of ['a', 'b'] as const) {
      const u = update(params[k], g[k], st[k], t + 1);
      params[k] = params[k].map((x, i) => x + u[i]!);
    }
    return { a: [...params.a], b: [...params.b] };
  });
}

function compare(gpu: Array<{ a: Float32Array; b: Float32Array }>, ref: Array<{ a: number[]; b: number[] }>, tol = 2e-5) {
  gpu.forEach((step, t) => {
    for (const k of ['a', 'b'] as const) {
      step[k].forEach((v, i) => {
        const want = ref[t]![k][i]!;
        if (Math.abs(v - want) > tol * Math.max(1, Math.abs(want))) throw new Error(`step ${t} ${k}[${i}]: ${v} vs ${want}`);
      });
    }
  });
}

const p0 = host(1);
const grads = [2, 3, 4, 5, 6].map(host);
const norm = (g: number[]) => Math.sqrt(g.reduce((s, x) => s + x * x, 0));

describe('optimizers match float64 Optax equations', () => {
  it('sgd', async () =>
    compare(
      await runGpu(sgd(0.1), p0, grads),
      runRef((_, g) => g.map((x) => -0.1 * x), p0, grads),
    ));

  it('sgd with momentum and nesterov', async () => {
    for (const nesterov of [false, true]) {
      const ref: Ref = (_, g, st) => {
        const tr = g.map((x, i) => x + 0.9 * (st.tr?.[i] ?? 0));
        st.tr = tr;
        const u = nesterov ? g.map((x, i) => x + 0.9 * tr[i]!) : tr;
        return u.map((x) => -0.05 * x);
      };
      compare(await runGpu(sgd(0.05, { momentum: 0.9, nesterov }), p0, grads), runRef(ref, p0, grads));
    }
  });

  const adamRef =
    (lr: (t: number) => number, wd = 0): Ref =>
    (p, g, st, t) => {
      const [b1, b2, eps] = [0.9, 0.999, 1e-8];
      st.m = g.map((x, i) => b1 * (st.m?.[i] ?? 0) + (1 - b1) * x);
      st.v = g.map((x, i) => b2 * (st.v?.[i] ?? 0) + (1 - b2) * x * x);
      return st.m.map((m, i) => {
        const u = m / (1 - b1 ** t) / (Math.sqrt(st.v![i]! / (1 - b2 ** t)) + eps);
        return -lr(t - 1) * (u + wd * p[i]!);
      });
    };

  it('adam (fused kernel)', async () =>
    compare(
      await runGpu(adam(0.01), p0, grads),
      runRef(
        adamRef(() => 0.01),
        p0,
        grads,
      ),
    ));
  it('adam with a schedule', async () => {
    const sched = (step: number) => 0.1 / (1 + step);
    compare(await runGpu(adam(sched), p0, grads), runRef(adamRef(sched), p0, grads));
  });
  it("cosineDecaySchedule follows Optax's formula, and drives adam", async () => {
    const sched = cosineDecaySchedule(0.1, 4, 0.2);
    // optax.cosine_decay_schedule(0.1, 4, alpha=0.2) at steps 0..5
    const want = [0.1, 0.08828427, 0.06, 0.03171573, 0.02, 0.02];
    want.forEach((w, k) => expect(sched(k)).toBeCloseTo(w, 7));
    expect(() => cosineDecaySchedule(0.1, 0)).toThrow(/decaySteps/);
    compare(await runGpu(adam(sched), p0, grads), runRef(adamRef(sched), p0, grads));
  });
  it('adamw', async () =>
    compare(
      await runGpu(adamw(0.01, { weightDecay: 0.1 }), p0, grads),
      runRef(
        adamRef(() => 0.01, 0.1),
        p0,
        grads,
      ),
    ));

  it('clipByGlobalNorm chained with sgd', async () => {
    const maxNorm = 1.5;
    const gpu = await runGpu(chain(clipByGlobalNorm(maxNorm), scaleByLearningRate(0.1)), p0, grads);
    const ref = grads.map(() => null);
    const params = { a: [...p0.a], b: [...p0.b] };
    const want = ref.map((_, t) => {
      const g = grads[t]!;
      const n = norm([...g.a, ...g.b]);
      const f = n < maxNorm ? 1 : maxNorm / n;
      params.a = params.a.map((x, i) => x - 0.1 * f * g.a[i]!);
      params.b = params.b.map((x, i) => x - 0.1 * f * g.b[i]!);
      return { a: [...params.a], b: [...params.b] };
    });
    compare(gpu, want);
  });
});

describe('optimizer contracts', () => {
  it('update consumes grads and state; applyUpdates consumes params and updates', async () => {
    const params = toTree(p0);
    const opt = adam(0.1);
    const state = opt.init(params);
    const g = toTree(grads[0]!);
    const [u, s2] = opt.update(g, state, params);
    await expect(g.a.data('float32')).rejects.toThrow(DisposedArrayError);
    await expect(g.a.data('float32')).rejects.toThrow(/consumed by optimizer.update/);
    const next = applyUpdates(params, u) as Tree;
    await expect(params.a.data('float32')).rejects.toThrow(/consumed by applyUpdates/);
    expect((await next.a.data('float32')).length).toBe(7);
    expect(Array.isArray(s2)).toBe(true);
  });

  it("keeps Optax's state: a constant learning rate has none, a schedule its step count", () => {
    const params = toTree(p0);
    expect(scaleByLearningRate(0.1).init(params)).toEqual({});
    expect(scaleByLearningRate(() => 0.1).init(params)).toEqual({ count: 0 });
    const [adamState, lrState] = adam(0.1).init(params) as [{ count: number }, object];
    expect(adamState.count).toBe(0);
    expect(lrState).toEqual({});
    expect(() => scaleByLearningRate(0.1).update(toTree(grads[0]!), null as never)).toThrow(/init\(\)/);
  });

  it('mismatched structures throw naming the path, and nothing is consumed', async () => {
    const params = toTree(p0);
    const opt = adam(0.1);
    const state = opt.init(params);
    const bad = { a: array(grads[0]!.a, [7]), nested: { c: array(grads[0]!.b, shapes.b) } };
    expect(() => opt.update(bad, state, params)).toThrow(TreeStructureError);
    expect(() => opt.update(bad, state, params)).toThrow(/grads\.nested/);
    expect(() => applyUpdates(params, { a: params.a })).toThrow(/nested/);
    // Nothing was consumed: params and grads still read back.
    expect(Array.from(await params.a.data('float32'))).toEqual(Array.from(new Float32Array(p0.a)));
    expect((await bad.a.data('float32')).length).toBe(7);
  });
});

describe('memory over a long training loop', () => {
  it('keeps live GPU buffers and bytes flat with no dispose calls', async () => {
    type P = { layer1: { w: NDArray; b: NDArray }; layer2: { w: NDArray; b: NDArray } };
    let params: P = {
      layer1: { w: randomNormal([1, 16], 1), b: randomNormal([16], 2, 0, 0.1) },
      layer2: { w: scale(randomNormal([16, 1], 3), 0.3), b: randomNormal([1], 4, 0, 0.01) },
    };
    const x = randomUniform([128, 1], 5, -3, 3);
    const y = sin(x);
    const loss = (p: P, x: NDArray, y: NDArray) =>
      mean(square(sub(add(matmul(tanh(add(matmul(x, p.layer1.w), p.layer1.b)), p.layer2.w), p.layer2.b), y)));
    const opt = adam(0.01);
    let state = opt.init(params);
    const steps = Number(process.env.SOAK_STEPS ?? 1500);
    const samples: Array<{ step: number; live: number; bytes: number }> = [];
    let first = 0,
      last = 0;
    for (let i = 0; i < steps; i++) {
      const [l, g] = valueAndGrad(loss)(params, x, y);
      const [u, s] = opt.update(g, state, params);
      state = s;
      params = applyUpdates(params, u);
      if (i % 50 === 0 || i === steps - 1) {
        const v = await l.item();
        if (i === 0) first = v;
        last = v;
        const m = memoryStats();
        samples.push({ step: i, live: m.liveBuffers, bytes: m.liveBytes });
      }
    }
    // From step 200: in the first ~100 steps, handles from setup and earlier tests may still await the
    // garbage collector (their buffers come back when it runs; seen as 21 buffers at step 100, then 14).
    const after = samples.filter((s) => s.step >= 200);
    const lives = after.map((s) => s.live);
    const bytes = after.map((s) => s.bytes);
    console.log(
      `soak ${steps} steps: live buffers ${Math.min(...lives)}..${Math.max(...lives)}, live bytes ${Math.min(...bytes)}..${Math.max(...bytes)}, loss ${first} -> ${last}`,
    );
    expect(Math.max(...lives) - Math.min(...lives)).toBeLessThanOrEqual(2);
    // Flat, not growing: the later half never holds more buffers than the earlier half did, and the
    // bytes vary by at most one small-value batch (256 KB, where the newest small params and state
    // wait to be read back: live at some samples and not at others, depending on whether the step
    // was submitted before the read) plus two of Adam's packed states (768 bytes) that a handle the
    // garbage collector has not finalized yet may hold when a sample is taken.
    const half = Math.floor(lives.length / 2);
    expect(Math.max(...lives.slice(half))).toBeLessThanOrEqual(Math.max(...lives.slice(0, half)));
    expect(Math.max(...bytes) - Math.min(...bytes)).toBeLessThanOrEqual(256 * 1024 + 2 * 1024);
    expect(last).toBeLessThan(first / 10);
  });
});
