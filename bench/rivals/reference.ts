// Float64 CPU reference results for the rival workloads, and verify().
// Browser-safe (no Node imports). Inputs are the same Float32Arrays handed to
// the rivals; all arithmetic here is in float64 (JS numbers, Float64Array).
import { ADAM, type CnnInit, type MlpInit, TINY_CHAIN_OPS } from './spec';

type Num = ArrayLike<number>;

/** Seed gradient, closed form: d/d[w;b] sum((x@w+b)^2) = 2 [x^T y; sum(y)]. */
export function refSeed(flatParams: Num, x: Num, n: number, d: number): Float64Array {
  const g = new Float64Array(d + 1);
  const b = flatParams[d];
  for (let i = 0; i < n; i++) {
    let y = b;
    for (let j = 0; j < d; j++) y += x[i * d + j] * flatParams[j];
    for (let j = 0; j < d; j++) g[j] += 2 * y * x[i * d + j];
    g[d] += 2 * y;
  }
  return g;
}

/** Row-major (m,k) @ (k,n) in float64. */
export function matmul64(a: Num, b: Num, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const aip = a[i * k + p];
      if (aip === 0) continue;
      const ro = p * n;
      const co = i * n;
      for (let j = 0; j < n; j++) c[co + j] += aip * b[ro + j];
    }
  }
  return c;
}

/** A @ B @ B ... (`chain` matmuls total). */
export function refMatmul(a: Num, b: Num, n: number, chain: number): Float64Array {
  let c: Num = a;
  for (let k = 0; k < chain; k++) c = matmul64(c, b, n, n, n);
  return c as Float64Array;
}

/** VJP of C = A@B with all-ones cotangent G: dA = G B^T (row sums of B), dB = A^T G (column sums of A). */
export function refMatmulVjp(a: Num, b: Num, n: number): [Float64Array, Float64Array] {
  const rowSumB = new Float64Array(n);
  const colSumA = new Float64Array(n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) rowSumB[i] += b[i * n + j];
  for (let i = 0; i < n; i++) for (let k = 0; k < n; k++) colSumA[k] += a[i * n + k];
  const dA = new Float64Array(n * n);
  const dB = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let k = 0; k < n; k++) dA[i * n + k] = rowSumB[k];
  for (let k = 0; k < n; k++) for (let j = 0; j < n; j++) dB[k * n + j] = colSumA[k];
  return [dA, dB];
}

/**
 * Losses of the first `steps` MLP training steps (each loss is computed before
 * that step's Adam update), in float64. By default the benchmark MLP (tanh,
 * MSE against ys); with `labels`, the MNIST-shaped classifier (relu, mean
 * softmax cross-entropy of the outputs as logits against integer labels).
 */
export function refMlpLosses(init: MlpInit, xs: Num, ys: Num, steps: number, labels?: Int32Array): number[] {
  const { inDim: D, hidden: H, outDim: O } = init;
  const B = xs.length / D;
  const params = [init.layer1.w, init.layer1.b, init.layer2.w, init.layer2.b].map((p) => Float64Array.from(p));
  const [w1, b1, w2, b2] = params;
  const m = params.map((p) => new Float64Array(p.length));
  const v = params.map((p) => new Float64Array(p.length));
  const losses: number[] = [];
  const h = new Float64Array(B * H);
  const dh = new Float64Array(B * H);
  const dpred = new Float64Array(B * O);
  for (let t = 1; t <= steps; t++) {
    // forward
    for (let i = 0; i < B; i++) {
      for (let k = 0; k < H; k++) {
        let z = b1[k];
        for (let j = 0; j < D; j++) z += xs[i * D + j] * w1[j * H + k];
        h[i * H + k] = labels ? Math.max(z, 0) : Math.tanh(z);
      }
    }
    let loss = 0;
    for (let i = 0; i < B; i++) {
      const out = new Float64Array(O);
      for (let o = 0; o < O; o++) {
        let p = b2[o];
        for (let k = 0; k < H; k++) p += h[i * H + k] * w2[k * O + o];
        out[o] = p;
      }
      if (labels) {
        // d/dlogits of mean cross-entropy: (softmax - onehot) / B
        const mx = Math.max(...out);
        const lse = mx + Math.log(out.reduce((a, z) => a + Math.exp(z - mx), 0));
        loss += lse - out[labels[i]];
        for (let o = 0; o < O; o++) dpred[i * O + o] = (Math.exp(out[o] - lse) - (o === labels[i] ? 1 : 0)) / B;
      } else {
        for (let o = 0; o < O; o++) {
          const r = out[o] - ys[i * O + o];
          loss += r * r;
          dpred[i * O + o] = (2 * r) / (B * O);
        }
      }
    }
    losses.push(labels ? loss / B : loss / (B * O));
    // backward
    const g = params.map((p) => new Float64Array(p.length));
    const [gw1, gb1, gw2, gb2] = g;
    for (let i = 0; i < B; i++) {
      for (let o = 0; o < O; o++) {
        const dp = dpred[i * O + o];
        gb2[o] += dp;
        for (let k = 0; k < H; k++) gw2[k * O + o] += h[i * H + k] * dp;
      }
      for (let k = 0; k < H; k++) {
        let s = 0;
        for (let o = 0; o < O; o++) s += dpred[i * O + o] * w2[k * O + o];
        const hk = h[i * H + k];
        dh[i * H + k] = labels ? (hk > 0 ? s : 0) : s * (1 - hk * hk);
      }
    }
    for (let i = 0; i < B; i++) {
      for (let k = 0; k < H; k++) {
        const dz = dh[i * H + k];
        gb1[k] += dz;
        for (let j = 0; j < D; j++) gw1[j * H + k] += xs[i * D + j] * dz;
      }
    }
    // Adam
    const bc1 = 1 - ADAM.b1 ** t;
    const bc2 = 1 - ADAM.b2 ** t;
    for (let q = 0; q < params.length; q++) {
      const p = params[q],
        gq = g[q],
        mq = m[q],
        vq = v[q];
      for (let i = 0; i < p.length; i++) {
        mq[i] = ADAM.b1 * mq[i] + (1 - ADAM.b1) * gq[i];
        vq[i] = ADAM.b2 * vq[i] + (1 - ADAM.b2) * gq[i] * gq[i];
        p[i] -= (ADAM.lr * (mq[i] / bc1)) / (Math.sqrt(vq[i] / bc2) + ADAM.eps);
      }
    }
  }
  return losses;
}

/** SAME 3x3 convolution of x (B, H, W, Ci) with w (3, 3, Ci, Co) plus b, NHWC. */
function conv3(x: Float64Array, B: number, H: number, W: number, Ci: number, w: Float64Array, b: Float64Array, Co: number): Float64Array {
  const z = new Float64Array(B * H * W * Co);
  for (let n = 0; n < B; n++)
    for (let i = 0; i < H; i++)
      for (let j = 0; j < W; j++) {
        const o0 = ((n * H + i) * W + j) * Co;
        for (let o = 0; o < Co; o++) z[o0 + o] = b[o];
        for (let a = 0; a < 3; a++) {
          const y = i + a - 1;
          if (y < 0 || y >= H) continue;
          for (let c = 0; c < 3; c++) {
            const xx = j + c - 1;
            if (xx < 0 || xx >= W) continue;
            for (let ci = 0; ci < Ci; ci++) {
              const v = x[((n * H + y) * W + xx) * Ci + ci];
              const w0 = ((a * 3 + c) * Ci + ci) * Co;
              for (let o = 0; o < Co; o++) z[o0 + o] += v * w[w0 + o];
            }
          }
        }
      }
  return z;
}

/** conv3's VJP: adds into dw and db, returns dx (or nothing when dx is not needed). */
function conv3Vjp(
  x: Float64Array,
  B: number,
  H: number,
  W: number,
  Ci: number,
  w: Float64Array,
  Co: number,
  dz: Float64Array,
  dw: Float64Array,
  db: Float64Array,
  wantDx: boolean,
) {
  const dx = wantDx ? new Float64Array(x.length) : null;
  for (let n = 0; n < B; n++)
    for (let i = 0; i < H; i++)
      for (let j = 0; j < W; j++) {
        const o0 = ((n * H + i) * W + j) * Co;
        for (let o = 0; o < Co; o++) db[o] += dz[o0 + o];
        for (let a = 0; a < 3; a++) {
          const y = i + a - 1;
          if (y < 0 || y >= H) continue;
          for (let c = 0; c < 3; c++) {
            const xx = j + c - 1;
            if (xx < 0 || xx >= W) continue;
            for (let ci = 0; ci < Ci; ci++) {
              const xi = ((n * H + y) * W + xx) * Ci + ci;
              const w0 = ((a * 3 + c) * Ci + ci) * Co;
              let s = 0;
              for (let o = 0; o < Co; o++) {
                dw[w0 + o] += x[xi] * dz[o0 + o];
                s += w[w0 + o] * dz[o0 + o];
              }
              if (dx) dx[xi] += s;
            }
          }
        }
      }
  return dx;
}

/** relu then a 2x2 max pool (stride 2) of z (B, H, W, C); `from` is each output's input index. */
function reluPool(z: Float64Array, B: number, H: number, W: number, C: number) {
  const [h, w] = [H / 2, W / 2];
  const out = new Float64Array(B * h * w * C);
  const from = new Int32Array(out.length);
  for (let n = 0; n < B; n++)
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++)
        for (let c = 0; c < C; c++) {
          const o = ((n * h + i) * w + j) * C + c;
          let best = -Infinity;
          for (let a = 0; a < 2; a++)
            for (let b = 0; b < 2; b++) {
              const k = ((n * H + 2 * i + a) * W + 2 * j + b) * C + c;
              const v = Math.max(z[k], 0);
              if (v > best) [best, from[o]] = [v, k];
            }
          out[o] = best;
        }
  return { out, from };
}

/** The VJP of reluPool: each output's cotangent to its input where that input is positive. */
function reluPoolVjp(z: Float64Array, from: Int32Array, dout: Float64Array): Float64Array {
  const dz = new Float64Array(z.length);
  for (let o = 0; o < dout.length; o++) if (z[from[o]] > 0) dz[from[o]] += dout[o];
  return dz;
}

/** Adam on float64 params (t counts from 1). */
function adamStep(params: Float64Array[], g: Float64Array[], m: Float64Array[], v: Float64Array[], t: number): void {
  const bc1 = 1 - ADAM.b1 ** t;
  const bc2 = 1 - ADAM.b2 ** t;
  params.forEach((p, q) => {
    for (let i = 0; i < p.length; i++) {
      m[q][i] = ADAM.b1 * m[q][i] + (1 - ADAM.b1) * g[q][i];
      v[q][i] = ADAM.b2 * v[q][i] + (1 - ADAM.b2) * g[q][i] * g[q][i];
      p[i] -= (ADAM.lr * (m[q][i] / bc1)) / (Math.sqrt(v[q][i] / bc2) + ADAM.eps);
    }
  });
}

/**
 * Losses of the first `steps` training steps of the benchmark CNN (conv 3x3
 * 1->8, relu, pool 2; conv 3x3 8->16, relu, pool 2; dense 784 -> 10; mean
 * softmax cross-entropy against integer labels; Adam), in float64.
 */
export function refCnnLosses(init: CnnInit, xs: Num, labels: Int32Array, steps: number): number[] {
  const B = labels.length;
  const [C1, C2] = [init.c1b.length, init.c2b.length];
  const params = [init.c1w, init.c1b, init.c2w, init.c2b, init.outW, init.outB].map((p) => Float64Array.from(p));
  const [w1, b1, w2, b2, wo, bo] = params;
  const m = params.map((p) => new Float64Array(p.length));
  const v = params.map((p) => new Float64Array(p.length));
  const x = Float64Array.from(xs);
  const F = 7 * 7 * C2;
  const losses: number[] = [];
  for (let t = 1; t <= steps; t++) {
    const z1 = conv3(x, B, 28, 28, 1, w1, b1, C1);
    const p1 = reluPool(z1, B, 28, 28, C1);
    const z2 = conv3(p1.out, B, 14, 14, C1, w2, b2, C2);
    const p2 = reluPool(z2, B, 14, 14, C2);
    const g = params.map((p) => new Float64Array(p.length));
    const dflat = new Float64Array(B * F);
    let loss = 0;
    for (let i = 0; i < B; i++) {
      const out = Array.from(bo);
      for (let k = 0; k < F; k++) {
        const h = p2.out[i * F + k];
        if (h !== 0) for (let o = 0; o < 10; o++) out[o] += h * wo[k * 10 + o];
      }
      const mx = Math.max(...out);
      const lse = mx + Math.log(out.reduce((a, z) => a + Math.exp(z - mx), 0));
      loss += lse - out[labels[i]];
      for (let o = 0; o < 10; o++) {
        const d = (Math.exp(out[o] - lse) - (o === labels[i] ? 1 : 0)) / B;
        g[5][o] += d;
        for (let k = 0; k < F; k++) {
          g[4][k * 10 + o] += p2.out[i * F + k] * d;
          dflat[i * F + k] += wo[k * 10 + o] * d;
        }
      }
    }
    losses.push(loss / B);
    const dz2 = reluPoolVjp(z2, p2.from, dflat);
    const dp1 = conv3Vjp(p1.out, B, 14, 14, C1, w2, C2, dz2, g[2], g[3], true)!;
    const dz1 = reluPoolVjp(z1, p1.from, dp1);
    conv3Vjp(x, B, 28, 28, 1, w1, C1, dz1, g[0], g[1], false);
    adamStep(params, g, m, v, t);
  }
  return losses;
}

export function refTinyChain(v: Num): Float64Array {
  const out = Float64Array.from(v);
  for (const o of TINY_CHAIN_OPS) {
    for (let i = 0; i < out.length; i++) {
      const x = out[i];
      switch (o.op) {
        case 'add':
          out[i] = x + o.c;
          break;
        case 'mul':
          out[i] = x * o.c;
          break;
        case 'sub':
          out[i] = x - o.c;
          break;
        case 'sin':
          out[i] = Math.sin(x);
          break;
        case 'tanh':
          out[i] = Math.tanh(x);
          break;
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// verify

export class VerifyError extends Error {}

/**
 * Normwise check: max|got - want| <= rtol * max(max|want|, 1e-30), no NaN/Inf,
 * same length. Returns the achieved relative error; throws VerifyError if it
 * fails. Normwise (not elementwise) so entries near zero do not fail on
 * float32 rounding.
 */
export function verify(name: string, got: Num | number, want: Num | number, rtol: number): number {
  const g: Num = typeof got === 'number' ? [got] : got;
  const w: Num = typeof want === 'number' ? [want] : want;
  if (g.length !== w.length) throw new VerifyError(`${name}: length ${g.length}, expected ${w.length}`);
  let maxErr = 0;
  let maxRef = 0;
  let worst = -1;
  for (let i = 0; i < w.length; i++) {
    if (!Number.isFinite(g[i])) throw new VerifyError(`${name}: non-finite value ${g[i]} at index ${i}`);
    const e = Math.abs(g[i] - w[i]);
    if (e > maxErr) {
      maxErr = e;
      worst = i;
    }
    maxRef = Math.max(maxRef, Math.abs(w[i]));
  }
  const rel = maxErr / Math.max(maxRef, 1e-30);
  if (!(rel <= rtol)) {
    throw new VerifyError(
      `${name}: relative error ${rel.toExponential(2)} > rtol ${rtol.toExponential(1)} ` +
        `(worst index ${worst}: got ${g[worst]}, want ${w[worst]}; max|want| ${maxRef.toExponential(3)})`,
    );
  }
  return rel;
}
