// The idle wait's estimate (src/gpu/wait.ts): pure bookkeeping, no GPU.
import { describe, expect, it } from 'vitest';
import { IdleWait, idleWaitWanted } from '../src/gpu/wait';

describe('IdleWait', () => {
  it('expects the GPU time last measured for the same signature', () => {
    const w = new IdleWait(true);
    const est = () => (w as unknown as { estimate: Map<string, number> }).estimate.get('k');
    w.record('k', 10);
    expect(est()).toBe(10);
    w.record('k', 7.5);
    expect(est()).toBe(7.5);
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
