// The benchmark in Node: `npm run bench` (full), `npm run bench:smoke` (quick).
//
//   vite-node bench/node.ts [--quick] [--only=seed,matmul,mlp,overhead] [--libs=ours,plain-js,jax,tfjs]
//                           [--sizes=large] [--budget=2000] [--reps=20] [--mlp-steps=100]
//                           [--out=bench/results] [--no-write] [--strict]
//
// Runs under vite-node because the library imports its WGSL with Vite's
// `?raw`. Our library finds its Dawn adapter itself (init()); the rivals get
// navigator.gpu from bench/rivals/node-gpu.ts (a second Dawn instance in the
// same process, plus a resolve hook so TF.js loads its ESM build).
//
// Prints the markdown tables and a final "N passed, M failed" line. Writes
// bench/results/<date>-<device>-node.{json,md,svg} (not in --quick mode
// unless --out is given). Exit code 1 when a verification fails: any library
// in --quick / --strict mode, otherwise only ours.
import os from 'node:os';
import path from 'node:path';
import { ours, oursDevice } from './ours';
import { oursJit } from './ours-jit';
import { installNodeGpu } from './rivals/node-gpu';
import { rivals } from './rivals/workloads';
import { initLibs, parseOptions, runBench, selectLibs } from './run';
import { finishRun } from './output';

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const opts = parseOptions(args);
  const flag = (f: string) => args.includes(f);
  const outArg = args.find((a) => a.startsWith('--out='))?.slice(6);
  const write = !flag('--no-write') && (!opts.quick || !!outArg);
  const strict = opts.quick || flag('--strict');
  const log = (s: string) => console.log(s);

  const libs = selectLibs([ours, oursJit, ...rivals], opts);
  // Ours first: it looks for its own adapter (real GPU, else SwiftShader).
  const initFailures = await initLibs(
    libs.filter((l) => l === ours || l === oursJit),
    log,
  );
  let rivalAdapter: string | undefined;
  const gpuRivals = libs.filter((l) => l !== ours && l !== oursJit && l.name !== 'plain-js');
  if (gpuRivals.length) {
    const info = await installNodeGpu();
    rivalAdapter = `${info.adapterDescription}${info.software ? ' (software)' : ''}`;
  }
  for (const [k, v] of await initLibs(
    libs.filter((l) => l !== ours && l !== oursJit),
    log,
  ))
    initFailures.set(k, v);

  const d = oursDevice();
  const device = d
    ? { vendor: d.vendor, architecture: d.architecture, description: d.description, isFallback: d.isFallback, backend: d.backend }
    : { vendor: '', architecture: '', description: 'unknown (ours failed to init)', isFallback: false };
  log(
    `device (ours): ${[device.vendor, device.architecture, device.description].filter(Boolean).join(' / ')}${device.isFallback ? ' (fallback)' : ''}`,
  );
  if (rivalAdapter) log(`device (rivals): ${rivalAdapter}`);
  log(`libraries: ${libs.map((l) => l.name).join(', ')}\n`);

  const platform = `Node ${process.version}, ${os.type()} ${os.release()} ${os.arch()}, ${os.cpus().length}× ${os.cpus()[0]?.model?.trim() ?? 'CPU'}`;
  const load0 = os.loadavg()[0]!;
  const report = await runBench(opts, libs, { env: 'node', platform, device, rivalAdapter, log }, initFailures);
  report.loadAverage = [load0, os.loadavg()[0]!];
  for (const l of libs) await l.dispose?.();

  return finishRun(report, write ? (outArg ?? path.join(path.dirname(new URL(import.meta.url).pathname), 'results')) : null, strict);
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
