// The idle wait's estimate (src/gpu/wait.ts): bookkeeping; only the clocks it hands out are GPU objects.
import { describe, expect, it } from 'vitest';
import { IdleWait, idleWaitWanted } from '../src/gpu/wait';
import { init } from '../src/index';

describe('IdleWait', () => {
  it('expects 1.02x + 0.5 ms the fastest of the last 5 GPU times of the same signature', async () => {
    const w = new IdleWait(true);
    const slept = async () => {
      const t = performance.now();
      await w.before('k');
      return performance.now() - t;
    };
    w.record('k', 40);
    w.record('k', 60); // a run slowed down by polling
    expect(await slept()).toBeGreaterThanOrEqual(40); // 1.02 x 40 + 0.5 (setTimeout keeps whole milliseconds)
    for (let i = 0; i < 5; i++) w.record('k', 20); // the 40 drops out after 5 newer times
    const t = await slept();
    expect(t).toBeGreaterThanOrEqual(20);
    expect(t).toBeLessThan(40);
  });

  it('sleeps only for known signatures of at least 2 ms, and not at all when disabled', async () => {
    const on = new IdleWait(true);
    on.record('short', 1);
    on.record('long', 28);
    const t0 = performance.now();
    await on.before('short');
    await on.before('unknown');
    expect(performance.now() - t0).toBeLessThan(25);
    const t1 = performance.now();
    await on.before('long');
    expect(performance.now() - t1).toBeGreaterThanOrEqual(29);
    const off = new IdleWait(false);
    off.record('long', 30);
    const t2 = performance.now();
    await off.before('long');
    expect(performance.now() - t2).toBeLessThan(25);
  });

  it('times every submission of a signature until it has 5 times, then one in 8, and every one when asked', async () => {
    const { device } = await init();
    if (!device.features.has('timestamp-query')) return; // nothing to time with
    const w = new IdleWait(true);
    const timed = (n: number, wanted = false) => {
      let k = 0;
      for (let i = 0; i < n; i++) {
        const c = w.clock(device, 'k', wanted);
        if (c) k++;
        c?.discard();
      }
      return k;
    };
    expect(timed(3)).toBe(3);
    for (let i = 0; i < 5; i++) w.record('k', 10);
    expect(timed(80)).toBe(10);
    expect(timed(4, true)).toBe(4); // submissionTimes wants each one
    expect(new IdleWait(false).clock(device, 'k')).toBeNull();
  });

  it('is on for Dawn fallback adapters in Node only, unless GRADGPU_IDLE_WAIT says otherwise', () => {
    expect(idleWaitWanted('node-dawn', true, undefined)).toBe(true);
    expect(idleWaitWanted('node-dawn', false, undefined)).toBe(false);
    expect(idleWaitWanted('browser', true, undefined)).toBe(false);
    expect(idleWaitWanted('node-dawn', true, '0')).toBe(false);
    expect(idleWaitWanted('browser', false, '1')).toBe(true);
  });
});
