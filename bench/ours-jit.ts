// Our library again, every workload under jit: the same kernels as `ours`,
// recorded once and replayed (bench/ours.ts has the eager forms). A row to
// read against `ours`: what jit saves is JavaScript per call, not GPU time.
// The loop that never reads runs as one scan over the data stacked per step.

import { add, array, evaluate, gradOverFlatParams, jit, matmul, mul, ones, sin, sub, tanh, vjp, type NDArray } from '../src/index';
import { ours, ourClassifier, ourCnn, ourMlp, ourTransformer, stepLoop, stepRunner, track } from './ours';
import { TINY_CHAIN_OPS, type Rival } from './rivals/spec';

/** A jitted function of fixed inputs as a runner: each call replays it and reads the result. */
function jitRunner<T>(f: () => NDArray | NDArray[], read: (out: NDArray | NDArray[]) => Promise<T>, inputs: NDArray[]) {
  return track(
    async () => {
      const out = f();
      const value = await read(out);
      for (const o of [out].flat()) o.dispose();
      return value;
    },
    () => inputs.forEach((i) => i.dispose()),
  );
}

export const oursJit: Rival = {
  ...ours,
  name: 'ours jit',
  notes:
    'gradgpu jit: jit(gradOverFlatParams), jit(matmul chain), jit(vjp), each training step one jitted ' +
    'valueAndGrad + adam + applyUpdates (donateArgnums); the never-read loop as one scan',
  gpuTimer: undefined,

  async prepareSeed(flatParams, x, n, d) {
    const P = array(flatParams);
    const X = array(x, [n, d]);
    await evaluate(P, X);
    const f = jit(gradOverFlatParams);
    return jitRunner(
      () => f(P, X),
      (g) => (g as NDArray).data('float32'),
      [P, X],
    );
  },

  async prepareMatmul(a, b, n, chain) {
    const A = array(a, [n, n]);
    const B = array(b, [n, n]);
    await evaluate(A, B);
    const f = jit((x: NDArray, y: NDArray) => {
      let c = x;
      for (let k = 0; k < chain; k++) c = matmul(c, y);
      return c;
    });
    return jitRunner(
      () => f(A, B),
      (c) => (c as NDArray).data('float32'),
      [A, B],
    );
  },

  async prepareMatmulVjp(a, b, n) {
    const A = array(a, [n, n]);
    const B = array(b, [n, n]);
    const G = ones([n, n]);
    await evaluate(A, B, G);
    const f = jit((x: NDArray, y: NDArray, g: NDArray) => vjp((p: NDArray, q: NDArray) => matmul(p, q), x, y)[1](g) as unknown as NDArray[]);
    return jitRunner(
      () => f(A, B, G),
      async (o) => (await Promise.all((o as NDArray[]).map((r) => r.data('float32')))) as [Float32Array, Float32Array],
      [A, B, G],
    );
  },

  async prepareMlp(init, xs, ys) {
    return stepRunner(await ourMlp(init, xs, ys, true));
  },
  async prepareClassifier(init, xs, labels) {
    return stepRunner(await ourClassifier(init, xs, labels, true));
  },
  async prepareCnn(init, xs, labels) {
    return stepRunner(await ourCnn(init, xs, labels, true));
  },
  async prepareTransformer(init, data) {
    return stepRunner(await ourTransformer(init, data, true));
  },

  async prepareMlpLoop(init, xs, ys, readEvery, steps) {
    const mlp = await ourMlp(init, xs, ys, true);
    return track(() => (readEvery ? stepLoop(mlp, readEvery, steps) : mlp.scanSteps(steps).item()), mlp.free);
  },

  async prepareTinyChain(v) {
    const V = array(v);
    await evaluate(V);
    const unary = { sin, tanh };
    const binary = { add, mul, sub };
    const f = jit((x: NDArray) => TINY_CHAIN_OPS.reduce((acc, o) => ('c' in o ? binary[o.op](acc, o.c) : unary[o.op](acc)), x));
    return jitRunner(
      () => f(V),
      (x) => (x as NDArray).data('float32'),
      [V],
    );
  },
};
