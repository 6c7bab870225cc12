// Arrays a test forgets give their buffers back when garbage-collected (a
// FinalizationRegistry), which would make buffer counts drift at random.
// settle() collects now and lets the finalizers run, so counts measured
// between two settle() calls only see what the test itself did. Node only.
import v8 from 'node:v8';
import vm from 'node:vm';
import { memoryStats } from '../../src/index';

v8.setFlagsFromString('--expose-gc');
export const gc = vm.runInNewContext('gc') as () => void;

export async function settle(): Promise<void> {
  // Finalizer callbacks run as separate tasks, sometimes several turns after
  // the collection: keep collecting until the live count holds still.
  let last = -1;
  let still = 0;
  for (let i = 0; i < 40 && still < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 2));
    const now = memoryStats().liveBuffers;
    still = now === last ? still + 1 : 0;
    last = now;
  }
}
