// Image classifiers for 28x28 digits (MNIST), written as a JAX user would:
// params are a pytree, the model is a function of params and a batch, the
// loss is Optax's softmax cross-entropy with integer labels, and training is
// valueAndGrad -> adam -> applyUpdates over minibatches shuffled by
// random.permutation (MinibatchTrainer).

import type { NDArray } from '../array/ndarray';
import { add, array, equal, mean, relu, reshape, scale } from '../array/ops';
import { matmul } from '../array/linalg';
import { argmax } from '../array/reductions';
import { conv2d, maxPool } from '../array/conv';
import { softmaxCrossEntropyWithIntegerLabels } from '../nn/losses';
import { normal, split } from '../random/random';
import { MinibatchTrainer } from './training';
import type { LearningRate } from '../optim/optimizers';
import { zeros } from '../array/ops';

/** A dense layer's params. */
export interface Dense {
  w: NDArray;
  b: NDArray;
}

/** He-initialised dense layer (fanIn, fanOut) from a key. */
export function dense(key: NDArray, fanIn: number, fanOut: number): Dense {
  return { w: scale(normal(key, [fanIn, fanOut]), Math.sqrt(2 / fanIn)), b: zeros([fanOut]) };
}

const apply = (l: Dense, x: NDArray) => add(matmul(x, l.w), l.b);

/** The MLP 784 -> hidden -> 10 with relu. */
export interface MlpParams {
  l1: Dense;
  l2: Dense;
}

export function initMlp(key: NDArray, hidden = 256): MlpParams {
  const [k1, k2] = split(key);
  return { l1: dense(k1!, 784, hidden), l2: dense(k2!, hidden, 10) };
}

/** Logits (N, 10) of flat images (N, 784). */
export function mlpLogits(p: MlpParams, x: NDArray): NDArray {
  return apply(p.l2, relu(apply(p.l1, x)));
}

/** A small CNN: two 3x3 convolutions (8 and 16 channels, SAME) each with relu and a 2x2 max pool, then dense 784 -> 10. */
export interface CnnParams {
  c1: Dense;
  c2: Dense;
  out: Dense;
}

export function initCnn(key: NDArray, channels: [number, number] = [8, 16]): CnnParams {
  const [k1, k2, k3] = split(key, 3);
  const [a, b] = channels;
  const conv = (k: NDArray, i: number, o: number): Dense => ({ w: scale(normal(k, [3, 3, i, o]), Math.sqrt(2 / (9 * i))), b: zeros([o]) });
  return { c1: conv(k1!, 1, a), c2: conv(k2!, a, b), out: dense(k3!, 7 * 7 * b, 10) };
}

export function cnnLogits(p: CnnParams, x: NDArray): NDArray {
  const n = x.shape[0]!;
  let h = reshape(x, [n, 28, 28, 1]);
  h = maxPool(relu(add(conv2d(h, p.c1.w), p.c1.b)), 2);
  h = maxPool(relu(add(conv2d(h, p.c2.w), p.c2.b)), 2);
  return apply(p.out, reshape(h, [n, -1]));
}

/** Mean softmax cross-entropy of a model's logits against int32 labels. */
export function classifierLoss<P>(logits: (p: P, x: NDArray) => NDArray) {
  return (p: P, x: NDArray, y: NDArray) => mean(softmaxCrossEntropyWithIntegerLabels(logits(p, x), y));
}

/** The fraction of rows whose largest logit is the label. */
export function accuracy(logits: NDArray, labels: NDArray): NDArray {
  return mean(equal(argmax(logits, -1), labels));
}

export interface TrainOptions<P> {
  init: P;
  logits: (p: P, x: NDArray) => NDArray;
  trainX: Float32Array;
  trainY: Int32Array;
  testX: Float32Array;
  testY: Int32Array;
  key: NDArray;
  epochs: number;
  batch?: number;
  learningRate?: LearningRate;
  /** Called after each epoch with its mean training loss (read once per epoch) and held-out accuracy. */
  onEpoch?: (epoch: number, loss: number, testAccuracy: number) => void;
}

/** Train with Adam on shuffled minibatches (the last partial batch dropped); returns the params and per-epoch figures. */
export async function trainClassifier<P>(o: TrainOptions<P>) {
  const trainer = new MinibatchTrainer({
    init: o.init,
    loss: classifierLoss(o.logits),
    data: [array(o.trainX, [o.trainY.length, 784]), array(o.trainY)],
    batch: o.batch ?? 128,
    learningRate: o.learningRate ?? 1e-3,
    key: o.key,
  });
  const xTest = array(o.testX, [o.testY.length, 784]);
  const yTest = array(o.testY);
  const steps = trainer.stepsPerEpoch;
  const history: Array<{ epoch: number; loss: number; testAccuracy: number; seconds: number }> = [];
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    const t0 = performance.now();
    const losses = Array.from({ length: steps }, () => trainer.step());
    let sumLoss = 0;
    for (const l of losses) sumLoss += await l.item();
    const testAccuracy = await accuracy(o.logits(trainer.params, xTest), yTest).item();
    const seconds = (performance.now() - t0) / 1000;
    history.push({ epoch, loss: sumLoss / steps, testAccuracy, seconds });
    o.onEpoch?.(epoch, sumLoss / steps, testAccuracy);
  }
  return { params: trainer.params, history, stepsPerEpoch: steps };
}
