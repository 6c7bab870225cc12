// Getting values back to the host.
//
// Staging: mappable buffers, kept and reused. A fresh mappable buffer per
// read cost a noticeable share of a tiny evaluation, and most of a large one
// (allocating and clearing it). Up to 8 small ones per size; one per size
// above 64 KiB, up to 256 MiB. flushPool() frees the idle ones.
//
// SmallValues: where small results (a loss, a metric: up to SMALL_MAX
// elements) go when a step is dispatched and nobody is waiting to read them.
// Each is copied into a 256-byte slot of a shared batch buffer and its own
// buffer goes back to the pool at once, so an unread loss pins nothing but
// its slot. A batch is read back in one map when it is full or when anything
// is read; then every value in it becomes a host copy and the batch buffer
// returns to the pool. A loop that logs every N steps, or never, therefore
// holds one batch buffer, whatever the garbage collector does. Slots are
// 256-byte aligned so a value in a batch can still be bound as a kernel input.

import type { Node } from '../array/node';
import { hostView } from '../array/dtype';
import type { BufferPool, Storage } from './pool';

const STAGING_SMALL = 64 * 1024;
const STAGING_MAX = 256 * 1024 * 1024;

export class Staging {
  private readonly free = new Map<number, GPUBuffer[]>();
  /** Mappable buffers in existence (in use or free), and their bytes. */
  buffers = 0;
  bytes = 0;

  constructor(private readonly device: GPUDevice) {}

  take(bytes: number): GPUBuffer {
    const size = bytes <= STAGING_SMALL ? Math.max(256, 2 ** Math.ceil(Math.log2(bytes))) : Math.ceil(bytes / 65536) * 65536;
    const have = this.free.get(size)?.pop();
    if (have) return have;
    this.buffers++;
    this.bytes += size;
    return this.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  /** A buffer whose map ended (unmapped): kept for reuse, or destroyed past the limits. */
  give(b: GPUBuffer): void {
    const free = this.free.get(b.size) ?? [];
    this.free.set(b.size, free);
    if (b.size <= STAGING_MAX && free.length < (b.size <= STAGING_SMALL ? 8 : 1)) free.push(b);
    else this.drop(b);
  }

  /** A buffer that will not be reused (its map failed). */
  drop(b: GPUBuffer): void {
    this.buffers--;
    this.bytes -= b.size;
    b.destroy();
  }

  flush(): void {
    for (const list of this.free.values()) for (const b of list.splice(0)) this.drop(b);
  }

  /** Map `b` (after the submission that fills it), copy out `bytes`, and give it back. */
  async read(b: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
    try {
      await b.mapAsync(GPUMapMode.READ);
    } catch (e) {
      this.drop(b);
      throw e;
    }
    const data = b.getMappedRange(0, bytes).slice(0);
    b.unmap();
    this.give(b);
    return data;
  }
}

const SLOT = 256;
const BATCH_BYTES = 256 * 1024;

interface Batch {
  storage: Storage;
  used: number;
  /** The values given slots (a view of one, a reshape, shares the buffer but is not among them). */
  nodes: Set<Node>;
}

/** A batch being read back: resolves once its values are host copies. */
export type Retiring = { copy: (encoder: GPUCommandEncoder) => void; afterSubmit: () => Promise<void> };

export class SmallValues {
  private active: Batch | null = null;
  private readonly retiring = new Map<Storage, { done: Promise<void>; nodes: Set<Node> }>();

  constructor(
    private readonly pool: BufferPool,
    private readonly staging: Staging,
  ) {}

  /**
   * Is this node's value in a slot of its own (of the active batch, or of one
   * being read back), so that the batch's read makes it a host copy? A view
   * of such a value is not: it is read from the batch buffer like any buffer.
   */
  holds(n: Node): boolean {
    if (!n.storage) return false;
    if (n.storage === this.active?.storage) return this.active.nodes.has(n);
    return !!this.retiring.get(n.storage)?.nodes.has(n);
  }

  /** Resolves when the batch holding n has been read back (n.cpu is set); null if n is in the active batch. */
  whenRead(n: Node): Promise<void> | null {
    return (n.storage && this.retiring.get(n.storage)?.done) ?? null;
  }

  get hasActive(): boolean {
    return this.active !== null && this.active.nodes.size > 0;
  }

  /**
   * Encode copies of these computed nodes' values into slots; each node's own
   * buffer is released (the copy runs first: queue order). A batch that fills
   * up is retired on the way (its copy encoded): returns those, whose
   * afterSubmit() the caller runs once the submission is made.
   */
  put(encoder: GPUCommandEncoder, nodes: Node[]): Retiring[] {
    const out: Retiring[] = [];
    for (const n of nodes) {
      // Already in a batch buffer (its own slot, or a view of another's): nothing to move.
      if (!n.storage || n.storage === this.active?.storage || this.retiring.has(n.storage)) continue;
      const bytes = Math.ceil((n.size * 4) / SLOT) * SLOT;
      if (this.active && this.active.used + bytes > BATCH_BYTES) {
        const full = this.retire()!;
        full.copy(encoder);
        out.push(full);
      }
      if (!this.active) this.active = { storage: this.pool.acquire(BATCH_BYTES), used: 0, nodes: new Set() };
      const a = this.active;
      encoder.copyBufferToBuffer(n.storage.buffer, n.offset, a.storage.buffer, a.used, n.size * 4);
      this.pool.release(n.storage);
      this.pool.retain(a.storage);
      n.storage = a.storage;
      n.offset = a.used;
      a.nodes.add(n);
      a.used += bytes;
    }
    return out;
  }

  /**
   * Stop filling the active batch and read it back: copy() encodes the copy
   * to a mappable buffer, afterSubmit() maps it once submitted. Then every
   * value still in the batch becomes a host copy and the batch buffer returns
   * to the pool (its last slot released). Null when there is no active batch.
   */
  retire(): Retiring | null {
    const a = this.active;
    if (!a) return null;
    this.active = null;
    const b = this.staging.take(a.used);
    let copied = false;
    let done: Promise<void> | null = null;
    return {
      copy: (encoder) => {
        if (copied) return;
        copied = true;
        encoder.copyBufferToBuffer(a.storage.buffer, 0, b, 0, a.used);
      },
      afterSubmit: () => {
        if (done) return done;
        done = this.staging
          .read(b, a.used)
          .then((data) => {
            for (const n of a.nodes) {
              if (n.storage !== a.storage) continue; // lost or released meanwhile
              n.cpu = hostView(n.dtype, data, n.offset, n.size).slice();
              n.storage = null;
              n.offset = 0;
              this.pool.release(a.storage);
            }
          })
          .finally(() => {
            this.retiring.delete(a.storage);
            this.pool.release(a.storage); // the batch's own reference
          });
        this.retiring.set(a.storage, { done, nodes: a.nodes });
        return done;
      },
    };
  }
}
