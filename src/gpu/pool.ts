// Size-bucketed pool of storage buffers. Buffers are never destroyed during
// normal work: a freed one goes back to its bucket and the next request of a
// similar size reuses it, so a training loop allocates nothing after warm-up.
//
// Out of memory. WebGPU reports a failed allocation asynchronously (an
// 'out-of-memory' error scope; createBuffer returns an invalid buffer), while
// the executor acquires buffers synchronously as it encodes one submission.
// So the pool keeps a journal of one evaluation's acquire/release/retain
// calls: when the evaluation had to create buffers, the executor undoes its
// journal (the buffers it created become idle, reserved), waits for the error
// scope, and only then encodes for real. A failed allocation therefore never
// reaches a submission and never changes the graph: the pool is flushed, the
// evaluation is tried once more, and a second failure throws OutOfMemoryError.

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

/** What memoryStats() reports: GPU memory live and pooled, readback buffers, submissions. */
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
  /** Mappable buffers for reading results back: in use (a read or a small-value batch not yet mapped) and kept for reuse. */
  readbackBuffers: number;
  readbackBytes: number;
  /** Submissions not yet known to have finished on the GPU. */
  inFlight: number;
}

/** One GPU buffer the pool created during a journaled evaluation. */
export interface Allocation {
  /** Bytes asked for (the array or scratch space). */
  bytes: number;
  /** The buffer's size (the bucket). */
  size: number;
  buffer: GPUBuffer;
}

/** A synchronous createBuffer failure (an exception rather than an error scope report). */
export class AllocationFailed extends Error {
  constructor(
    readonly allocation: Omit<Allocation, 'buffer'>,
    reason: unknown,
  ) {
    super(`allocating ${allocation.size} bytes failed: ${(reason as Error)?.message ?? String(reason)}`);
  }
}

type JournalEntry = { op: 'acquire'; s: Storage; fromPool: boolean } | { op: 'release'; s: Storage; pooled: boolean } | { op: 'retain'; s: Storage };

/** What one evaluation did to the pool, so that it can be undone exactly. */
export interface Journal {
  entries: JournalEntry[];
  /** Buffers created (not taken from the pool), and their bytes. */
  created: Allocation[];
  createdBytes: number;
  /** Allocations the test hook failed on purpose. */
  injected: number;
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

/** "liveBuffers 3, liveBytes 1024, pooledBuffers 0, pooledBytes 0": for error messages. */
export function describeStats(s: Pick<MemoryStats, 'liveBuffers' | 'liveBytes' | 'pooledBuffers' | 'pooledBytes'>): string {
  return `liveBuffers ${s.liveBuffers}, liveBytes ${s.liveBytes}, pooledBuffers ${s.pooledBuffers}, pooledBytes ${s.pooledBytes}`;
}

// ---- test hook (internal: not exported from src/index.ts) ----
let failNext = 0;
let failHow: 'device' | 'throw' = 'device';
let failMinBytes = 0;

/**
 * Tests only: make the next `n` buffers of at least `minBytes` that the pool
 * creates fail. 'device' creates an invalid buffer, as createBuffer returns
 * when the driver's allocation fails, and the evaluation's error scope then
 * counts as out-of-memory; 'throw' makes createBuffer throw. Returns how many
 * injected failures were still pending (n = 0 clears them).
 */
export function failNextAllocations(n: number, opts: { how?: 'device' | 'throw'; minBytes?: number } = {}): number {
  const left = failNext;
  failNext = n;
  failHow = opts.how ?? 'device';
  failMinBytes = opts.minBytes ?? 0;
  return left;
}

export class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  readonly stats: Omit<MemoryStats, 'hostEvaluations' | 'readbackBuffers' | 'readbackBytes' | 'inFlight'> = {
    liveBuffers: 0,
    liveBytes: 0,
    pooledBuffers: 0,
    pooledBytes: 0,
    submissions: 0,
    dispatches: 0,
  };
  private journal: Journal | null = null;

  constructor(
    readonly device: GPUDevice,
    private maxBytes: number,
    private maxBufferSize = Infinity,
  ) {}

  /**
   * A buffer of at least `bytes`: from the pool if it has one (one of
   * `prefer` if free: a compiled program asks for the buffers it had last
   * time, so its bind groups repeat; else one not in `avoid`, the buffers its
   * other values had), else created. With `avoid`, a value never takes
   * another's buffer: that one would take a third's next run, and so on, a
   * rotation that can last hundreds of runs (every bind group new); creating
   * one instead costs at most the buffers `avoid` names, once.
   */
  acquire(bytes: number, prefer?: readonly GPUBuffer[], avoid?: ReadonlySet<GPUBuffer>): Storage {
    if (bytes > this.maxBytes) {
      throw new OutOfMemoryError(
        `an array of ${bytes} bytes exceeds this device's maxStorageBufferBindingSize of ${this.maxBytes} bytes ` +
          `(memoryStats: ${describeStats(this.stats)})`,
      );
    }
    // The bucket may round past maxBufferSize when that limit is not a power of two.
    const size = Math.max(Math.ceil(bytes / 4) * 4, Math.min(bucketSize(bytes), Math.floor(this.maxBufferSize / 4) * 4));
    const list = this.free.get(size);
    let buffer: GPUBuffer | undefined;
    if (prefer && list)
      for (const b of prefer) {
        const at = list.lastIndexOf(b);
        if (at >= 0) {
          buffer = list.splice(at, 1)[0];
          break;
        }
      }
    if (!buffer && avoid && list)
      for (let at = list.length - 1; at >= 0; at--)
        if (!avoid.has(list[at]!)) {
          buffer = list.splice(at, 1)[0];
          break;
        }
    if (!avoid) buffer ??= list?.pop();
    const fromPool = !!buffer;
    if (buffer) {
      this.stats.pooledBuffers--;
      this.stats.pooledBytes -= size;
    } else {
      buffer = this.create(bytes, size);
    }
    this.stats.liveBuffers++;
    this.stats.liveBytes += size;
    const s: Storage = { buffer, bytes, refs: 1, pool: this };
    this.journal?.entries.push({ op: 'acquire', s, fromPool });
    return s;
  }

  private create(bytes: number, size: number): GPUBuffer {
    let buffer: GPUBuffer;
    try {
      if (failNext > 0 && size >= failMinBytes) {
        failNext--;
        if (this.journal) this.journal.injected++;
        if (failHow === 'throw') throw new Error('simulated allocation failure (failNextAllocations)');
        // An invalid buffer, as createBuffer returns when the driver's allocation fails
        // (MAP_READ only combines with COPY_DST: a validation error, no memory touched).
        buffer = this.device.createBuffer({ size, usage: 0x01 | USAGE_STORAGE });
      } else {
        buffer = this.device.createBuffer({ size, usage: USAGE_STORAGE });
      }
    } catch (e) {
      // No flush here: buffers this evaluation already released may be bound by the
      // dispatches it encoded. The executor undoes the evaluation, flushes and retries.
      throw new AllocationFailed({ bytes, size }, e);
    }
    if (this.journal) {
      this.journal.created.push({ bytes, size, buffer });
      this.journal.createdBytes += size;
    }
    return buffer;
  }

  /** One more node shares s (an alias). */
  retain(s: Storage): void {
    s.refs++;
    this.journal?.entries.push({ op: 'retain', s });
  }

  release(s: Storage): void {
    const pooled = --s.refs <= 0;
    this.journal?.entries.push({ op: 'release', s, pooled });
    if (!pooled) return;
    const size = s.buffer.size;
    this.stats.liveBuffers--;
    this.stats.liveBytes -= size;
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(s.buffer);
    this.stats.pooledBuffers++;
    this.stats.pooledBytes += size;
  }

  /** Start recording acquire/release/retain calls (one evaluation's encoding). */
  begin(): Journal {
    this.journal = { entries: [], created: [], createdBytes: 0, injected: 0 };
    return this.journal;
  }

  /** Stop recording; the evaluation stands. */
  commit(): void {
    this.journal = null;
  }

  /**
   * Undo everything recorded since begin(), newest first, so every free list
   * and every refs count is as it was. Buffers the evaluation created are
   * returned, owned by nobody and in no free list: the caller pools them
   * (reserve) once they are known to be valid, or destroys them.
   */
  rollback(): GPUBuffer[] {
    const j = this.journal;
    if (!j) return [];
    this.journal = null;
    const created = new Set(j.created.map((a) => a.buffer));
    for (let k = j.entries.length - 1; k >= 0; k--) {
      const e = j.entries[k]!;
      const size = e.s.buffer.size;
      if (e.op === 'retain') {
        e.s.refs--;
      } else if (e.op === 'release') {
        e.s.refs++;
        if (e.pooled) {
          const list = this.free.get(size)!;
          const at = list.lastIndexOf(e.s.buffer);
          list.splice(at, 1); // the top of the list: later takers were undone first
          this.stats.pooledBuffers--;
          this.stats.pooledBytes -= size;
          this.stats.liveBuffers++;
          this.stats.liveBytes += size;
        }
      } else {
        this.stats.liveBuffers--;
        this.stats.liveBytes -= size;
        e.s.refs = 0;
        if (e.fromPool) this.pool(e.s.buffer);
      }
    }
    return [...created];
  }

  /** Put idle buffers (reserved by a rolled-back evaluation, now known to be valid) into the pool. */
  reserve(buffers: GPUBuffer[]): void {
    for (const b of buffers) this.pool(b);
  }

  private pool(b: GPUBuffer): void {
    let list = this.free.get(b.size);
    if (!list) this.free.set(b.size, (list = []));
    list.push(b);
    this.stats.pooledBuffers++;
    this.stats.pooledBytes += b.size;
  }

  /** Destroy every pooled buffer (live ones are untouched). Returns the bytes freed. */
  flush(): number {
    const freed = this.stats.pooledBytes;
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.stats.pooledBuffers = 0;
    this.stats.pooledBytes = 0;
    return freed;
  }
}
