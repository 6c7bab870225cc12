// GPU time per kernel from timestamp queries ('timestamp-query' feature).
//
// Timestamps are written at the start and end of a compute pass, so while
// profiling each dispatch gets its own pass (slightly slower than the usual
// one pass per submission; profiling is for finding the slow kernel, not for
// headline numbers). Adapters without the feature give no timings.

export interface KernelTiming {
  /** Shader family and entry point, e.g. "matmul_register:main8". */
  kernel: string;
  /** Workgroups dispatched in x, y, z. */
  grid: [number, number, number];
  /** GPU time between the pass's start and end timestamps, in milliseconds. */
  ms: number;
}

const MAX_QUERIES = 4096; // WebGPU's limit per query set; later dispatches of a submission go untimed

export class SubmissionTimer {
  private readonly querySet: GPUQuerySet;
  private readonly resolveBuf: GPUBuffer;
  private readonly readBuf: GPUBuffer;
  private readonly labels: Array<{ kernel: string; grid: [number, number, number] }> = [];

  constructor(private readonly device: GPUDevice) {
    this.querySet = device.createQuerySet({ type: 'timestamp', count: MAX_QUERIES });
    this.resolveBuf = device.createBuffer({ size: MAX_QUERIES * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    this.readBuf = device.createBuffer({ size: MAX_QUERIES * 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  /** Pass descriptor timing the next dispatch (untimed once the query set is full). */
  pass(kernel: string, grid: [number, number, number]): GPUComputePassDescriptor {
    const i = this.labels.length;
    if (2 * i + 2 > MAX_QUERIES) return {};
    this.labels.push({ kernel, grid: [...grid] });
    return { timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } };
  }

  /** Encode the copy of the timestamps; call once, after the last pass. */
  finish(encoder: GPUCommandEncoder): void {
    const n = 2 * this.labels.length;
    if (!n) return;
    encoder.resolveQuerySet(this.querySet, 0, n, this.resolveBuf, 0);
    encoder.copyBufferToBuffer(this.resolveBuf, 0, this.readBuf, 0, n * 8);
  }

  /** Not submitted after all (an evaluation undone before its submit): destroy the GPU objects. */
  discard(): void {
    this.querySet.destroy();
    this.resolveBuf.destroy();
    this.readBuf.destroy();
  }

  /** After the submission: the timings, then the timer's GPU objects are destroyed. */
  async read(): Promise<KernelTiming[]> {
    try {
      if (!this.labels.length) return [];
      await this.readBuf.mapAsync(GPUMapMode.READ);
      const t = new BigInt64Array(this.readBuf.getMappedRange().slice(0, this.labels.length * 16));
      this.readBuf.unmap();
      return this.labels.map((l, i) => ({ ...l, ms: Number(t[2 * i + 1]! - t[2 * i]!) / 1e6 }));
    } finally {
      this.querySet.destroy();
      this.resolveBuf.destroy();
      this.readBuf.destroy();
    }
  }
}
