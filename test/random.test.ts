// random keys (Threefry-2x32): known-answer vectors, JAX's keys and split,
// GPU == host bit for bit, and the samplers' distributions at fixed keys
// (deterministic, so the statistical bounds cannot flake).
import { describe, expect, it } from 'vitest';
import {
  array,
  broadcastTo,
  expandDims,
  DTypeError,
  erf,
  erfInv,
  mean,
  nn,
  random,
  setHostEvaluation,
  sum,
  ValueError,
  type NDArray,
} from '../src/index';
import { threefry2x32 } from '../src/array/host';
import { erf64 } from './helpers/fd64';

const u32 = async (x: NDArray) => Array.from(await x.data(), (v) => v >>> 0);

async function bothPaths(make: () => NDArray): Promise<[number[], number[]]> {
  setHostEvaluation(0);
  const gpu = Array.from(await make().data());
  setHostEvaluation(1 << 20);
  const host = Array.from(await make().data());
  setHostEvaluation(0);
  return [gpu, host];
}

describe('Threefry-2x32 and keys', () => {
  it("matches Random123's known-answer vectors (20 rounds)", () => {
    expect(threefry2x32(0, 0, 0, 0)).toEqual([0x6b200159, 0x99ba4efe]);
    expect(threefry2x32(0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff)).toEqual([0x1cb996fc, 0xbb002be7]);
    expect(threefry2x32(0x13198a2e, 0x03707344, 0x243f6a88, 0x85a308d3)).toEqual([0xc4923a9c, 0x483df7a0]);
  });
  it("gives JAX's keys: key(0) = [0, 0], split(key(0)) as jax.random.split", async () => {
    expect(await u32(random.key(0))).toEqual([0, 0]);
    expect(await u32(random.key(2 ** 32 + 5))).toEqual([1, 5]);
    expect(await u32(random.key(-1))).toEqual([0xffffffff, 0xffffffff]);
    for (const host of [false, true]) {
      setHostEvaluation(host ? 1 << 20 : 0);
      const [a, b] = random.split(random.key(0));
      expect(await u32(a!)).toEqual([1797259609, 2579123966]);
      expect(await u32(b!)).toEqual([928981903, 3453687069]);
      expect(await u32(random.foldIn(random.key(0), 1))).toEqual([928981903, 3453687069]);
    }
    setHostEvaluation(0);
    expect(() => random.key(0.5)).toThrow(ValueError);
    expect(() => random.uniform(array([0, 0]), [2])).toThrow(DTypeError);
  });
  it('GPU and host give the same bits, splits, uniforms and permutations for many keys (normals within 2e-6)', async () => {
    for (let s = 1; s < 40; s += 7) {
      const k = array(new Int32Array([s * 0x9e3779b9, -s]));
      for (const make of [() => random.bits(k, [33]), () => random.split(k, 5)[3]!, () => random.uniform(k, [65]), () => random.permutation(k, 50)]) {
        const [gpu, host] = await bothPaths(make);
        expect(gpu).toEqual(host);
      }
      // normal goes through log and sqrt (WGSL's on the GPU, float64 on the host): close, not bitwise.
      const [gpu, host] = await bothPaths(() => random.normal(k, [17]));
      gpu.forEach((v, i) => expect(Math.abs(v - host[i]!)).toBeLessThan(2e-6 * Math.max(1, Math.abs(v))));
    }
  });
  it('a draw depends only on the key and the index: a shorter draw is a prefix of a longer one', async () => {
    const k = random.key(7);
    const long = await random.uniform(k, [100]).data();
    const short = await random.uniform(k, [10]).data();
    expect(Array.from(short)).toEqual(Array.from(long.slice(0, 10)));
    const other = await random.uniform(random.split(k)[0]!, [10]).data();
    expect(Array.from(other)).not.toEqual(Array.from(short));
  });
});

describe('samplers', () => {
  const n = 200000;
  it('uniform: in [minval, maxval), mean and variance of U(0, 1)', async () => {
    const u = random.uniform(random.key(1), [n]);
    const d = await u.data();
    expect(d.every((v) => v >= 0 && v < 1)).toBe(true);
    expect(Math.abs((await mean(u).item()) - 0.5)).toBeLessThan(0.005);
    expect(Math.abs((await nn.variance(u).item()) - 1 / 12)).toBeLessThan(0.002);
    const s = await random.uniform(random.key(2), [1000], -3, 5).data();
    expect(s.every((v) => v >= -3 && v < 5)).toBe(true);
  });
  it('normal: mean 0, variance 1, tails (P(|z| > 3) = 0.27%)', async () => {
    const z = random.normal(random.key(3), [n]);
    const d = await z.data();
    expect(Math.abs((await mean(z).item()) - 0)).toBeLessThan(0.01);
    expect(Math.abs((await nn.variance(z).item()) - 1)).toBeLessThan(0.02);
    const tail = d.filter((v) => Math.abs(v) > 3).length / n;
    expect(Math.abs(tail - 0.0027)).toBeLessThan(0.0008);
    expect(d.every(Number.isFinite)).toBe(true);
  });
  it('erfInv inverts erf (float64 reference by bisection)', async () => {
    const xs = [-0.999, -0.9, -0.5, -0.01, 0, 1e-6, 0.3, 0.75, 0.99, 0.99999];
    const got = await erfInv(array(xs)).data();
    xs.forEach((x, i) => {
      let [lo, hi] = [-6, 6];
      for (let k = 0; k < 60; k++) {
        const mid = (lo + hi) / 2;
        if (erf64(mid) < x) lo = mid;
        else hi = mid;
      }
      const want = (lo + hi) / 2;
      expect(Math.abs(got[i]! - want), `erfInv(${x}) = ${got[i]} vs ${want}`).toBeLessThanOrEqual(
        2e-6 * Math.max(1, Math.abs(want)) + (1e-6 * Math.abs(want)) / (1 - Math.abs(x) + 1e-3),
      );
    });
    expect(Array.from(await erfInv(array([1, -1, 2, NaN])).data())).toEqual([Infinity, -Infinity, NaN, NaN]);
    const back = await erf(erfInv(array([0.2, -0.6]))).data();
    expect(Math.abs(back[0]! - 0.2) + Math.abs(back[1]! + 0.6)).toBeLessThan(1e-6);
  });
  it('bernoulli: frequency p; dropout is bernoulli + where', async () => {
    const b = random.bernoulli(random.key(4), 0.3, [n]);
    expect(b.dtype).toBe('bool');
    expect(Math.abs((await mean(b).item()) - 0.3)).toBeLessThan(0.005);
    const p = random.bernoulli(random.key(5), array([0, 1, 0.5]));
    expect(Array.from(await p.data()).slice(0, 2)).toEqual([0, 1]);
  });
  it('categorical: frequencies follow softmax(logits)', async () => {
    const logits = array([Math.log(0.1), Math.log(0.6), Math.log(0.3)]);
    const rows = 30000;
    const draws = random.categorical(random.key(6), broadcastTo(expandDims(logits, 0), [rows, 3]));
    expect(draws.dtype).toBe('int32');
    const d = await draws.data();
    const freq = [0, 1, 2].map((c) => d.filter((v) => v === c).length / rows);
    [0.1, 0.6, 0.3].forEach((p, c) => expect(Math.abs(freq[c]! - p), `class ${c}`).toBeLessThan(0.015));
  });
  it('permutation: each of 0..n-1 once; of an array, its rows shuffled', async () => {
    const p = Array.from(await random.permutation(random.key(8), 8000).data());
    expect([...p].sort((a, b) => a - b)).toEqual(Array.from({ length: 8000 }, (_, i) => i));
    expect(p.slice(0, 20)).not.toEqual(Array.from({ length: 20 }, (_, i) => i));
    const x = array([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
    const rows = await random.permutation(random.key(9), x).toNested();
    expect((rows as number[][]).map((r) => r[0]).sort()).toEqual([1, 2, 3]);
    expect(await sum(random.permutation(random.key(9), 0)).item()).toBe(0);
  });
  it('randint: integers in [minval, maxval), each about equally often', async () => {
    const r = await random.randint(random.key(10), [60000], -2, 4).data();
    expect(r.every((v) => v >= -2 && v < 4 && Number.isInteger(v))).toBe(true);
    for (let v = -2; v < 4; v++) expect(Math.abs(r.filter((x) => x === v).length / 60000 - 1 / 6)).toBeLessThan(0.01);
  });
});
