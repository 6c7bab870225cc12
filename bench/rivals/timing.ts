// Minimal timing helper shared by the Node smoke test and a future browser
// page. Browser-safe.

export interface Timing {
  /** Median wall time of the timed calls, ms. */
  median: number;
  min: number;
  max: number;
  samples: number[];
}

/** Run `warmup` untimed calls, then `reps` timed calls (each awaited in turn). Returns the last result too. */
export async function measure<T>(
  run: () => Promise<T>,
  { warmup = 2, reps = 5 }: { warmup?: number; reps?: number } = {},
): Promise<{ timing: Timing; last: T }> {
  let last!: T;
  for (let i = 0; i < warmup; i++) last = await run();
  const samples: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    last = await run();
    samples.push(performance.now() - t0);
  }
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { timing: { median, min: sorted[0], max: sorted[sorted.length - 1], samples }, last };
}
