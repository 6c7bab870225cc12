// Smoke test for the rival workloads in Node (Dawn; SwiftShader when there is
// no GPU). Runs every rival on small sizes, verifies each answer against the
// float64 reference (first call, and again after timing), checks that the
// library's live tensor/buffer count does not grow over the timed calls, and
// prints median timings (5 timed calls after 2 warm-ups).
//
//   npx tsx bench/rivals/smoke.ts            (or: npx vite-node bench/rivals/smoke.ts)
//   RIVALS="plain-js,jax-js jit" npx tsx bench/rivals/smoke.ts   # subset, by name
//
// Exit code 1 if any verification or leak check fails.
import { installNodeGpu } from './node-gpu';
import { refMatmul, refMatmulVjp, refMlpLosses, refSeed, refTinyChain, verify } from './reference';
import { matmulInputs, mlpInputs, type Rival, type Runner, seedInputs, tinyChainInput } from './spec';
import { measure } from './timing';
import { rivals as allRivals } from './workloads';

const WARMUP = 2;
const REPS = 5;

interface Case {
  label: string;
  rtol: number;
  /** Prepare the workload; `check` verifies one result and returns its relative error. */
  prepare(r: Rival): Promise<{ run: Runner<unknown>; check(result: unknown, callIndex: number): number }>;
}

const cases: Case[] = [];

for (const [n, d] of [
  [1, 2],
  [1024, 64],
] as const) {
  const { flatParams, x } = seedInputs(n, d);
  const want = refSeed(flatParams, x, n, d);
  const rtol = 1e-4;
  cases.push({
    label: `seed N=${n} d=${d}`,
    rtol,
    async prepare(r) {
      const run = await r.prepareSeed(flatParams, x, n, d);
      return { run, check: (got) => verify(`${r.name} ${this.label}`, got as Float32Array, want, rtol) };
    },
  });
}

for (const [n, chain] of [
  [256, 1],
  [128, 10],
] as const) {
  const { a, b } = matmulInputs(n);
  const want = refMatmul(a, b, n, chain);
  const rtol = chain === 1 ? 1e-4 : 1e-3;
  cases.push({
    label: chain === 1 ? `matmul n=${n}` : `matmul n=${n} x${chain}`,
    rtol,
    async prepare(r) {
      const run = await r.prepareMatmul(a, b, n, chain);
      return { run, check: (got) => verify(`${r.name} ${this.label}`, got as Float32Array, want, rtol) };
    },
  });
}

{
  const n = 128;
  const { a, b } = matmulInputs(n, 5);
  const [wantA, wantB] = refMatmulVjp(a, b, n);
  const rtol = 1e-4;
  cases.push({
    label: `matmul vjp n=${n}`,
    rtol,
    async prepare(r) {
      const run = await r.prepareMatmulVjp(a, b, n);
      return {
        run,
        check: (got) => {
          const [dA, dB] = got as [Float32Array, Float32Array];
          return Math.max(verify(`${r.name} ${this.label} dA`, dA, wantA, rtol), verify(`${r.name} ${this.label} dB`, dB, wantB, rtol));
        },
      };
    },
  });
}

{
  const { init, xs, ys } = mlpInputs(256, 64, 256, 1);
  // Steps: 5 verified up front, then 1 + WARMUP + REPS more in the harness; all are checked.
  const totalSteps = 5 + 1 + WARMUP + REPS;
  const want = refMlpLosses(init, xs, ys, totalSteps);
  const rtol = 1e-4;
  cases.push({
    label: 'mlp step (5 verified)',
    rtol,
    async prepare(r) {
      const step = await r.prepareMlp(init, xs, ys);
      // Run the first 5 steps here (verified below); the harness then times further steps.
      let i = 0;
      const losses: number[] = [];
      for (; i < 5; i++) losses.push(await step());
      verify(`${r.name} mlp losses 1-5`, losses, want.slice(0, 5), rtol);
      const run: Runner<unknown> = Object.assign(
        async () => {
          const k = i++;
          return [k, await step()] as const;
        },
        { dispose: step.dispose },
      );
      return {
        run,
        check: (got) => {
          const [k, loss] = got as [number, number];
          return verify(`${r.name} mlp loss step ${k + 1}`, loss, want[k], rtol);
        },
      };
    },
  });
}

{
  const v = tinyChainInput(16);
  const want = refTinyChain(v);
  // WGSL only guarantees sin/cos to 2^-11 absolute error (SwiftShader is
  // close to that), and the chain feeds 10 sin calls through x1.5 gains.
  const rtol = 5e-3;
  cases.push({
    label: 'tiny chain 50 ops x16',
    rtol,
    async prepare(r) {
      const run = await r.prepareTinyChain(v);
      return { run, check: (got) => verify(`${r.name} ${this.label}`, got as Float32Array, want, rtol) };
    },
  });
}

function fmt(ms: number): string {
  return ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2);
}

async function main(): Promise<number> {
  const t0 = performance.now();
  const info = await installNodeGpu();
  console.log(`WebGPU adapter: ${info.adapterDescription}${info.software ? ' (software)' : ''}`);

  const only = process.env.RIVALS?.split(',').map((s) => s.trim());
  const rivals = only ? allRivals.filter((r) => only.includes(r.name)) : allRivals;
  for (const r of rivals) {
    await r.init();
    console.log(`  ${r.name}: ${r.notes}`);
  }

  const table: Record<string, Record<string, string>> = {};
  const errors: Record<string, Record<string, string>> = {};
  const failures: string[] = [];
  for (const c of cases) {
    table[c.label] = {};
    errors[c.label] = {};
    for (const r of rivals) {
      let cell: string;
      try {
        const { run, check } = await c.prepare(r);
        let calls = 0;
        let worst = check(await run(), calls++);
        const wrapped = async () => {
          const res = await run();
          worst = Math.max(worst, check(res, calls++));
          return res;
        };
        // Warm up outside measure() so the live count is sampled in steady state.
        for (let i = 0; i < WARMUP; i++) await wrapped();
        const live0 = r.liveCount?.();
        const { timing } = await measure(wrapped, { warmup: 0, reps: REPS });
        const live1 = r.liveCount?.();
        run.dispose?.();
        cell = fmt(timing.median);
        if (live0 !== undefined && live1 !== undefined && live1 !== live0) {
          failures.push(`${r.name} / ${c.label}: live count grew ${live0} -> ${live1} over ${REPS} calls (leak)`);
          cell += ' LEAK';
        }
        errors[c.label][r.name] = worst.toExponential(1);
      } catch (e) {
        failures.push(`${r.name} / ${c.label}: ${(e as Error).message}`);
        cell = 'FAIL';
      }
      table[c.label][r.name] = cell;
    }
  }
  for (const r of rivals) await r.dispose?.();

  console.log(`\nmedian ms of ${REPS} calls after ${WARMUP} warm-ups (compute + readback; inputs resident):`);
  console.table(table);
  console.log('max relative error vs float64 reference over all calls:');
  console.table(errors);
  for (const f of failures) console.error(`FAIL ${f}`);
  console.log(`total ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return failures.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
