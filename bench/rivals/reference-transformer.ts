// Float64 reference of the benchmark transformer's training losses: a small
// reverse-mode tape over Float64Arrays with just the layers the model uses,
// each with its hand-written VJP. Independent of every library benchmarked.
import { ADAM, type TransformerData, type TransformerInit, transformerShapes } from './spec';

/** A float64 tensor on the tape: its values and the cotangent accumulated into it. */
interface V {
  v: Float64Array;
  g: Float64Array;
}

class Tape {
  private backs: Array<() => void> = [];
  node(v: Float64Array, back?: (out: V) => void): V {
    const out = { v, g: new Float64Array(v.length) };
    if (back) this.backs.push(() => back(out));
    return out;
  }
  backward(loss: V): void {
    loss.g[0] = 1;
    for (let i = this.backs.length - 1; i >= 0; i--) this.backs[i]();
  }
}

/** Rows of a (m, k) times b (k, n); `g`-free matmul helpers below serve both directions. */
function mm(a: Float64Array, b: Float64Array, m: number, k: number, n: number, out: Float64Array, transA = false, transB = false): void {
  for (let i = 0; i < m; i++)
    for (let p = 0; p < k; p++) {
      const aip = transA ? a[p * m + i] : a[i * k + p];
      if (aip === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j] += aip * (transB ? b[j * k + p] : b[p * n + j]);
    }
}

/** Batched (G, m, k) @ (G, k, n), optionally with b stored as (G, n, k). */
function bmm(t: Tape, a: V, b: V, G: number, m: number, k: number, n: number, transB = false): V {
  const out = new Float64Array(G * m * n);
  const sub = (x: Float64Array, g: number, size: number) => x.subarray(g * size, (g + 1) * size);
  for (let g = 0; g < G; g++) mm(sub(a.v, g, m * k), sub(b.v, g, k * n), m, k, n, sub(out, g, m * n), false, transB);
  return t.node(out, (o) => {
    for (let g = 0; g < G; g++) {
      const dO = sub(o.g, g, m * n);
      mm(dO, sub(b.v, g, k * n), m, n, k, sub(a.g, g, m * k), false, !transB); // dA = dO B^T
      if (transB)
        mm(dO, sub(a.v, g, m * k), n, m, k, sub(b.g, g, k * n), true, false); // dB' = dO^T A
      else mm(sub(a.v, g, m * k), dO, k, m, n, sub(b.g, g, k * n), true, false); // dB = A^T dO
    }
  });
}

/** a + b, b broadcast over a's leading dims (b.length divides a.length). */
function addB(t: Tape, a: V, b: V): V {
  const n = b.v.length;
  return t.node(
    a.v.map((x, i) => x + b.v[i % n]),
    (o) => o.g.forEach((d, i) => ((a.g[i] += d), (b.g[i % n] += d))),
  );
}

function embed(t: Tape, table: V, idx: Int32Array, D: number): V {
  const out = new Float64Array(idx.length * D);
  idx.forEach((r, i) => out.set(table.v.subarray(r * D, (r + 1) * D), i * D));
  return t.node(out, (o) =>
    idx.forEach((r, i) => {
      for (let j = 0; j < D; j++) table.g[r * D + j] += o.g[i * D + j];
    }),
  );
}

/** (x - mean) / sqrt(var + 1e-5) * g + b over rows of D. */
function layerNorm(t: Tape, x: V, g: V, b: V, D: number): V {
  const R = x.v.length / D;
  const xhat = new Float64Array(x.v.length);
  const rstd = new Float64Array(R);
  const out = new Float64Array(x.v.length);
  for (let r = 0; r < R; r++) {
    const row = x.v.subarray(r * D, (r + 1) * D);
    const mu = row.reduce((s, z) => s + z, 0) / D;
    const vr = row.reduce((s, z) => s + (z - mu) ** 2, 0) / D;
    rstd[r] = 1 / Math.sqrt(vr + 1e-5);
    for (let j = 0; j < D; j++) {
      xhat[r * D + j] = (row[j] - mu) * rstd[r];
      out[r * D + j] = xhat[r * D + j] * g.v[j] + b.v[j];
    }
  }
  return t.node(out, (o) => {
    for (let r = 0; r < R; r++) {
      let m1 = 0;
      let m2 = 0;
      for (let j = 0; j < D; j++) {
        const k = r * D + j;
        const dxh = o.g[k] * g.v[j];
        m1 += dxh / D;
        m2 += (dxh * xhat[k]) / D;
        g.g[j] += o.g[k] * xhat[k];
        b.g[j] += o.g[k];
      }
      for (let j = 0; j < D; j++) {
        const k = r * D + j;
        x.g[k] += rstd[r] * (o.g[k] * g.v[j] - m1 - xhat[k] * m2);
      }
    }
  });
}

const C = Math.sqrt(2 / Math.PI);
function gelu(t: Tape, x: V): V {
  const th = x.v.map((z) => Math.tanh(C * (z + 0.044715 * z ** 3)));
  return t.node(
    x.v.map((z, i) => 0.5 * z * (1 + th[i])),
    (o) =>
      x.v.forEach((z, i) => {
        x.g[i] += o.g[i] * (0.5 * (1 + th[i]) + 0.5 * z * (1 - th[i] ** 2) * C * (1 + 3 * 0.044715 * z * z));
      }),
  );
}

/** (B, T, H, dh) <-> (B, H, T, dh): swapping axes 1 and 2 of a 4-d array. */
function swap12(t: Tape, x: V, A: number, B: number, Cn: number, E: number): V {
  const at = (a: number, b: number, c: number, e: number) => ((a * B + b) * Cn + c) * E + e;
  const to = (a: number, b: number, c: number, e: number) => ((a * Cn + c) * B + b) * E + e;
  const out = new Float64Array(x.v.length);
  const each = (f: (src: number, dst: number) => void) => {
    for (let a = 0; a < A; a++)
      for (let b = 0; b < B; b++) for (let c = 0; c < Cn; c++) for (let e = 0; e < E; e++) f(at(a, b, c, e), to(a, b, c, e));
  };
  each((s, d) => (out[d] = x.v[s]));
  return t.node(out, (o) => each((s, d) => (x.g[s] += o.g[d])));
}

/** Causal softmax of scale * scores over rows (G, T, T): position i sees j <= i. */
function causalSoftmax(t: Tape, s: V, T: number, scale: number): V {
  const p = new Float64Array(s.v.length);
  for (let r = 0; r < s.v.length / T; r++) {
    const i = r % T;
    let mx = -Infinity;
    for (let j = 0; j <= i; j++) mx = Math.max(mx, s.v[r * T + j] * scale);
    let z = 0;
    for (let j = 0; j <= i; j++) z += p[r * T + j] = Math.exp(s.v[r * T + j] * scale - mx);
    for (let j = 0; j <= i; j++) p[r * T + j] /= z;
  }
  return t.node(p, (o) => {
    for (let r = 0; r < s.v.length / T; r++) {
      let dot = 0;
      for (let j = 0; j < T; j++) dot += o.g[r * T + j] * p[r * T + j];
      for (let j = 0; j < T; j++) s.g[r * T + j] += scale * p[r * T + j] * (o.g[r * T + j] - dot);
    }
  });
}

/** sum(w * cross-entropy(logits rows, targets)) / sum(w). */
function weightedCe(t: Tape, logits: V, d: TransformerData, Vn: number): V {
  const total = d.weights.reduce((a, b) => a + b, 0);
  let loss = 0;
  const soft = new Float64Array(logits.v.length);
  d.targets.forEach((y, r) => {
    const row = logits.v.subarray(r * Vn, (r + 1) * Vn);
    const mx = Math.max(...row);
    const lse = mx + Math.log(row.reduce((a, z) => a + Math.exp(z - mx), 0));
    loss += (d.weights[r] * (lse - row[y])) / total;
    for (let c = 0; c < Vn; c++) soft[r * Vn + c] = Math.exp(row[c] - lse);
  });
  return t.node(Float64Array.of(loss), (o) =>
    d.targets.forEach((y, r) => {
      for (let c = 0; c < Vn; c++) logits.g[r * Vn + c] += (o.g[0] * d.weights[r] * (soft[r * Vn + c] - (c === y ? 1 : 0))) / total;
    }),
  );
}

/** Losses of the first `steps` Adam steps of the benchmark transformer, in float64. */
export function refTransformerLosses(init: TransformerInit, data: TransformerData, steps: number): number[] {
  const { vocab: Vn, context: T, dim: D, heads: H, layers } = init.config;
  const B = data.tokens.length / T;
  const dh = D / H;
  const names = transformerShapes(init.config).map(([n]) => n);
  const values = names.map((n) => Float64Array.from(init.params[n]));
  const m = values.map((p) => new Float64Array(p.length));
  const v = values.map((p) => new Float64Array(p.length));
  const losses: number[] = [];
  for (let step = 1; step <= steps; step++) {
    const t = new Tape();
    const P = new Map(names.map((n, i) => [n, t.node(values[i])]));
    const p = (n: string) => P.get(n)!;
    const dense = (x: V, w: string, k: number, n: number) => bmm(t, x, p(w), 1, B * T, k, n);
    let x = addB(t, embed(t, p('tokens'), data.tokens, D), p('positions'));
    for (let l = 0; l < layers; l++) {
      const q = (n: string) => `blocks.${l}.${n}`;
      const h = layerNorm(t, x, p(q('ln1.g')), p(q('ln1.b')), D);
      const heads = (w: string) => swap12(t, dense(h, q(w), D, D), B, T, H, dh); // (B, H, T, dh)
      const [Q, K, Vv] = [heads('attn.wq'), heads('attn.wk'), heads('attn.wv')];
      const att = causalSoftmax(t, bmm(t, Q, K, B * H, T, dh, T, true), T, 1 / Math.sqrt(dh));
      const o = swap12(t, bmm(t, att, Vv, B * H, T, T, dh), B, H, T, dh);
      x = addB(t, x, dense(o, q('attn.wo'), D, D));
      const h2 = layerNorm(t, x, p(q('ln2.g')), p(q('ln2.b')), D);
      const u = gelu(t, addB(t, dense(h2, q('mlp.w1'), D, 4 * D), p(q('mlp.b1'))));
      x = addB(t, x, addB(t, dense(u, q('mlp.w2'), 4 * D, D), p(q('mlp.b2'))));
    }
    const logits = dense(layerNorm(t, x, p('lnF.g'), p('lnF.b'), D), 'head', D, Vn);
    const loss = weightedCe(t, logits, data, Vn);
    losses.push(loss.v[0]);
    t.backward(loss);
    const bc1 = 1 - ADAM.b1 ** step;
    const bc2 = 1 - ADAM.b2 ** step;
    values.forEach((w, i) => {
      const g = P.get(names[i])!.g;
      for (let j = 0; j < w.length; j++) {
        m[i][j] = ADAM.b1 * m[i][j] + (1 - ADAM.b1) * g[j];
        v[i][j] = ADAM.b2 * v[i][j] + (1 - ADAM.b2) * g[j] * g[j];
        w[j] -= (ADAM.lr * (m[i][j] / bc1)) / (Math.sqrt(v[i][j] / bc2) + ADAM.eps);
      }
    });
  }
  return losses;
}
