// gradgpu itself, as one more `Rival` (see rivals/spec.ts for the contract),
// driven through its natural public API:
//   seed       gradOverFlatParams(p, x), then await g.data('float32')
//   matmul     matmul(...) chained, one data() of the final product
//   vjp        vjp((a, b) => matmul(a, b), A, B) then vjpFn(G), both cotangents read
//   mlp        valueAndGrad(mse) + adam(...).update + applyUpdates over
//              { layer1: { w, b }, layer2: { w, b } }, loss read every step
//   classifier the same with relu and nn.softmaxCrossEntropyWithIntegerLabels (784-256-10)
//   cnn        conv2d + relu + maxPool twice, then dense, the same loss
//   transformer src/models/transformer.ts's model and sequenceLoss (take, batched
//              matmul, where-masked softmax, standardize, gelu), the same trainer
//   tiny       50 elementwise ops (numbers as the second operand), one data()
//
// Inputs are uploaded once in prepare*() (array(...) then evaluate), so a
// timed call is compute + readback. Browser-safe: imports only the library.
import {
  adam,
  add,
  applyUpdates,
  array,
  broadcastTo,
  expandDims,
  jit,
  scan,
  slice,
  conv2d,
  deviceInfo,
  evaluate,
  gradOverFlatParams,
  init,
  matmul,
  maxPool,
  mean,
  memoryStats,
  mul,
  NDArray,
  nn,
  relu,
  reshape,
  ones,
  sin,
  square,
  sub,
  tanh,
  timeSubmissions,
  tree,
  valueAndGrad,
  vjp,
  type DeviceInfo,
} from '../src/index';
import { sequenceLoss, transformerLogits, type TransformerParams } from '../src/models/transformer';
import {
  ADAM,
  type CnnInit,
  type MlpInit,
  type Rival,
  type Runner,
  TINY_CHAIN_OPS,
  type TransformerData,
  type TransformerInit,
  transformerShapes,
} from './rivals/spec';
import { runner } from './rivals/workloads';

type Params = { layer1: { w: NDArray; b: NDArray }; layer2: { w: NDArray; b: NDArray } };

/** Upload (compute) arrays now, without reading them back. */
async function upload(...xs: NDArray[]): Promise<void> {
  await evaluate(...xs);
}

function disposeTree(t: unknown): void {
  for (const l of tree.leaves(t)) if (l instanceof NDArray && !l.isDisposed) l.dispose();
}

const owned = new Set<() => void>();

const mlpParams = ({ inDim: D, hidden: H, outDim: O, layer1, layer2 }: MlpInit): Params => ({
  layer1: { w: array(layer1.w, [D, H]), b: array(layer1.b, [H]) },
  layer2: { w: array(layer2.w, [H, O]), b: array(layer2.b, [O]) },
});

/** The benchmark MLP (tanh, MSE) with Adam. */
export async function ourMlp(init: MlpInit, xs: Float32Array, ys: Float32Array, jitted = false) {
  const batch = xs.length / init.inDim;
  const mse = (p: Params, x: NDArray, y: NDArray) => {
    const h = tanh(add(matmul(x, p.layer1.w), p.layer1.b));
    const pred = add(matmul(h, p.layer2.w), p.layer2.b);
    return mean(square(sub(pred, y)));
  };
  return trainer(mlpParams(init), [array(xs, [batch, init.inDim]), array(ys, [batch, init.outDim])], mse, jitted);
}

/** The MNIST-shaped classifier: relu hidden layer, Optax's cross-entropy with integer labels. */
export async function ourClassifier(init: MlpInit, xs: Float32Array, labels: Int32Array, jitted = false) {
  const ce = (p: Params, x: NDArray, y: NDArray) => {
    const h = relu(add(matmul(x, p.layer1.w), p.layer1.b));
    return mean(nn.softmaxCrossEntropyWithIntegerLabels(add(matmul(h, p.layer2.w), p.layer2.b), y));
  };
  return trainer(mlpParams(init), [array(xs, [labels.length, init.inDim]), array(labels)], ce, jitted);
}

type Cnn = { c1: { w: NDArray; b: NDArray }; c2: { w: NDArray; b: NDArray }; out: { w: NDArray; b: NDArray } };

/** The MNIST CNN: conv2d + relu + maxPool twice, dense, cross-entropy with integer labels. */
export async function ourCnn(init: CnnInit, xs: Float32Array, labels: Int32Array, jitted = false) {
  const [C1, C2] = [init.c1b.length, init.c2b.length];
  const params: Cnn = {
    c1: { w: array(init.c1w, [3, 3, 1, C1]), b: array(init.c1b) },
    c2: { w: array(init.c2w, [3, 3, C1, C2]), b: array(init.c2b) },
    out: { w: array(init.outW, [49 * C2, 10]), b: array(init.outB) },
  };
  const B = labels.length;
  const ce = (p: Cnn, x: NDArray, y: NDArray) => {
    let h = maxPool(relu(add(conv2d(x, p.c1.w), p.c1.b)), 2);
    h = maxPool(relu(add(conv2d(h, p.c2.w), p.c2.b)), 2);
    return mean(nn.softmaxCrossEntropyWithIntegerLabels(add(matmul(reshape(h, [B, -1]), p.out.w), p.out.b), y));
  };
  return trainer(params, [array(xs, [B, 28, 28, 1]), array(labels)], ce, jitted);
}

/** The benchmark transformer: the params tree built from the workload's paths (`blocks.0.attn.wq` and so on). */
export async function ourTransformer(init: TransformerInit, d: TransformerData, jitted = false) {
  const root: Record<string, unknown> = {};
  for (const [path, shape] of transformerShapes(init.config)) {
    const keys = path.split('.');
    let node = root as Record<string, unknown>;
    // a numeric next key makes this level an array (blocks.0)
    for (let i = 0; i < keys.length - 1; i++) node = (node[keys[i]!] ??= /^\d+$/.test(keys[i + 1]!) ? [] : {}) as Record<string, unknown>;
    node[keys.at(-1)!] = array(init.params[path]!, shape);
  }
  const { context: T, heads } = init.config;
  const B = d.tokens.length / T;
  const loss = (p: TransformerParams, x: NDArray, y: NDArray, w: NDArray) => sequenceLoss(transformerLogits(p, x, heads), y, w);
  return trainer(root as unknown as TransformerParams, [array(d.tokens, [B, T]), array(d.targets, [B, T]), array(d.weights, [B, T])], loss, jitted);
}

/**
 * A model with Adam: step() runs one training step on the whole data and
 * returns its loss, unread; `jitted`: the step (valueAndGrad, update,
 * applyUpdates) is one jitted function that consumes the old params and state.
 */
async function trainer<P>(init: P, data: NDArray[], lossFn: (p: P, ...data: NDArray[]) => NDArray, jitted = false) {
  let params = init;
  const lossAndGrad = valueAndGrad(lossFn);
  const optimizer = adam(ADAM.lr, { b1: ADAM.b1, b2: ADAM.b2, eps: ADAM.eps });
  let state = optimizer.init(params);
  const eagerStep = (p: P, s: unknown[], ...d: NDArray[]): [NDArray, P, unknown[]] => {
    const [loss, grads] = lossAndGrad(p, ...d);
    const [updates, next] = optimizer.update(grads, s, p);
    return [loss, applyUpdates(p, updates) as P, next];
  };
  const stepFn = (jitted ? jit(eagerStep, { donateArgnums: [0, 1] }) : eagerStep) as typeof eagerStep;
  await upload(...data, ...(tree.leaves(params) as NDArray[]), ...(tree.leaves(state) as NDArray[]).filter((l) => l instanceof NDArray));
  return {
    step(): NDArray {
      const [loss, p, s] = stepFn(params, state, ...data);
      [params, state] = [p, s];
      return loss;
    },
    /** `steps` steps by one scan over the data stacked `steps` times: one submission; the last loss. */
    scanSteps(steps: number): NDArray {
      const stacked = data.map((d) => broadcastTo(expandDims(d, 0), [steps, ...d.shape]));
      const [[p, s], losses] = scan(
        ([p, s]: [P, unknown[]], d: NDArray[]): [[P, unknown[]], NDArray] => {
          const [loss, p2, s2] = eagerStep(p, s, ...d);
          return [[p2, s2], loss];
        },
        [params, state] as [P, unknown[]],
        stacked,
      );
      [params, state] = [p, s];
      return reshape(slice(losses, [steps - 1], [steps]), []);
    },
    params: () => params,
    free() {
      disposeTree(params);
      disposeTree(state);
      data.forEach((d) => d.dispose());
    },
  };
}

/** `steps` training steps reading the loss every `readEvery` (0: never, then wait for the params); the last loss. */
export async function stepLoop(model: { step(): NDArray; params(): unknown }, readEvery: number, steps: number): Promise<number> {
  let loss: NDArray | null = null;
  for (let i = 1; i <= steps; i++) {
    loss = model.step();
    if (readEvery && i % readEvery === 0) await loss.item();
  }
  if (!readEvery) await evaluate(model.params());
  return loss!.item();
}

/** One training step a call, its loss read and the array given back. */
export const stepRunner = (model: { step(): NDArray; free(): void }): Runner<number> =>
  track(async () => {
    const loss = model.step();
    const value = await loss.item();
    loss.dispose();
    return value;
  }, model.free);

export const track = <T>(fn: () => Promise<T>, free: () => void): Runner<T> => runner(fn, owned, free);

let info: DeviceInfo | undefined;

/** Our library's adapter (init() must have run). */
export function oursDevice(): DeviceInfo | undefined {
  return info;
}

export const ours: Rival = {
  name: 'ours',
  notes:
    'gradgpu (this repo) on WebGPU; gradOverFlatParams, matmul, vjp, valueAndGrad + adam + applyUpdates; ' +
    'lazy graph dispatched at the end of each step (applyUpdates), fused elementwise kernels, one queue.submit per step',

  async init() {
    await init();
    info = await deviceInfo();
  },

  liveCount: () => memoryStats().liveBuffers,

  gpuTimer() {
    if (!info?.hasTimestampQuery) return undefined;
    const times = timeSubmissions(true);
    return async () => {
      await new Promise((r) => setTimeout(r, 20)); // the last submission's times arrive just after its results
      timeSubmissions(false);
      return times;
    };
  },

  async prepareSeed(flatParams, x, n, d) {
    const P = array(flatParams);
    const X = array(x, [n, d]);
    await upload(P, X);
    return track(
      async () => {
        const g = gradOverFlatParams(P, X);
        const out = await g.data('float32');
        g.dispose();
        return out;
      },
      () => {
        P.dispose();
        X.dispose();
      },
    );
  },

  async prepareMatmul(a, b, n, chain) {
    const A = array(a, [n, n]);
    const B = array(b, [n, n]);
    await upload(A, B);
    return track(
      async () => {
        let c = A;
        for (let k = 0; k < chain; k++) c = matmul(c, B);
        const out = await c.data('float32');
        c.dispose();
        return out;
      },
      () => {
        A.dispose();
        B.dispose();
      },
    );
  },

  async prepareMatmulVjp(a, b, n) {
    const A = array(a, [n, n]);
    const B = array(b, [n, n]);
    const G = ones([n, n]);
    await upload(A, B, G);
    const mm = (x: NDArray, y: NDArray) => matmul(x, y);
    return track(
      async () => {
        const [out, back] = vjp(mm, A, B);
        // (vjpFn's declared return type is not a tuple, so destructuring needs a cast; see the report)
        const [dA, dB] = back(G) as unknown as [NDArray, NDArray];
        const res = (await Promise.all([dA.data('float32'), dB.data('float32')])) as [Float32Array, Float32Array];
        dA.dispose();
        dB.dispose();
        out.dispose();
        return res;
      },
      () => {
        A.dispose();
        B.dispose();
        G.dispose();
      },
    );
  },

  async prepareMlp(init: MlpInit, xs, ys) {
    return stepRunner(await ourMlp(init, xs, ys));
  },

  async prepareClassifier(init, xs, labels) {
    return stepRunner(await ourClassifier(init, xs, labels));
  },

  async prepareCnn(init, xs, labels) {
    return stepRunner(await ourCnn(init, xs, labels));
  },

  async prepareTransformer(init, data) {
    return stepRunner(await ourTransformer(init, data));
  },

  async prepareMlpLoop(init, xs, ys, readEvery, steps) {
    const mlp = await ourMlp(init, xs, ys);
    return track(() => stepLoop(mlp, readEvery, steps), mlp.free);
  },

  async prepareTinyChain(v) {
    const V = array(v);
    await upload(V);
    return track(
      async () => {
        let x = V;
        for (const o of TINY_CHAIN_OPS) {
          switch (o.op) {
            case 'add':
              x = add(x, o.c);
              break;
            case 'mul':
              x = mul(x, o.c);
              break;
            case 'sub':
              x = sub(x, o.c);
              break;
            case 'sin':
              x = sin(x);
              break;
            case 'tanh':
              x = tanh(x);
              break;
          }
        }
        const out = await x.data('float32');
        x.dispose();
        return out;
      },
      () => V.dispose(),
    );
  },

  async dispose() {
    for (const d of [...owned]) d();
  },
};
