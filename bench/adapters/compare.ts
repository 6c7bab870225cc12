// Runs the reference problem and the demo's MLP on fixed inputs and prints
// the results as JSON, so two adapters (SwiftShader here, a real GPU elsewhere)
// can be compared: `vite-node bench/adapters/compare.ts > a.json`, then
// `vite-node bench/adapters/compare.ts --diff a.json b.json`.
// Inputs come from randomUniform (integer hashing only: identical on every adapter).
import fs from 'node:fs';
import {
  add,
  adam,
  applyUpdates,
  deviceInfo,
  gradOverFlatParams,
  matmul,
  mean,
  randomUniform,
  scale,
  sin,
  square,
  sub,
  tanh,
  valueAndGrad,
  type NDArray,
} from '../../src/index';

async function run() {
  const out: Record<string, number[]> = {};
  for (const [n, d] of [
    [1, 2],
    [1024, 64],
    [65536, 512],
  ] as const) {
    const x = randomUniform([n, d], 11, -1, 1);
    const p = randomUniform([d + 1], 12, -1, 1);
    out[`seed ${n}x${d}`] = Array.from(await gradOverFlatParams(p, x).data());
  }
  type P = { layer1: { w: NDArray; b: NDArray }; layer2: { w: NDArray; b: NDArray } };
  let params: P = {
    layer1: { w: randomUniform([1, 32], 1, -1, 1), b: randomUniform([32], 2, -0.1, 0.1) },
    layer2: { w: scale(randomUniform([32, 1], 3, -1, 1), 0.3), b: randomUniform([1], 4, -0.01, 0.01) },
  };
  const x = randomUniform([256, 1], 5, -3, 3);
  const y = sin(x);
  const loss = (p: P) => mean(square(sub(add(matmul(tanh(add(matmul(x, p.layer1.w), p.layer1.b)), p.layer2.w), p.layer2.b), y)));
  const opt = adam(0.01);
  let state = opt.init(params);
  const losses: number[] = [];
  for (let i = 0; i < 200; i++) {
    const [l, g] = valueAndGrad(loss)(params);
    const [u, s] = opt.update(g, state, params);
    state = s;
    params = applyUpdates(params, u);
    if (i % 20 === 0 || i === 199) losses.push(await l.item());
  }
  out['mlp losses'] = losses;
  out['mlp layer1.w'] = Array.from(await params.layer1.w.data());
  return { device: await deviceInfo(), results: out };
}

const args = process.argv.slice(2);
if (args[0] === '--diff') {
  const [a, b] = args.slice(1).map((f) => JSON.parse(fs.readFileSync(f!, 'utf8')));
  console.log(
    `A: ${a.device.vendor} ${a.device.architecture} ${a.device.description}\nB: ${b.device.vendor} ${b.device.architecture} ${b.device.description}`,
  );
  for (const k of Object.keys(a.results)) {
    const va: number[] = a.results[k],
      vb: number[] = b.results[k];
    let abs = 0,
      rel = 0;
    va.forEach((v, i) => {
      const e = Math.abs(v - vb[i]!);
      abs = Math.max(abs, e);
      rel = Math.max(rel, e / Math.max(Math.abs(v), 1e-30));
    });
    console.log(`${k}: max |diff| ${abs.toExponential(2)}, max relative ${rel.toExponential(2)} over ${va.length} values`);
  }
} else {
  console.log(JSON.stringify(await run()));
  setTimeout(() => process.exit(0), 100);
}
