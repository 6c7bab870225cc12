// GPU time per kernel from timestamp queries ('timestamp-query' feature).
//
// Timestamps are written at the start and end of a compute pass, so while
// profiling each dispatch gets its own pass (slightly slower than the usual
// one pass per submission; profiling is for finding the slow kernel, not for
// headline numbers). Adapters without the feature give no timings.

/** The GPU time of one dispatch (profileKernels). */
export interface KernelTiming {
  /** Shader family and entry point, e.g. "matmul_register:main8". */
  kernel: string;
  /** Workgroups dispatched in x, y, z. */
  grid: [number, number, number];
  /** GPU time between the pass's start and end timestamps, in milliseconds. */
  ms: number;
}

const MAX_QUERIES = 4096; // WebGPU's limit per query set; later dispatches of a submission go untimed

/**
 * A timestamp query set with its resolve and readback buffers: pass k writes
 * timestamps 2k and 2k + 1; read() gives the milliseconds between each pair.
 */
export class PassTimestamps {
  private readonly querySet: GPUQuerySet;
  private readonly resolveBuf: GPUBuffer;
  private readonly readBuf: GPUBuffer;

  constructor(
    device: GPUDevice,
    readonly passes: number,
  ) {
    this.querySet = device.createQuerySet({ type: 'timestamp', count: 2 * passes });
    this.resolveBuf = device.createBuffer({ size: 16 * passes, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    this.readBuf = device.createBuffer({ size: 16 * passes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  writes(k: number): GPUComputePassTimestampWrites {
    return { querySet: this.querySet, beginningOfPassWriteIndex: 2 * k, endOfPassWriteIndex: 2 * k + 1 };
  }

  /** Encode the copy of the first `n` passes' timestamps, after the last of them ended. */
  resolve(encoder: GPUCommandEncoder, n: number): void {
    encoder.resolveQuerySet(this.querySet, 0, 2 * n, this.resolveBuf, 0);
    encoder.copyBufferToBuffer(this.resolveBuf, 0, this.readBuf, 0, 16 * n);
  }

  /** After the submission: each of the first `n` passes' GPU time, in ms. */
  async read(n: number): Promise<number[]> {
    await this.readBuf.mapAsync(GPUMapMode.READ);
    const t = new BigInt64Array(this.readBuf.getMappedRange().slice(0, 16 * n));
    this.readBuf.unmap();
    return Array.from({ length: n }, (_, k) => Number(t[2 * k + 1]! - t[2 * k]!) / 1e6);
  }

  destroy(): void {
    this.querySet.destroy();
    this.resolveBuf.destroy();
    this.readBuf.destroy();
  }
}

/** Times each dispatch of one submission, one compute pass per dispatch. */
export class SubmissionTimer {
  private readonly stamps: PassTimestamps;
  private readonly labels: Array<{ kernel: string; grid: [number, number, number] }> = [];

  constructor(device: GPUDevice) {
    this.stamps = new PassTimestamps(device, MAX_QUERIES / 2);
  }

  /** Pass descriptor timing the next dispatch (untimed once the query set is full). */
  pass(kernel: string, grid: [number, number, number]): GPUComputePassDescriptor {
    const k = this.labels.length;
    if (k >= this.stamps.passes) return {};
    this.labels.push({ kernel, grid: [...grid] });
    return { timestampWrites: this.stamps.writes(k) };
  }

  /** Encode the copy of the timestamps; call once, after the last pass. */
  finish(encoder: GPUCommandEncoder): void {
    if (this.labels.length) this.stamps.resolve(encoder, this.labels.length);
  }

  /** Not submitted after all (an evaluation undone before its submit): destroy the GPU objects. */
  discard(): void {
    this.stamps.destroy();
  }

  /** After the submission: the timings, then the timer's GPU objects are destroyed. */
  async read(): Promise<KernelTiming[]> {
    try {
      if (!this.labels.length) return [];
      const ms = await this.stamps.read(this.labels.length);
      return this.labels.map((l, k) => ({ ...l, ms: ms[k]! }));
    } finally {
      this.stamps.destroy();
    }
  }
}
