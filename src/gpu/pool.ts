// Size-bucketed pool of storage buffers. Buffers are never destroyed during
// normal work: a freed one goes back to its bucket and the next request of a
// similar size reuses it, so a training loop allocates nothing after warm-up.

import { OutOfMemoryError } from '../errors';

export interface Storage {
  buffer: GPUBuffer;
  /** Bytes the value occupies (the buffer may be larger: bucket rounding). */
  bytes: number;
  /** Nodes sharing this buffer (reshape aliases); back to the pool at 0. */
  refs: number;
  /** The pool (and so the device) it came from. */
  pool: BufferPool;
}

export interface MemoryStats {
  /** Storage buffers holding values (arrays, or intermediates mid-evaluation). */
  liveBuffers: number;
  liveBytes: number;
  /** Buffers waiting in the pool for reuse. */
  pooledBuffers: number;
  pooledBytes: number;
  /** queue.submit calls and compute dispatches so far. */
  submissions: number;
  dispatches: number;
  /** Evaluations of small graphs done on the host instead (setHostEvaluation). */
  hostEvaluations: number;
}

const USAGE_STORAGE = 0x80 | 0x04 | 0x08; // STORAGE | COPY_SRC | COPY_DST

/** Round up to 256 bytes, then to a quarter-octave bucket so similar sizes share buffers. */
export function bucketSize(bytes: number): number {
  const b = Math.max(256, Math.ceil(bytes / 256) * 256);
  if (b <= 4096) return b;
  const top = 2 ** Math.floor(Math.log2(b));
  const quarter = top / 4;
  return Math.ceil(b / quarter) * quarter;
}

export class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  readonly stats: MemoryStats = { liveBuffers: 0, liveBytes: 0, pooledBuffers: 0, pooledBytes: 0, submissions: 0, dispatches: 0, hostEvaluations: 0 };

  constructor(readonly device: GPUDevice, private maxBytes: number) {}

  acquire(bytes: number): Storage {
    if (bytes > this.maxBytes) {
      throw new OutOfMemoryError(
        `an array of ${bytes} bytes exceeds this device's maxStorageBufferBindingSize of ${this.maxBytes} bytes`,
      );
    }
    const size = bucketSize(bytes);
    const list = this.free.get(size);
    let buffer = list?.pop();
    if (buffer) {
      this.stats.pooledBuffers--;
      this.stats.pooledBytes -= size;
    } else {
      buffer = this.create(size);
    }
    this.stats.liveBuffers++;
    this.stats.liveBytes += size;
    return { buffer, bytes, refs: 1, pool: this };
  }

  private create(size: number): GPUBuffer {
    try {
      return this.device.createBuffer({ size, usage: USAGE_STORAGE });
    } catch (e) {
      // Drop what the pool holds and try once more before giving up.
      this.flush();
      try {
        return this.device.createBuffer({ size, usage: USAGE_STORAGE });
      } catch {
        throw new OutOfMemoryError(`allocating ${size} bytes failed (${(e as Error).message}); ` +
          `memory: ${JSON.stringify(this.stats)}`);
      }
    }
  }

  release(s: Storage): void {
    if (--s.refs > 0) return;
    const size = s.buffer.size;
    this.stats.liveBuffers--;
    this.stats.liveBytes -= size;
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(s.buffer);
    this.stats.pooledBuffers++;
    this.stats.pooledBytes += size;
  }

  /** Destroy every pooled buffer (live ones are untouched). */
  flush(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.stats.pooledBuffers = 0;
    this.stats.pooledBytes = 0;
  }
}
