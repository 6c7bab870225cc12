// A small decoder-only transformer (GPT-style): token and position
// embeddings, pre-norm blocks of multi-head causal self-attention and a gelu
// MLP, a final layer norm and a linear head. Params are a pytree; the model
// is a function of params and int32 tokens (B, T) giving logits (B, T, V).
// Attention is batched matmul over (B, H, T, D); the causal mask is `where`.

import type { NDArray } from '../array/ndarray';
import { add, arange, array, div, equal, greaterEqual, mul, ones, reshape, scale, sum, where, zeros } from '../array/ops';
import { argmax } from '../array/reductions';
import { matmul } from '../array/linalg';
import { take } from '../array/indexing';
import { swapaxes, expandDims } from '../array/shape-ops';
import { gelu, softmax, standardize } from '../nn/nn';
import { softmaxCrossEntropyWithIntegerLabels } from '../nn/losses';
import { categorical, normal, split } from '../random/random';
import { MinibatchTrainer } from './training';

export interface LayerNorm {
  g: NDArray;
  b: NDArray;
}
export interface Block {
  ln1: LayerNorm;
  attn: { wq: NDArray; wk: NDArray; wv: NDArray; wo: NDArray };
  ln2: LayerNorm;
  mlp: { w1: NDArray; b1: NDArray; w2: NDArray; b2: NDArray };
}
export interface TransformerParams {
  tokens: NDArray;
  positions: NDArray;
  blocks: Block[];
  lnF: LayerNorm;
  head: NDArray;
}
export interface TransformerConfig {
  vocab: number;
  context: number;
  dim: number;
  heads: number;
  layers: number;
}

const layerNorm = (l: LayerNorm, x: NDArray) => add(mul(standardize(x, -1), l.g), l.b);

/** GPT-2's initialisation: normal(0, 0.02) weights, the residual projections scaled by 1 / sqrt(2 layers). */
export function initTransformer(key: NDArray, c: TransformerConfig): TransformerParams {
  const keys = split(key, 3 + 6 * c.layers);
  let k = 0;
  const w = (shape: number[], s = 0.02) => scale(normal(keys[k++]!, shape), s);
  const ln = (): LayerNorm => ({ g: ones([c.dim]), b: zeros([c.dim]) });
  const resid = 0.02 / Math.sqrt(2 * c.layers);
  return {
    tokens: w([c.vocab, c.dim]),
    positions: w([c.context, c.dim]),
    blocks: Array.from({ length: c.layers }, () => ({
      ln1: ln(),
      attn: { wq: w([c.dim, c.dim]), wk: w([c.dim, c.dim]), wv: w([c.dim, c.dim]), wo: w([c.dim, c.dim], resid) },
      ln2: ln(),
      mlp: { w1: w([c.dim, 4 * c.dim]), b1: zeros([4 * c.dim]), w2: w([4 * c.dim, c.dim], resid), b2: zeros([c.dim]) },
    })),
    lnF: ln(),
    head: w([c.dim, c.vocab]),
  };
}

/** Causal multi-head self-attention of x (B, T, D). */
function attention(a: Block['attn'], x: NDArray, heads: number, mask: NDArray): NDArray {
  const [B, T, D] = x.shape as [number, number, number];
  const dh = D / heads;
  // (B, T, D) -> (B, H, T, dh)
  const split = (m: NDArray) => swapaxes(reshape(matmul(x, m), [B, T, heads, dh]), 1, 2);
  const q = split(a.wq);
  const k = split(a.wk);
  const v = split(a.wv);
  const scores = scale(matmul(q, swapaxes(k, -1, -2)), 1 / Math.sqrt(dh));
  const att = softmax(where(mask, scores, -1e9), -1);
  const out = reshape(swapaxes(matmul(att, v), 1, 2), [B, T, D]);
  return matmul(out, a.wo);
}

/** Logits (B, T, vocab) for int32 tokens (B, T), T <= context. */
export function transformerLogits(p: TransformerParams, tokens: NDArray, heads: number): NDArray {
  const T = tokens.shape[1]!;
  const pos = reshape(take(p.positions, arange(0, T, 1, 'int32'), 0), [1, T, -1]);
  let x = add(take(p.tokens, tokens, 0), pos);
  // mask[i, j] = j <= i: a position attends to itself and the past.
  const idx = arange(0, T, 1, 'int32');
  const mask = greaterEqual(expandDims(idx, 1), expandDims(idx, 0));
  for (const b of p.blocks) {
    x = add(x, attention(b.attn, layerNorm(b.ln1, x), heads, mask));
    const h = layerNorm(b.ln2, x);
    x = add(x, add(matmul(gelu(add(matmul(h, b.mlp.w1), b.mlp.b1)), b.mlp.w2), b.mlp.b2));
  }
  return matmul(layerNorm(p.lnF, x), p.head);
}

/** Mean cross-entropy of next-token predictions where `weights` (B, T) is 1 (the answer's positions). */
export function sequenceLoss(logits: NDArray, targets: NDArray, weights: NDArray): NDArray {
  const ce = softmaxCrossEntropyWithIntegerLabels(logits, targets);
  return div(sum(mul(ce, weights)), sum(weights));
}

// ---- the task: two-digit addition as text, answer digits reversed ----

/** Tokens 0-9 are digits, 10 is '+', 11 is '='. */
export const ADDITION_VOCAB = 12;
const PLUS = 10;
const EQUALS = 11;

/** "ab+cd=" then the sum's three digits least significant first (the order a carry is computed in): 9 tokens. */
export function additionSequence(a: number, b: number): number[] {
  const s = a + b;
  return [Math.floor(a / 10), a % 10, PLUS, Math.floor(b / 10), b % 10, EQUALS, s % 10, Math.floor(s / 10) % 10, Math.floor(s / 100)];
}

/** Inputs (N, 8), next-token targets (N, 8) and loss weights (the last three positions) for a list of problems. */
export function additionBatch(problems: Array<[number, number]>): { inputs: Int32Array; targets: Int32Array; weights: Float32Array } {
  const n = problems.length;
  const inputs = new Int32Array(n * 8);
  const targets = new Int32Array(n * 8);
  const weights = new Float32Array(n * 8);
  problems.forEach(([a, b], i) => {
    const s = additionSequence(a, b);
    for (let t = 0; t < 8; t++) {
      inputs[i * 8 + t] = s[t]!;
      targets[i * 8 + t] = s[t + 1]!;
      weights[i * 8 + t] = t >= 5 ? 1 : 0;
    }
  });
  return { inputs, targets, weights };
}

/**
 * Answers to `problems` by decoding on the GPU: three passes over the 8 input
 * positions, each writing its next digit into the following one (causal, so
 * the positions not yet filled do not matter). Greedy (argmax), or sampled
 * with random.categorical at a temperature. Returns the sums.
 */
export async function solveAddition(
  p: TransformerParams,
  problems: Array<[number, number]>,
  heads: number,
  sampling?: { key: NDArray; temperature: number },
): Promise<number[]> {
  const n = problems.length;
  const seq = new Int32Array(n * 8);
  problems.forEach(([a, b], i) => seq.set(additionSequence(a, b).slice(0, 6), i * 8));
  let tokens = array(seq, [n, 8]);
  const col = arange(0, 8, 1, 'int32');
  const digits: NDArray[] = [];
  const keys = sampling && split(sampling.key, 3);
  for (let k = 0; k < 3; k++) {
    const logits = transformerLogits(p, tokens, heads);
    const last = reshape(take(logits, [5 + k], 1), [n, ADDITION_VOCAB]);
    const next = sampling ? categorical(keys![k]!, scale(last, 1 / sampling.temperature)) : argmax(last, -1);
    digits.push(next);
    if (k < 2) tokens = where(expandDims(equal(col, 6 + k), 0), expandDims(next, 1), tokens);
  }
  const [u, t, h] = await Promise.all(digits.map((d) => d.data('int32')));
  return problems.map((_, i) => u![i]! + 10 * t![i]! + 100 * h![i]!);
}

/** All 10,000 problems a + b (a, b < 100) in a fixed shuffled order; the first `heldOut` are never trained on. */
export function additionSplit(heldOut = 1000): { train: Array<[number, number]>; test: Array<[number, number]> } {
  const all: Array<[number, number]> = [];
  for (let a = 0; a < 100; a++) for (let b = 0; b < 100; b++) all.push([a, b]);
  let s = 12345;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  return { test: all.slice(0, heldOut), train: all.slice(heldOut) };
}

export interface AdditionOptions {
  config: TransformerConfig;
  steps: number;
  batch?: number;
  learningRate?: number;
  key: NDArray;
  /** Called every `every` steps with the step and its loss (one read per call). */
  onLog?: (step: number, loss: number) => void;
  every?: number;
}

/** A trainer (MinibatchTrainer) of a fresh model on the training problems. */
export function additionTrainer(o: Omit<AdditionOptions, 'steps' | 'onLog' | 'every'>) {
  const { train } = additionSplit();
  const b = additionBatch(train);
  const [k0, k1] = split(o.key);
  return new MinibatchTrainer({
    init: initTransformer(k0!, o.config),
    loss: (p: TransformerParams, x: NDArray, y: NDArray, w: NDArray) => sequenceLoss(transformerLogits(p, x, o.config.heads), y, w),
    data: [array(b.inputs, [train.length, 8]), array(b.targets, [train.length, 8]), array(b.weights, [train.length, 8])],
    batch: o.batch ?? 64,
    learningRate: o.learningRate ?? 3e-3,
    key: k1!,
  });
}

/** Train with Adam on shuffled minibatches; returns the params and the held-out exact-match rate. */
export async function trainAddition(o: AdditionOptions) {
  const trainer = additionTrainer(o);
  const t0 = performance.now();
  for (let s = 0; s < o.steps; s++) {
    const loss = trainer.step();
    if (o.onLog && (s % (o.every ?? 100) === 0 || s === o.steps - 1)) o.onLog(s, await loss.item());
  }
  const seconds = (performance.now() - t0) / 1000;
  const { test } = additionSplit();
  const got = await solveAddition(trainer.params, test, o.config.heads);
  const exact = got.filter((v, i) => v === test[i]![0] + test[i]![1]).length / test.length;
  return { params: trainer.params, exact, seconds, stepsPerSecond: o.steps / seconds };
}
