// Shared definitions for the rival-library benchmark workloads: the Rival
// interface, workload parameters, the tiny-chain op list and deterministic
// input generators. Browser-safe (no Node imports).

/** A prepared workload: call it to run once; resolves after the result is read back to the CPU. */
export type Runner<T> = (() => Promise<T>) & {
  /** Free whatever the prepare step allocated (GPU buffers, jit caches, variables). Idempotent. */
  dispose?: () => void;
};

/** Initial MLP parameters, row-major. Shapes: layer1.w (inDim, hidden), layer1.b (hidden), layer2.w (hidden, outDim), layer2.b (outDim). */
export interface MlpInit {
  inDim: number;
  hidden: number;
  outDim: number;
  layer1: { w: Float32Array; b: Float32Array };
  layer2: { w: Float32Array; b: Float32Array };
}

/** Initial CNN parameters, row-major: conv kernels HWIO (3, 3, Ci, Co), the dense layer (7*7*C2, 10) over NHWC-flattened features. */
export interface CnnInit {
  c1w: Float32Array;
  c1b: Float32Array;
  c2w: Float32Array;
  c2b: Float32Array;
  outW: Float32Array;
  outB: Float32Array;
}

/** The benchmark transformer's size (GPT-style, pre-norm, gelu MLP of 4 x dim, no attention biases). */
export interface TransformerConfig {
  vocab: number;
  context: number;
  dim: number;
  heads: number;
  layers: number;
}

/** Initial transformer parameters, row-major, by pytree path (see transformerShapes). */
export interface TransformerInit {
  config: TransformerConfig;
  params: Record<string, Float32Array>;
}

export const ADAM = { lr: 1e-3, b1: 0.9, b2: 0.999, eps: 1e-8 } as const;

export interface Rival {
  name: string;
  /** One line on how the library is driven (API used, optimizer, flags). */
  notes: string;
  /** Load the library and select its WebGPU backend (no-op for plain JS). In Node call installNodeGpu() first. */
  init(): Promise<void>;
  /**
   * Workload 1, the reference problem. flatParams (d+1,) = [w; b], x (n,d) row-major.
   * y = x@w + b, loss = sum(y^2). Resolves to d loss / d flatParams (d+1,), read back.
   */
  prepareSeed(flatParams: Float32Array, x: Float32Array, n: number, d: number): Promise<Runner<Float32Array>>;
  /** Workload 2a. C = A@B@B@...@B (`chain` matmuls, square n), one readback of the final C. chain=1 is plain A@B. */
  prepareMatmul(a: Float32Array, b: Float32Array, n: number, chain: number): Promise<Runner<Float32Array>>;
  /** Workload 2b. VJP of C = A@B with an all-ones upstream cotangent: resolves to [dA, dB]. */
  prepareMatmulVjp(a: Float32Array, b: Float32Array, n: number): Promise<Runner<[Float32Array, Float32Array]>>;
  /**
   * Workload 3. One training step of the 2-layer tanh MLP, MSE loss (mean over batch and outputs),
   * Adam (ADAM constants, bias-corrected). Each call runs one step (state persists between calls)
   * and resolves to the loss computed in that step's forward pass, i.e. before its update.
   */
  prepareMlp(init: MlpInit, xs: Float32Array, ys: Float32Array): Promise<Runner<number>>;
  /**
   * Workload 3b (optional). The same MLP training loop, `steps` steps per call
   * (state persists between calls), reading the loss every `readEvery` steps,
   * or never (0: then wait until the GPU has finished). Resolves to the last
   * step's loss, read after the loop.
   */
  prepareMlpLoop?(init: MlpInit, xs: Float32Array, ys: Float32Array, readEvery: number, steps: number): Promise<Runner<number>>;
  /**
   * Workload 3c (optional). One training step of the MNIST-shaped classifier:
   * 784 -> 256 relu -> 10 logits, mean softmax cross-entropy against integer
   * `labels` (`onehot` is the same as one-hot rows, for libraries that take
   * those), Adam. Resolves to the step's loss (before its update).
   */
  prepareClassifier?(init: MlpInit, xs: Float32Array, labels: Int32Array, onehot: Float32Array): Promise<Runner<number>>;
  /**
   * Workload 3d (optional). One training step of the MNIST CNN: x (B, 28, 28, 1)
   * NHWC from `xs` (B, 784), SAME 3x3 conv -> relu -> 2x2 max pool, twice, the
   * NHWC features flattened into dense -> 10 logits, mean softmax cross-entropy
   * (`onehot` as for the classifier), Adam. Resolves to the step's loss.
   */
  prepareCnn?(init: CnnInit, xs: Float32Array, labels: Int32Array, onehot: Float32Array): Promise<Runner<number>>;
  /**
   * Workload 3e (optional). One training step of the small transformer:
   * int32 `tokens` (B, T) embedded (tokens table, plus positions), per block
   * x += attn(layerNorm1(x)) (causal softmax(q k^T / sqrt(dh)), masked scores
   * -1e9) and x += w2 gelu_tanh(layerNorm2(x) w1 + b1) + b2, layer norms
   * (x - mean) / sqrt(var + 1e-5) * g + b, logits = layerNorm(x) head; the
   * loss is sum(weights * cross-entropy(logits, targets)) / sum(weights).
   * `weightedOnehot` (B, T, vocab) is onehot(targets) * weights / sum(weights),
   * so the loss is also -sum(weightedOnehot * logSoftmax(logits)). Adam.
   */
  prepareTransformer?(init: TransformerInit, data: TransformerData): Promise<Runner<number>>;
  /** Workload 4. TINY_CHAIN_OPS applied in order to a short vector, one readback. */
  prepareTinyChain(v: Float32Array): Promise<Runner<Float32Array>>;
  /**
   * Leak probe: number of live library-owned tensors/buffers. Sampled around a
   * timed loop; it must not grow in steady state. Undefined where not meaningful.
   */
  liveCount?(): number;
  /**
   * GPU time from timestamp queries, where the library and the adapter offer
   * it: starts recording and returns a function that stops and resolves to
   * the GPU ms of every submission since. Undefined where not offered.
   */
  gpuTimer?(): (() => Promise<number[]>) | undefined;
  /** Release everything this rival still holds. */
  dispose?(): Promise<void>;
}

/** The tiny elementwise chain: 50 ops, cycling add / mul / sin / sub / tanh so values stay bounded. */
export type TinyOp = { op: 'add' | 'mul' | 'sub'; c: number } | { op: 'sin' | 'tanh' };

export const TINY_CHAIN_OPS: readonly TinyOp[] = Array.from({ length: 50 }, (_, i): TinyOp => {
  switch (i % 5) {
    case 0:
      return { op: 'add', c: 0.25 };
    case 1:
      return { op: 'mul', c: 1.5 };
    case 2:
      return { op: 'sin' };
    case 3:
      return { op: 'sub', c: 0.125 };
    default:
      return { op: 'tanh' };
  }
});

// ---------------------------------------------------------------------------
// Deterministic inputs

/** mulberry32: small, fast, deterministic PRNG in [0, 1). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Float32Array of `len` values uniform in [-scale, scale). */
export function uniform(len: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(len);
  for (let i = 0; i < len; i++) out[i] = (2 * r() - 1) * scale;
  return out;
}

export function seedInputs(n: number, d: number, seed = 1): { flatParams: Float32Array; x: Float32Array } {
  return { flatParams: uniform(d + 1, seed), x: uniform(n * d, seed + 1) };
}

/**
 * Square matmul inputs. B is scaled by sqrt(3/n) (unit-variance rows after
 * the product) so a chain of matmuls neither explodes nor vanishes.
 */
export function matmulInputs(n: number, seed = 3): { a: Float32Array; b: Float32Array } {
  return { a: uniform(n * n, seed), b: uniform(n * n, seed + 1, Math.sqrt(3 / n)) };
}

/** MLP problem: Glorot-ish init, xs uniform in [-1,1), ys = sin(sum of a few features). */
export function mlpInputs(
  batch = 256,
  inDim = 64,
  hidden = 256,
  outDim = 1,
  seed = 7,
): { init: MlpInit; xs: Float32Array; ys: Float32Array; batch: number } {
  const init: MlpInit = {
    inDim,
    hidden,
    outDim,
    layer1: { w: uniform(inDim * hidden, seed, Math.sqrt(6 / (inDim + hidden))), b: uniform(hidden, seed + 1, 0.1) },
    layer2: { w: uniform(hidden * outDim, seed + 2, Math.sqrt(6 / (hidden + outDim))), b: uniform(outDim, seed + 3, 0.1) },
  };
  const xs = uniform(batch * inDim, seed + 4);
  const ys = new Float32Array(batch * outDim);
  for (let i = 0; i < batch; i++) {
    for (let o = 0; o < outDim; o++) {
      let s = 0;
      for (let j = o; j < inDim; j += 4) s += xs[i * inDim + j];
      ys[i * outDim + o] = Math.sin(s);
    }
  }
  return { init, xs, ys, batch };
}

/**
 * The classifier workload's inputs: MNIST's shapes (784 pixels in [0, 1), 10
 * classes), synthetic so the browser needs no dataset; labels are a fixed
 * linear rule of the pixels, so the loss falls as on real digits.
 */
export function classifierInputs(batch = 128, seed = 17): { init: MlpInit; xs: Float32Array; labels: Int32Array; onehot: Float32Array } {
  const { init } = mlpInputs(1, 784, 256, 10, seed);
  const xs = Float32Array.from(uniform(batch * 784, seed + 5), (v) => (v + 1) / 2);
  const proj = uniform(784 * 10, seed + 6);
  const labels = new Int32Array(batch);
  const onehot = new Float32Array(batch * 10);
  for (let i = 0; i < batch; i++) {
    let best = 0;
    let bestV = -Infinity;
    for (let c = 0; c < 10; c++) {
      let s = 0;
      for (let j = 0; j < 784; j++) s += xs[i * 784 + j] * proj[j * 10 + c];
      if (s > bestV) [best, bestV] = [c, s];
    }
    labels[i] = best;
    onehot[i * 10 + best] = 1;
  }
  return { init, xs, labels, onehot };
}

/** The CNN workload: the classifier's images and labels, He-style uniform kernels (8 and 16 channels). */
export function cnnInputs(batch = 128, seed = 23): { init: CnnInit; xs: Float32Array; labels: Int32Array; onehot: Float32Array } {
  const { xs, labels, onehot } = classifierInputs(batch);
  const he = (n: number, fanIn: number, s: number) => uniform(n, s, Math.sqrt(6 / fanIn));
  const init: CnnInit = {
    c1w: he(9 * 8, 9, seed),
    c1b: uniform(8, seed + 1, 0.1),
    c2w: he(9 * 8 * 16, 72, seed + 2),
    c2b: uniform(16, seed + 3, 0.1),
    outW: he(784 * 10, 784, seed + 4),
    outB: uniform(10, seed + 5, 0.1),
  };
  return { init, xs, labels, onehot };
}

/** Parameter paths and shapes of the benchmark transformer, in a fixed order. */
export function transformerShapes(c: TransformerConfig): Array<[string, number[]]> {
  const D = c.dim;
  const out: Array<[string, number[]]> = [
    ['tokens', [c.vocab, D]],
    ['positions', [c.context, D]],
  ];
  for (let l = 0; l < c.layers; l++) {
    const b = `blocks.${l}.`;
    out.push([b + 'ln1.g', [D]], [b + 'ln1.b', [D]]);
    for (const w of ['wq', 'wk', 'wv', 'wo']) out.push([b + 'attn.' + w, [D, D]]);
    out.push([b + 'ln2.g', [D]], [b + 'ln2.b', [D]]);
    out.push([b + 'mlp.w1', [D, 4 * D]], [b + 'mlp.b1', [4 * D]], [b + 'mlp.w2', [4 * D, D]], [b + 'mlp.b2', [D]]);
  }
  out.push(['lnF.g', [D]], ['lnF.b', [D]], ['head', [D, c.vocab]]);
  return out;
}

export interface TransformerData {
  tokens: Int32Array;
  targets: Int32Array;
  weights: Float32Array;
  weightedOnehot: Float32Array;
}

/**
 * The transformer workload: the demo's addition model's size (vocab 12,
 * context 8, dim 32, 4 heads, 2 layers), weights uniform with GPT-2's 0.02
 * standard deviation, layer norms near identity; random token rows whose
 * last three positions carry the loss, as the addition task's answers do.
 */
export function transformerInputs(batch = 64, seed = 31): { init: TransformerInit; data: TransformerData } {
  const config: TransformerConfig = { vocab: 12, context: 8, dim: 32, heads: 4, layers: 2 };
  const params: Record<string, Float32Array> = {};
  const sd = 0.02 * Math.sqrt(3); // uniform [-a, a) has standard deviation a / sqrt(3)
  transformerShapes(config).forEach(([name, shape], i) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const leaf = name.slice(name.lastIndexOf('.') + 1);
    if (leaf === 'g') params[name] = Float32Array.from(uniform(n, seed + i, 0.1), (v) => 1 + v);
    else if (leaf === 'b' || leaf === 'b1' || leaf === 'b2') params[name] = uniform(n, seed + i, 0.05);
    else params[name] = uniform(n, seed + i, sd);
  });
  const { vocab: V, context: T } = config;
  const r = rng(seed - 1);
  const tokens = new Int32Array(batch * T);
  const targets = new Int32Array(batch * T);
  const weights = new Float32Array(batch * T);
  for (let i = 0; i < batch; i++) {
    const row = Array.from({ length: T + 1 }, () => Math.floor(r() * V));
    for (let t = 0; t < T; t++) {
      tokens[i * T + t] = row[t];
      targets[i * T + t] = row[t + 1];
      weights[i * T + t] = t >= T - 3 ? 1 : 0;
    }
  }
  const total = weights.reduce((a, b) => a + b, 0);
  const weightedOnehot = new Float32Array(batch * T * V);
  for (let k = 0; k < batch * T; k++) weightedOnehot[k * V + targets[k]] = weights[k] / total;
  return { init: { config, params }, data: { tokens, targets, weights, weightedOnehot } };
}

export function tinyChainInput(len = 16, seed = 11): Float32Array {
  return uniform(len, seed);
}
