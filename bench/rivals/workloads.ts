// Rival implementations of the benchmark workloads (see spec.ts for the
// contract): plain JS (Float32Array loops, no GPU), jax-js eager, jax-js jit,
// and TensorFlow.js on its WebGPU backend.
//
// Browser-safe: no Node imports. The libraries are loaded lazily in init(), so
// in Node it is enough to call installNodeGpu() (node-gpu.ts) before init().
//
// Conventions shared by every GPU rival:
//  - prepare*() uploads the inputs once and keeps them resident; the returned
//    runner times compute + readback only (no per-call upload of inputs).
//  - every runner awaits its readback, so nothing stays queued between calls.
//  - every runner frees its temporaries, and its `dispose` frees the resident
//    inputs; liveCount() lets the harness check that nothing leaks per call.
import type { Array as JArray } from '@jax-js/jax';
import type { Rank, Scalar, Tensor, Variable } from '@tensorflow/tfjs-core';
import {
  ADAM,
  type CnnInit,
  type MlpInit,
  type Rival,
  type Runner,
  TINY_CHAIN_OPS,
  type TinyOp,
  type TransformerData,
  type TransformerInit,
  transformerShapes,
} from './spec';

export type { MlpInit, Rival, Runner } from './spec';

/** Attach a dispose function to a runner and register it with the owning rival. */
export function runner<T>(fn: () => Promise<T>, owned: Set<() => void>, free: () => void): Runner<T> {
  let done = false;
  const dispose = () => {
    if (done) return;
    done = true;
    owned.delete(dispose);
    free();
  };
  owned.add(dispose);
  return Object.assign(fn, { dispose });
}

function disposeAll(owned: Set<() => void>): void {
  for (const d of [...owned]) d();
}

// ===========================================================================
// Plain JS: straightforward Float32Array loops (cache-friendly i-k-j matmul),
// float64 scalar accumulators where a JS number is the natural choice.

/** c (m,n) = a (m,k) @ b (k,n), row-major, i-k-j order, overwrites c. */
function mm32(a: Float32Array, b: Float32Array, c: Float32Array, m: number, k: number, n: number): void {
  c.fill(0);
  for (let i = 0; i < m; i++) {
    const co = i * n;
    for (let p = 0; p < k; p++) {
      const aip = a[i * k + p];
      const bo = p * n;
      for (let j = 0; j < n; j++) c[co + j] += aip * b[bo + j];
    }
  }
}

function tinyStep32(v: Float32Array, o: TinyOp): void {
  const len = v.length;
  switch (o.op) {
    case 'add':
      for (let i = 0; i < len; i++) v[i] += o.c;
      break;
    case 'mul':
      for (let i = 0; i < len; i++) v[i] *= o.c;
      break;
    case 'sub':
      for (let i = 0; i < len; i++) v[i] -= o.c;
      break;
    case 'sin':
      for (let i = 0; i < len; i++) v[i] = Math.sin(v[i]);
      break;
    case 'tanh':
      for (let i = 0; i < len; i++) v[i] = Math.tanh(v[i]);
      break;
  }
}

export const plainjs: Rival = {
  name: 'plain-js',
  notes: 'Float32Array loops on the CPU, single thread; hand-written backward passes and Adam',
  async init() {},

  async prepareSeed(flatParams, x, n, d) {
    const acc = new Float64Array(d + 1);
    return async () => {
      acc.fill(0);
      const b = flatParams[d];
      for (let i = 0; i < n; i++) {
        const ro = i * d;
        let y = b;
        for (let j = 0; j < d; j++) y += x[ro + j] * flatParams[j];
        const y2 = 2 * y;
        for (let j = 0; j < d; j++) acc[j] += y2 * x[ro + j];
        acc[d] += y2;
      }
      return Float32Array.from(acc);
    };
  },

  async prepareMatmul(a, b, n, chain) {
    return async () => {
      let src = a;
      let dst = new Float32Array(n * n);
      let spare = chain > 1 ? new Float32Array(n * n) : dst;
      for (let k = 0; k < chain; k++) {
        mm32(src, b, dst, n, n, n);
        src = dst;
        [dst, spare] = [spare, dst];
      }
      return src;
    };
  },

  async prepareMatmulVjp(a, b, n) {
    // General VJP with an explicit cotangent G (all ones): dA = G B^T, dB = A^T G.
    // It does not exploit G being ones, so the cost is the honest 2 n^3.
    const g = new Float32Array(n * n).fill(1);
    return async () => {
      const dA = new Float32Array(n * n);
      const dB = new Float32Array(n * n);
      for (let i = 0; i < n; i++) {
        for (let k = 0; k < n; k++) {
          let s = 0;
          for (let j = 0; j < n; j++) s += g[i * n + j] * b[k * n + j];
          dA[i * n + k] = s;
        }
      }
      for (let i = 0; i < n; i++) {
        for (let k = 0; k < n; k++) {
          const aik = a[i * n + k];
          const go = i * n;
          const bo = k * n;
          for (let j = 0; j < n; j++) dB[bo + j] += aik * g[go + j];
        }
      }
      return [dA, dB];
    };
  },

  async prepareMlp(init, xs, ys) {
    const { inDim: D, hidden: H, outDim: O } = init;
    const B = xs.length / D;
    const params = [init.layer1.w, init.layer1.b, init.layer2.w, init.layer2.b].map((p) => Float32Array.from(p));
    const [w1, b1, w2, b2] = params;
    const grads = params.map((p) => new Float32Array(p.length));
    const [gw1, gb1, gw2, gb2] = grads;
    const m = params.map((p) => new Float32Array(p.length));
    const v = params.map((p) => new Float32Array(p.length));
    const h = new Float32Array(B * H);
    const dz = new Float32Array(B * H);
    const pred = new Float32Array(B * O);
    let t = 0;
    return async () => {
      // forward: h = tanh(x w1 + b1), pred = h w2 + b2
      mm32(xs, w1, h, B, D, H);
      for (let i = 0; i < B; i++) for (let k = 0; k < H; k++) h[i * H + k] = Math.tanh(h[i * H + k] + b1[k]);
      mm32(h, w2, pred, B, H, O);
      let loss = 0;
      const scale = 2 / (B * O);
      for (let i = 0; i < B; i++) {
        for (let o = 0; o < O; o++) {
          const r = pred[i * O + o] + b2[o] - ys[i * O + o];
          loss += r * r;
          pred[i * O + o] = scale * r; // now d loss / d pred
        }
      }
      loss /= B * O;
      // backward
      for (const g of grads) g.fill(0);
      for (let i = 0; i < B; i++) {
        for (let k = 0; k < H; k++) {
          const hk = h[i * H + k];
          let s = 0;
          for (let o = 0; o < O; o++) {
            const dp = pred[i * O + o];
            gw2[k * O + o] += hk * dp;
            s += dp * w2[k * O + o];
          }
          dz[i * H + k] = s * (1 - hk * hk);
        }
        for (let o = 0; o < O; o++) gb2[o] += pred[i * O + o];
      }
      for (let i = 0; i < B; i++) {
        const zo = i * H;
        for (let k = 0; k < H; k++) gb1[k] += dz[zo + k];
        for (let j = 0; j < D; j++) {
          const xij = xs[i * D + j];
          const go = j * H;
          for (let k = 0; k < H; k++) gw1[go + k] += xij * dz[zo + k];
        }
      }
      // Adam
      t++;
      const bc1 = 1 - ADAM.b1 ** t;
      const bc2 = 1 - ADAM.b2 ** t;
      for (let q = 0; q < params.length; q++) {
        const p = params[q],
          g = grads[q],
          mq = m[q],
          vq = v[q];
        for (let i = 0; i < p.length; i++) {
          const gi = g[i];
          mq[i] = ADAM.b1 * mq[i] + (1 - ADAM.b1) * gi;
          vq[i] = ADAM.b2 * vq[i] + (1 - ADAM.b2) * gi * gi;
          p[i] -= (ADAM.lr * (mq[i] / bc1)) / (Math.sqrt(vq[i] / bc2) + ADAM.eps);
        }
      }
      return loss;
    };
  },

  async prepareTinyChain(v) {
    return async () => {
      const out = Float32Array.from(v);
      for (const o of TINY_CHAIN_OPS) tinyStep32(out, o);
      return out;
    };
  },
};

// ===========================================================================
// jax-js (WebGPU device). Move semantics: every jax-js function consumes its
// Array arguments, `.ref` adds a reference, `.data()` consumes the array it
// reads. Resident inputs are therefore always passed as `x.ref`, and every
// runner's output is consumed by its `.data()` readback, so each call leaves
// the reference counts exactly as it found them.

type Jax = typeof import('@jax-js/jax');
type JParams = { layer1: { w: JArray; b: JArray }; layer2: { w: JArray; b: JArray } };
type JScalar = JArray | number;

/** jax-js's typings want Float32Array<ArrayBuffer> (not ArrayBufferLike). */
const f32 = (a: Float32Array) => a as Float32Array<ArrayBuffer>;

/** Live storage buffers on jax-js's GPUDevice (shared by both jax-js rivals). */
let jaxLiveBuffers = 0;

/** jax-js as a rival: eager or jit, on its WebGPU backend or (the CPU-only comparison) its Wasm backend. */
export function makeJaxRival(useJit: boolean, device: 'webgpu' | 'wasm' = 'webgpu'): Rival {
  let jax: Jax;
  const owned = new Set<() => void>();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any function jax.jit accepts
  const maybeJit = <F extends (...args: any[]) => any>(f: F): F & { dispose?: () => void } =>
    useJit ? (jax.jit(f) as unknown as F & { dispose: () => void }) : f;

  /**
   * A model with Adam in one (jitted) function: step() runs one training step
   * on the whole data and returns its loss, unread.
   */
  async function jaxTrainer<P>(init: P, data: JArray[], lossFn: (p: P, ...data: JArray[]) => JArray) {
    const np = jax.numpy;
    let params = init;
    const zeros = () => jax.tree.map((l: JArray) => np.zeros(l.shape), params as never) as P;
    let m = zeros();
    let v = zeros();
    // One full training step. bc1/bc2 are the bias corrections 1 - beta^t;
    // they are arguments (not closed-over constants) so jit traces once.
    const step = maybeJit((p: P, m: P, v: P, bc1: JScalar, bc2: JScalar, ...d: JArray[]) => {
      const [loss, g] = (jax.valueAndGrad as (f: unknown) => (...a: unknown[]) => [JArray, unknown])(lossFn)(jax.tree.ref(p as never), ...d);
      const [pl, def] = jax.tree.flatten(p as never) as [JArray[], unknown];
      const [gl] = jax.tree.flatten(g as never) as [JArray[], unknown];
      const [ml] = jax.tree.flatten(m as never) as [JArray[], unknown];
      const [vl] = jax.tree.flatten(v as never) as [JArray[], unknown];
      const use = (s: JScalar) => (typeof s === 'number' ? s : s.ref);
      const np2: JArray[] = [],
        nm: JArray[] = [],
        nv: JArray[] = [];
      for (let i = 0; i < pl.length; i++) {
        const gi = gl[i];
        const mi = ml[i].mul(ADAM.b1).add(gi.ref.mul(1 - ADAM.b1));
        const vi = vl[i].mul(ADAM.b2).add(np.square(gi).mul(1 - ADAM.b2));
        const mhat = mi.ref.div(use(bc1));
        const vhat = vi.ref.div(use(bc2));
        np2.push(pl[i].sub(mhat.mul(ADAM.lr).div(np.sqrt(vhat).add(ADAM.eps))));
        nm.push(mi);
        nv.push(vi);
      }
      if (typeof bc1 !== 'number') bc1.dispose();
      if (typeof bc2 !== 'number') bc2.dispose();
      const back = (l: JArray[]) => jax.tree.unflatten(def as never, l) as P;
      return [back(np2), back(nm), back(nv), loss] as [P, P, P, JArray];
    });
    let t = 0;
    await jax.blockUntilReady([params, m, v, ...data] as never);
    return {
      step(): JArray {
        t++;
        const [p2, m2, v2, loss] = step(params, m, v, 1 - ADAM.b1 ** t, 1 - ADAM.b2 ** t, ...data.map((d) => d.ref));
        params = p2;
        m = m2;
        v = v2;
        return loss;
      },
      params: () => params,
      free() {
        jax.tree.dispose([params, m, v, ...data] as never);
        step.dispose?.();
      },
    };
  }

  /** The benchmark MLP; kind 'ce': the classifier (relu, mean cross-entropy of jax.nn.logSoftmax against one-hot ys). */
  function jaxMlp(init: MlpInit, xs: Float32Array, ys: Float32Array, kind: 'mse' | 'ce' = 'mse') {
    const np = jax.numpy;
    const { inDim: D, hidden: H, outDim: O } = init;
    const batch = xs.length / D;
    const params: JParams = {
      layer1: { w: np.array(f32(init.layer1.w), { shape: [D, H] }), b: np.array(f32(init.layer1.b)) },
      layer2: { w: np.array(f32(init.layer2.w), { shape: [H, O] }), b: np.array(f32(init.layer2.b)) },
    };
    const lossFn = (p: JParams, x: JArray, y: JArray) => {
      if (kind === 'ce') {
        const logits = np.matmul(jax.nn.relu(np.matmul(x, p.layer1.w).add(p.layer1.b)), p.layer2.w).add(p.layer2.b);
        return np.negative(np.mean(np.sum(np.multiply(y, jax.nn.logSoftmax(logits, -1)), -1)));
      }
      const h = np.tanh(np.matmul(x, p.layer1.w).add(p.layer1.b));
      const pred = np.matmul(h, p.layer2.w).add(p.layer2.b);
      return np.square(pred.sub(y)).mean();
    };
    return jaxTrainer(params, [np.array(f32(xs), { shape: [batch, D] }), np.array(f32(ys), { shape: [batch, O] })], lossFn);
  }

  /** The MNIST CNN in jax-js's layout: NCHW images, OIHW kernels (ours transposed), lax.conv and reduceWindow max pools. */
  function jaxCnn(init: CnnInit, xs: Float32Array, onehot: Float32Array) {
    const np = jax.numpy;
    const [C1, C2] = [init.c1b.length, init.c2b.length];
    const B = onehot.length / 10;
    const oihw = (w: Float32Array, ci: number, co: number) => {
      const out = new Float32Array(w.length);
      for (let k = 0; k < 9; k++) for (let i = 0; i < ci; i++) for (let o = 0; o < co; o++) out[(o * ci + i) * 9 + k] = w[(k * ci + i) * co + o];
      return np.array(out, { shape: [co, ci, 3, 3] });
    };
    type P = { c1: { w: JArray; b: JArray }; c2: { w: JArray; b: JArray }; out: { w: JArray; b: JArray } };
    const params: P = {
      c1: { w: oihw(init.c1w, 1, C1), b: np.array(f32(init.c1b), { shape: [C1, 1, 1] }) },
      c2: { w: oihw(init.c2w, C1, C2), b: np.array(f32(init.c2b), { shape: [C2, 1, 1] }) },
      out: { w: np.array(f32(init.outW), { shape: [49 * C2, 10] }), b: np.array(f32(init.outB)) },
    };
    const block = (h: JArray, l: { w: JArray; b: JArray }) =>
      jax.lax.reduceWindow(jax.nn.relu(jax.lax.conv(h, l.w, [1, 1], 'SAME').add(l.b)), (w: JArray) => np.max(w), [2, 2], [2, 2]);
    const lossFn = (p: P, x: JArray, y: JArray) => {
      const h = np.transpose(block(block(x, p.c1), p.c2), [0, 2, 3, 1]).reshape([B, -1]); // NHWC features, as the dense layer expects
      const logits = np.matmul(h, p.out.w).add(p.out.b);
      return np.negative(np.mean(np.sum(np.multiply(y, jax.nn.logSoftmax(logits, -1)), -1)));
    };
    return jaxTrainer(params, [np.array(f32(xs), { shape: [B, 1, 28, 28] }), np.array(f32(onehot), { shape: [B, 10] })], lossFn);
  }

  /**
   * The benchmark transformer over a flat params record keyed by path; the
   * causal mask is added to the scores (0 or -1e9), which after softmax is
   * the same as where(mask, scores, -1e9). Every array used twice is `.ref`ed.
   */
  function jaxTransformer(init: TransformerInit, d: TransformerData) {
    const np = jax.numpy;
    const { vocab: V, context: T, dim: D, heads: H, layers } = init.config;
    const B = d.tokens.length / T;
    const dh = D / H;
    type P = Record<string, JArray>;
    const params: P = {};
    for (const [path, shape] of transformerShapes(init.config)) params[path] = np.array(f32(init.params[path]), { shape });
    const mask = new Float32Array(T * T).map((_, k) => (k % T <= Math.floor(k / T) ? 0 : -1e9));
    const lossFn = (p: P, tokens: JArray, yw: JArray, maskAdd: JArray) => {
      const ln = (x: JArray, pre: string) =>
        jax.nn
          .standardize(x, -1, { epsilon: 1e-5 })
          .mul(p[pre + '.g'])
          .add(p[pre + '.b']);
      let x = np.take(p.tokens, tokens, 0).add(p.positions);
      for (let l = 0; l < layers; l++) {
        const q = (n: string) => p[`blocks.${l}.${n}`];
        const h = ln(x.ref, `blocks.${l}.ln1`);
        const heads = (w: string, h: JArray) => np.swapaxes(np.matmul(h, q(w)).reshape([B, T, H, dh]), 1, 2);
        const [Q, K, Vv] = [heads('attn.wq', h.ref), heads('attn.wk', h.ref), heads('attn.wv', h)];
        const scores = np
          .matmul(Q, np.swapaxes(K, -1, -2))
          .mul(1 / Math.sqrt(dh))
          .add(l === layers - 1 ? maskAdd : maskAdd.ref);
        const o = np.swapaxes(np.matmul(jax.nn.softmax(scores, -1), Vv), 1, 2).reshape([B, T, D]);
        x = x.add(np.matmul(o, q('attn.wo')));
        const u = jax.nn.gelu(np.matmul(ln(x.ref, `blocks.${l}.ln2`), q('mlp.w1')).add(q('mlp.b1')), { approximate: true });
        x = x.add(np.matmul(u, q('mlp.w2')).add(q('mlp.b2')));
      }
      const logits = np.matmul(ln(x, 'lnF'), p.head);
      return np.negative(np.sum(np.multiply(yw, jax.nn.logSoftmax(logits, -1))));
    };
    return jaxTrainer(
      params,
      [
        np.array(d.tokens as Int32Array<ArrayBuffer>, { shape: [B, T], dtype: np.int32 }),
        np.array(f32(d.weightedOnehot), { shape: [B, T, V] }),
        np.array(f32(mask), { shape: [T, T] }),
      ],
      lossFn as (p: P, ...data: JArray[]) => JArray,
    );
  }

  return {
    name: (useJit ? 'jax-js jit' : 'jax-js eager') + (device === 'wasm' ? ' (wasm)' : ''),
    notes: useJit
      ? `jax-js 0.1.25 ${device}; jit(grad), jit(vjp), jit(valueAndGrad + hand-rolled Adam) as one jitted step`
      : `jax-js 0.1.25 ${device}; grad / vjp / valueAndGrad + hand-rolled Adam, op by op (no jit)`,

    async init() {
      jax = await import('@jax-js/jax');
      const devs = await jax.init(device);
      if (!devs.includes(device)) throw new Error(`jax-js: ${device} backend unavailable (got ${devs.join(', ')})`);
      jax.defaultDevice(device);
      if (device === 'wasm') return; // (the leak probe below counts WebGPU buffers)
      // Leak probe: count live storage buffers on jax-js's GPUDevice. jax-js
      // pools freed buffers instead of destroying them, so this only grows if
      // arrays are never released (readback staging buffers are excluded).
      const dev = jax.getWebGPUDevice() as GPUDevice & { __rivalsCounted?: boolean };
      if (!dev.__rivalsCounted) {
        dev.__rivalsCounted = true;
        const create = dev.createBuffer.bind(dev);
        dev.createBuffer = (desc: GPUBufferDescriptor) => {
          const buf = create(desc);
          if (!(desc.usage & GPUBufferUsage.MAP_READ)) {
            jaxLiveBuffers++;
            const destroy = buf.destroy.bind(buf);
            let gone = false;
            buf.destroy = () => {
              if (!gone) jaxLiveBuffers--;
              gone = true;
              destroy();
            };
          }
          return buf;
        };
      }
    },

    liveCount: () => jaxLiveBuffers,

    async prepareSeed(flatParams, x, n, d) {
      jax.defaultDevice(device); // jax-js's default device is global: each variant selects its own
      const np = jax.numpy;
      const p = np.array(f32(flatParams));
      const xa = np.array(f32(x), { shape: [n, d] });
      const loss = (p: JArray, x: JArray) => {
        const w = p.ref.slice([0, d]);
        const b = p.slice([d]);
        return np.square(np.matmul(x, w).add(b)).sum();
      };
      const g = maybeJit(jax.grad(loss));
      await jax.blockUntilReady([p, xa]);
      return runner(
        async () => (await g(p.ref, xa.ref).data()) as Float32Array,
        owned,
        () => {
          p.dispose();
          xa.dispose();
          g.dispose?.();
        },
      );
    },

    async prepareMatmul(a, b, n, chain) {
      jax.defaultDevice(device); // jax-js's default device is global: each variant selects its own
      const np = jax.numpy;
      const A = np.array(f32(a), { shape: [n, n] });
      const B = np.array(f32(b), { shape: [n, n] });
      const f = maybeJit((A: JArray, B: JArray) => {
        let c = A;
        for (let k = 0; k < chain; k++) c = np.matmul(c, k === chain - 1 ? B : B.ref);
        return c;
      });
      await jax.blockUntilReady([A, B]);
      return runner(
        async () => (await f(A.ref, B.ref).data()) as Float32Array,
        owned,
        () => {
          A.dispose();
          B.dispose();
          f.dispose?.();
        },
      );
    },

    async prepareMatmulVjp(a, b, n) {
      jax.defaultDevice(device); // jax-js's default device is global: each variant selects its own
      const np = jax.numpy;
      const A = np.array(f32(a), { shape: [n, n] });
      const B = np.array(f32(b), { shape: [n, n] });
      const G = np.ones([n, n]);
      const mm = (x: JArray, y: JArray) => np.matmul(x, y);
      const f = maybeJit((A: JArray, B: JArray, G: JArray): [JArray, JArray] => {
        const [out, back] = jax.vjp(mm, [A, B]);
        out.dispose();
        const [dA, dB] = back(G);
        back.dispose();
        return [dA, dB];
      });
      await jax.blockUntilReady([A, B, G]);
      return runner(
        async () => {
          const [dA, dB] = f(A.ref, B.ref, G.ref);
          return (await Promise.all([dA.data(), dB.data()])) as [Float32Array, Float32Array];
        },
        owned,
        () => {
          A.dispose();
          B.dispose();
          G.dispose();
          f.dispose?.();
        },
      );
    },

    async prepareMlp(init: MlpInit, xs, ys) {
      jax.defaultDevice(device); // jax-js's default device is global: each variant selects its own
      const mlp = await jaxMlp(init, xs, ys);
      return runner(async () => (await mlp.step().data())[0], owned, mlp.free);
    },

    async prepareClassifier(init: MlpInit, xs, _labels, onehot) {
      jax.defaultDevice(device); // jax-js's default device is global: each variant selects its own
      const model = await jaxMlp(init, xs, onehot, 'ce');
      return runner(async () => (await model.step().data())[0], owned, model.free);
    },

    async prepareCnn(init, xs, _labels, onehot) {
      jax.defaultDevice(device); // jax-js's default device is global: each variant selects its own
      const model = await jaxCnn(init, xs, onehot);
      return runner(async () => (await model.step().data())[0], owned, model.free);
    },

    async prepareTransformer(init, data) {
      jax.defaultDevice(device); // jax-js's default device is global: each variant selects its own
      const model = await jaxTransformer(init, data);
      return runner(async () => (await model.step().data())[0], owned, model.free);
    },

    async prepareMlpLoop(init: MlpInit, xs, ys, readEvery, steps) {
      jax.defaultDevice(device); // jax-js's default device is global: each variant selects its own
      const mlp = await jaxMlp(init, xs, ys);
      return runner(
        async () => {
          let loss: JArray | null = null;
          for (let i = 1; i <= steps; i++) {
            loss?.dispose();
            loss = mlp.step();
            if (readEvery && i % readEvery === 0) await loss.ref.data();
          }
          if (!readEvery) await jax.blockUntilReady(mlp.params());
          return (await loss!.data())[0];
        },
        owned,
        mlp.free,
      );
    },

    async prepareTinyChain(v) {
      jax.defaultDevice(device); // jax-js's default device is global: each variant selects its own
      const np = jax.numpy;
      const V = np.array(f32(v));
      const f = maybeJit((x: JArray) => {
        for (const o of TINY_CHAIN_OPS) {
          switch (o.op) {
            case 'add':
              x = x.add(o.c);
              break;
            case 'mul':
              x = x.mul(o.c);
              break;
            case 'sub':
              x = x.sub(o.c);
              break;
            case 'sin':
              x = np.sin(x);
              break;
            case 'tanh':
              x = np.tanh(x);
              break;
          }
        }
        return x;
      });
      await jax.blockUntilReady(V);
      return runner(
        async () => (await f(V.ref).data()) as Float32Array,
        owned,
        () => {
          V.dispose();
          f.dispose?.();
        },
      );
    },

    async dispose() {
      disposeAll(owned);
    },
  };
}

export const jaxjsEager: Rival = makeJaxRival(false);
export const jaxjsJit: Rival = makeJaxRival(true);
/** jax-js's default (CPU) backend: the comparison for a machine without a GPU. */
export const jaxjsJitWasm: Rival = makeJaxRival(true, 'wasm');

// ===========================================================================
// TensorFlow.js 4.22 on @tensorflow/tfjs-backend-webgpu. Functional API
// (tf.grad / tf.grads / optimizer.minimize, which uses tf.variableGrads),
// tf.tidy around each synchronous graph, explicit dispose of every returned
// tensor after its readback.
//
// cpuForward: TF.js's WebGPU backend by default runs an op on its CPU backend
// when all inputs are still CPU-resident and smaller than 1000 elements
// (WEBGPU_CPU_FORWARD). That is the library default (cpuForward: true), but it
// means the tiny workloads do not touch the GPU; cpuForward: false forces the
// GPU path.

type Tf = typeof import('@tensorflow/tfjs-core');

export function makeTfjsRival(opts: { cpuForward?: boolean } = {}): Rival {
  const cpuForward = opts.cpuForward ?? true;
  let tf: Tf;
  const owned = new Set<() => void>();
  /** Params as tf.variables trained by tf.train.adam on fixed X, Y; each call runs one step and resolves to its loss. */
  function tfTrainer(
    init: Array<[Float32Array, number[]]>,
    X: Tensor,
    Y: Tensor,
    loss: (X: Tensor, Y: Tensor, p: Variable[]) => Scalar,
  ): Runner<number> {
    const p = init.map(([data, shape]) => {
      const t = tf.tensor(data, shape);
      const v = tf.variable(t, true);
      t.dispose();
      return v;
    });
    const opt = tf.train.adam(ADAM.lr, ADAM.b1, ADAM.b2, ADAM.eps);
    return runner(
      async () => {
        flags();
        const cost = opt.minimize(() => loss(X, Y, p), true, p)!;
        const val = (await cost.data())[0];
        cost.dispose();
        return val;
      },
      owned,
      () => {
        opt.dispose();
        tf.dispose([...p, X, Y]);
      },
    );
  }

  /** The two-layer model's variables and its data. */
  const mlpArgs = ({ inDim: D, hidden: H, outDim: O, layer1, layer2 }: MlpInit, xs: Float32Array, ys: Float32Array) => {
    const vars: Array<[Float32Array, number[]]> = [
      [layer1.w, [D, H]],
      [layer1.b, [H]],
      [layer2.w, [H, O]],
      [layer2.b, [O]],
    ];
    return [vars, tf.tensor2d(xs, [xs.length / D, D]), tf.tensor2d(ys, [xs.length / D, O])] as const;
  };

  const flags = () => tf.env().set('WEBGPU_CPU_FORWARD', cpuForward);

  return {
    name: cpuForward ? 'tfjs webgpu' : 'tfjs webgpu (no cpu fwd)',
    notes:
      'tfjs-core/backend-webgpu 4.22.0; tf.grad, tf.grads(dy), tf.train.adam().minimize (tf.variableGrads), tf.tidy' +
      (cpuForward ? '; library defaults (small CPU-resident ops run on CPU)' : '; WEBGPU_CPU_FORWARD=false'),

    async init() {
      tf = await import('@tensorflow/tfjs-core');
      // Gradients are a separate side-effect module in tfjs-core (the
      // @tensorflow/tfjs union package imports it for you).
      await import('@tensorflow/tfjs-core/dist/register_all_gradients');
      await import('@tensorflow/tfjs-backend-webgpu');
      if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs: webgpu backend failed to initialise');
      await tf.ready();
      flags();
    },

    liveCount: () => tf.memory().numTensors,

    async prepareSeed(flatParams, x, n, d) {
      flags();
      const p = tf.tensor1d(flatParams);
      const X = tf.tensor2d(x, [n, d]);
      const gradFn = tf.grad((p: Tensor) => {
        const w = tf.reshape(tf.slice(p, [0], [d]), [d, 1]);
        const b = tf.slice(p, [d], [1]);
        return tf.sum(tf.square(tf.add(tf.matMul(X, w), b)));
      });
      return runner(
        async () => {
          flags();
          const g = tf.tidy(() => gradFn(p));
          const out = (await g.data()) as Float32Array;
          g.dispose();
          return out;
        },
        owned,
        () => tf.dispose([p, X]),
      );
    },

    async prepareMatmul(a, b, n, chain) {
      flags();
      const A = tf.tensor2d(a, [n, n]);
      const B = tf.tensor2d(b, [n, n]);
      return runner(
        async () => {
          flags();
          const c = tf.tidy(() => {
            let c: Tensor = A;
            for (let k = 0; k < chain; k++) c = tf.matMul(c, B);
            return c;
          });
          const out = (await c.data()) as Float32Array;
          c.dispose();
          return out;
        },
        owned,
        () => tf.dispose([A, B]),
      );
    },

    async prepareMatmulVjp(a, b, n) {
      flags();
      const A = tf.tensor2d(a, [n, n]);
      const B = tf.tensor2d(b, [n, n]);
      const G = tf.ones([n, n]);
      const gradsFn = tf.grads((x: Tensor, y: Tensor) => tf.matMul(x, y));
      return runner(
        async () => {
          flags();
          const [dA, dB] = tf.tidy(() => gradsFn([A, B], G));
          const out = (await Promise.all([dA.data(), dB.data()])) as [Float32Array, Float32Array];
          tf.dispose([dA, dB]);
          return out;
        },
        owned,
        () => tf.dispose([A, B, G]),
      );
    },

    async prepareMlp(init, xs, ys) {
      flags();
      const [vars, X, Y] = mlpArgs(init, xs, ys);
      return tfTrainer(vars, X, Y, (X, Y, [w1, b1, w2, b2]) => {
        const h = tf.tanh(tf.add(tf.matMul(X, w1), b1));
        const pred = tf.add(tf.matMul(h, w2), b2);
        return tf.mean(tf.square(tf.sub(pred, Y))) as Scalar;
      });
    },

    async prepareClassifier(init, xs, _labels, onehot) {
      flags();
      // tf.losses.softmaxCrossEntropy: mean over the batch (SUM_BY_NONZERO_WEIGHTS) of -sum(onehot * logSoftmax).
      const [vars, X, Y] = mlpArgs(init, xs, onehot);
      return tfTrainer(
        vars,
        X,
        Y,
        (X, Y, [w1, b1, w2, b2]) => tf.losses.softmaxCrossEntropy(Y, tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(X, w1), b1)), w2), b2)) as Scalar,
      );
    },

    async prepareCnn(init, xs, labels, onehot) {
      flags();
      const [C1, C2] = [init.c1b.length, init.c2b.length];
      const B = labels.length;
      const block = (h: Tensor, w: Tensor, b: Tensor) =>
        tf.maxPool(tf.relu(tf.add(tf.conv2d(h as Tensor<Rank.R4>, w as Tensor<Rank.R4>, 1, 'same'), b)) as Tensor<Rank.R4>, 2, 2, 'valid');
      return tfTrainer(
        [
          [init.c1w, [3, 3, 1, C1]],
          [init.c1b, [C1]],
          [init.c2w, [3, 3, C1, C2]],
          [init.c2b, [C2]],
          [init.outW, [49 * C2, 10]],
          [init.outB, [10]],
        ],
        tf.tensor4d(xs, [B, 28, 28, 1]),
        tf.tensor2d(onehot, [B, 10]),
        (X, Y, [w1, b1, w2, b2, wo, bo]) => {
          const h = block(block(X, w1!, b1!), w2!, b2!);
          return tf.losses.softmaxCrossEntropy(Y, tf.add(tf.matMul(tf.reshape(h, [B, -1]), wo!), bo!)) as Scalar;
        },
      );
    },

    async prepareTransformer(init, d) {
      flags();
      const { vocab: V, context: T, dim: D, heads: H, layers } = init.config;
      const B = d.tokens.length / T;
      const dh = D / H;
      const shapes = transformerShapes(init.config);
      const at = new Map(shapes.map(([path], i) => [path, i]));
      return tfTrainer(
        shapes.map(([path, shape]): [Float32Array, number[]] => [init.params[path]!, shape]),
        tf.tensor2d(d.tokens, [B, T], 'int32'),
        tf.tensor3d(d.weightedOnehot, [B, T, V]),
        (X, Y, vars) => {
          const p = (path: string) => vars[at.get(path)!]!;
          // (B*T, D) rows for the dense layers, (B, H, T, dh) for attention.
          const ln = (x: Tensor, pre: string) => {
            const { mean, variance } = tf.moments(x, -1, true);
            return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), p(pre + '.g')), p(pre + '.b'));
          };
          const gelu = (x: Tensor) =>
            tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI))), 1));
          const mask = tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([T, T]), -1, 0)), -1e9);
          let x = tf.reshape(tf.add(tf.gather(p('tokens'), X), p('positions')), [B * T, D]);
          for (let l = 0; l < layers; l++) {
            const q = (n: string) => p(`blocks.${l}.${n}`);
            const h = ln(x, `blocks.${l}.ln1`);
            const heads = (w: string) => tf.transpose(tf.reshape(tf.matMul(h, q(w)), [B, T, H, dh]), [0, 2, 1, 3]);
            const scores = tf.add(tf.mul(tf.matMul(heads('attn.wq'), heads('attn.wk'), false, true), 1 / Math.sqrt(dh)), mask);
            const o = tf.reshape(tf.transpose(tf.matMul(tf.softmax(scores), heads('attn.wv')), [0, 2, 1, 3]), [B * T, D]);
            x = tf.add(x, tf.matMul(o, q('attn.wo')));
            const u = gelu(tf.add(tf.matMul(ln(x, `blocks.${l}.ln2`), q('mlp.w1')), q('mlp.b1')));
            x = tf.add(x, tf.add(tf.matMul(u, q('mlp.w2')), q('mlp.b2')));
          }
          const logits = tf.matMul(ln(x, 'lnF'), p('head'));
          return tf.neg(tf.sum(tf.mul(tf.reshape(Y, [B * T, V]), tf.logSoftmax(logits)))) as Scalar;
        },
      );
    },

    async prepareTinyChain(v) {
      flags();
      const V = tf.tensor1d(v);
      // Scalar constants created once, as a performance-aware TF.js user would.
      const consts = TINY_CHAIN_OPS.map((o) => ('c' in o ? tf.scalar(o.c) : null));
      return runner(
        async () => {
          flags();
          const r = tf.tidy(() => {
            let x: Tensor = V;
            TINY_CHAIN_OPS.forEach((o, i) => {
              switch (o.op) {
                case 'add':
                  x = tf.add(x, consts[i]!);
                  break;
                case 'mul':
                  x = tf.mul(x, consts[i]!);
                  break;
                case 'sub':
                  x = tf.sub(x, consts[i]!);
                  break;
                case 'sin':
                  x = tf.sin(x);
                  break;
                case 'tanh':
                  x = tf.tanh(x);
                  break;
              }
            });
            return x;
          });
          const out = (await r.data()) as Float32Array;
          r.dispose();
          return out;
        },
        owned,
        () => tf.dispose([V, ...consts.filter((c): c is Scalar => c !== null)]),
      );
    },

    async dispose() {
      disposeAll(owned);
    },
  };
}

export const tfjs: Rival = makeTfjsRival();
export const tfjsGpuOnly: Rival = makeTfjsRival({ cpuForward: false });

/** The four rivals of the brief, plus the TF.js GPU-only variant. */
export const rivals: Rival[] = [plainjs, jaxjsEager, jaxjsJit, jaxjsJitWasm, tfjs, tfjsGpuOnly];
