// The idle wait's estimate (src/gpu/wait.ts): pure bookkeeping, no GPU.
import { describe, expect, it } from 'vitest';
import { IdleWait, idleWaitWanted } from '../src/gpu/wait';

describe('IdleWait', () => {
  it('seeds from the first measurement, shrinks 3% while done on waking, grows 7% when late', () => {
    const w = new IdleWait(true);
    const est = () => (w as unknown as { estimate: Map<string, number> }).estimate.get('k');
    w.record('k', 10);
    expect(est()).toBe(10);
    w.record('k', 10.5); // woke at 10 and it was done within a millisecond
    expect(est()).toBeCloseTo(9.7, 10);
    w.record('k', 20); // woke at 9.7, had to poll until 20
    expect(est()).toBeCloseTo(9.7 * 1.07, 10);
  });

  it('sleeps only for known signatures of at least 2 ms, and not at all when disabled', async () => {
    const on = new IdleWait(true);
    on.record('short', 1);
    on.record('long', 30);
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

  it('is on for Dawn fallback adapters in Node only, unless GRADGPU_IDLE_WAIT says otherwise', () => {
    expect(idleWaitWanted('node-dawn', true, undefined)).toBe(true);
    expect(idleWaitWanted('node-dawn', false, undefined)).toBe(false);
    expect(idleWaitWanted('browser', true, undefined)).toBe(false);
    expect(idleWaitWanted('node-dawn', true, '0')).toBe(false);
    expect(idleWaitWanted('browser', false, '1')).toBe(true);
  });
});
