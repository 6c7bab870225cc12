// Bind groups, reused across submissions. A training loop encodes the same
// dispatches over the same pooled buffers step after step (the pool hands
// buffers back in the same order), and createBindGroup was about 15 µs of a
// dispatch's ~25 µs of JavaScript on Dawn (SwiftShader, this 2-core VM). A
// bind group names its buffers, so the cache is emptied whenever one of ours
// may be destroyed (freeIdle, an undone evaluation, a dropped uniform), and
// when it grows past MAX_GROUPS.

const MAX_GROUPS = 4096;

export class BindGroupCache {
  private readonly ids = new WeakMap<GPUBuffer, number>();
  private readonly layouts = new WeakMap<GPUComputePipeline, { id: number; layout: GPUBindGroupLayout }>();
  private readonly groups = new Map<string, GPUBindGroup>();
  private nextId = 1;
  /** Bumped by clear(): a bind group kept elsewhere (a compiled program's) is valid only for the generation it was made in. */
  generation = 0;
  /** For tests and profiling: bind groups reused and created. */
  readonly stats = { hits: 0, misses: 0 };

  constructor(private readonly device: GPUDevice) {}

  private id(b: GPUBuffer): number {
    let i = this.ids.get(b);
    if (i === undefined) this.ids.set(b, (i = this.nextId++));
    return i;
  }

  /** The bind group of group 0 for `pipeline` with these buffers at bindings 0..n-1. */
  get(pipeline: GPUComputePipeline, bindings: readonly GPUBufferBinding[]): GPUBindGroup {
    let l = this.layouts.get(pipeline);
    if (!l) this.layouts.set(pipeline, (l = { id: this.nextId++, layout: pipeline.getBindGroupLayout(0) }));
    let key = `${l.id}`;
    for (const b of bindings) key += `|${this.id(b.buffer)}:${b.offset ?? 0}:${b.size ?? -1}`;
    const have = this.groups.get(key);
    if (have) {
      this.stats.hits++;
      return have;
    }
    this.stats.misses++;
    if (this.groups.size >= MAX_GROUPS) this.groups.clear();
    const group = this.device.createBindGroup({ layout: l.layout, entries: bindings.map((resource, binding) => ({ binding, resource })) });
    this.groups.set(key, group);
    return group;
  }

  /** Forget every bind group (one of the buffers they name may be destroyed). */
  clear(): void {
    this.groups.clear();
    this.generation++;
  }
}
