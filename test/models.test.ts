// The two real models at test size: the MNIST classifiers (real
// digits from the `mnist` package, a fixed seeded split) and the small
// transformer on two-digit addition, trained end to end with the library's
// own ops, random keys and Adam; their params saved and loaded through
// safetensors. Full-size runs and their figures: README, "Models".
import { describe, expect, it } from 'vitest';
import { array, evaluate, loadSafetensors, random, saveSafetensors, valueAndGrad, adam, applyUpdates, take, slice, type NDArray } from '../src/index';
import { cnnLogits, initCnn, initMlp, mlpLogits, trainClassifier, type MlpParams, type CnnParams } from '../src/models/classifier';
import {
  ADDITION_VOCAB,
  additionBatch,
  initTransformer,
  sequenceLoss,
  solveAddition,
  transformerLogits,
  type TransformerParams,
} from '../src/models/transformer';
import { loadMnist } from './helpers/mnist';

describe('MNIST', () => {
  it('the split: 8,000 + 2,000 real digits, every class present, the same each time', () => {
    const d = loadMnist();
    expect(d.trainY.length).toBe(8000);
    expect(d.testY.length).toBe(2000);
    expect(d.trainX.length).toBe(8000 * 784);
    for (let c = 0; c < 10; c++) expect(d.testY.filter((y) => y === c).length).toBeGreaterThan(120);
    expect(Array.from(loadMnist(100, 10, 0).trainY)).toEqual(Array.from(d.trainY.slice(0, 100)));
  });

  it('the MLP 784-256-10 learns: one epoch reaches 88% held-out accuracy', async () => {
    const d = loadMnist();
    const { history, params } = await trainClassifier({
      ...d,
      init: initMlp(random.key(0)),
      logits: mlpLogits,
      key: random.key(1),
      epochs: 1,
      learningRate: 3e-3,
    });
    expect(history[0]!.loss).toBeLessThan(0.8);
    expect(history[0]!.testAccuracy).toBeGreaterThan(0.88);
    // The params survive a safetensors round trip: same logits, bit for bit.
    const bytes = await saveSafetensors(params);
    const back = loadSafetensors(bytes).tree as unknown as MlpParams;
    const x = array(d.testX.slice(0, 784 * 4), [4, 784]);
    expect(Array.from(await mlpLogits(back, x).data())).toEqual(Array.from(await mlpLogits(params, x).data()));
  }, 120_000);

  it('the CNN (two 3x3 convolutions with pooling) learns on 2,000 digits', async () => {
    const d = loadMnist(2000, 500, 1);
    const { history, params } = await trainClassifier({
      ...d,
      init: initCnn(random.key(0)),
      logits: cnnLogits,
      key: random.key(1),
      epochs: 1,
      batch: 64,
      learningRate: 3e-3,
    });
    expect(history[0]!.testAccuracy).toBeGreaterThan(0.6);
    const back = loadSafetensors(await saveSafetensors(params)).tree as unknown as CnnParams;
    expect(back.c2.w.shape).toEqual([3, 3, 8, 16]);
  }, 180_000);
});

describe('a small transformer on two-digit addition', () => {
  it('the loss falls, greedy and sampled decoding run on the GPU, and the params round-trip', async () => {
    const cfg = { vocab: ADDITION_VOCAB, context: 8, dim: 32, heads: 4, layers: 2 };
    const problems: Array<[number, number]> = [];
    for (let i = 0; i < 2048; i++) problems.push([(i * 37) % 100, (i * 91 + 13) % 100]);
    const b = additionBatch(problems);
    const X = array(b.inputs, [problems.length, 8]);
    const Y = array(b.targets, [problems.length, 8]);
    const W = array(b.weights, [problems.length, 8]);
    let p: TransformerParams = initTransformer(random.key(0), cfg);
    const loss = (q: TransformerParams, x: NDArray, y: NDArray, w: NDArray) => sequenceLoss(transformerLogits(q, x, cfg.heads), y, w);
    const step = valueAndGrad(loss);
    const opt = adam(3e-3);
    let state = opt.init(p);
    const perm = random.permutation(random.key(1), problems.length);
    const losses: NDArray[] = [];
    for (let s = 0; s < 60; s++) {
      const idx = slice(perm, [(s % 32) * 64], [(s % 32) * 64 + 64]);
      const [l, g] = step(p, take(X, idx, 0), take(Y, idx, 0), take(W, idx, 0));
      const [u, st] = opt.update(g, state, p);
      state = st;
      p = applyUpdates(p, u) as TransformerParams;
      losses.push(l);
    }
    await evaluate(losses);
    const first = await losses[0]!.item();
    const last = (await Promise.all(losses.slice(-5).map((l) => l.item()))).reduce((a, c) => a + c, 0) / 5;
    expect(first).toBeGreaterThan(2); // about ln(12) = 2.48 at initialisation
    expect(last).toBeLessThan(first - 0.6);
    const sums = await solveAddition(p, problems.slice(0, 16), cfg.heads);
    expect(sums.every((v) => Number.isInteger(v) && v >= 0 && v <= 999)).toBe(true);
    // Sampling with random.categorical: the same key gives the same answers, a cold temperature the greedy ones.
    const sampled = await solveAddition(p, problems.slice(0, 16), cfg.heads, { key: random.key(5), temperature: 1 });
    expect(await solveAddition(p, problems.slice(0, 16), cfg.heads, { key: random.key(5), temperature: 1 })).toEqual(sampled);
    expect(sampled.every((v) => Number.isInteger(v) && v >= 0 && v <= 999)).toBe(true);
    expect(await solveAddition(p, problems.slice(0, 16), cfg.heads, { key: random.key(6), temperature: 1e-6 })).toEqual(sums);
    const back = loadSafetensors(await saveSafetensors(p)).tree as unknown as TransformerParams;
    expect(back.blocks.length).toBe(2);
    expect(await solveAddition(back, problems.slice(0, 16), cfg.heads)).toEqual(sums);
  }, 180_000);
});
