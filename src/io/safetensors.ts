// Checkpoints in the safetensors format (huggingface/safetensors): an 8-byte
// little-endian header length, a JSON header naming each tensor (dtype,
// shape, data_offsets into the data that follows), the header padded with
// spaces to 8 bytes, then raw little-endian data. Names are pytree paths
// joined by '.' (`l1.w`, `layers.0.w`), so a checkpoint opens in Python's
// safetensors (and PyTorch's or Flax's loaders) and theirs load here.

import { ValueError } from '../errors';
import { NDArray } from '../array/ndarray';
import { array } from '../array/ops';
import type { DType } from '../array/dtype';

/** A pytree of arrays, as saveSafetensors writes and loadSafetensors returns it. */
export type ArrayTree = NDArray | number | ArrayTree[] | { [key: string]: ArrayTree };

const CODE: Record<DType, string> = { float32: 'F32', int32: 'I32', bool: 'BOOL' };

/** [name, leaf] pairs in order; names are path segments joined by '.'. */
function named(tree: unknown, prefix: string, out: Array<[string, NDArray]>): void {
  if (tree instanceof NDArray) out.push([prefix, tree]);
  else if (typeof tree === 'number') out.push([prefix, array(tree)]);
  else if (Array.isArray(tree)) tree.forEach((t, i) => named(t, prefix ? `${prefix}.${i}` : String(i), out));
  else if (tree !== null && typeof tree === 'object' && Object.getPrototypeOf(tree) === Object.prototype) {
    for (const k of Object.keys(tree).sort()) {
      if (k.includes('.')) throw new ValueError(`saveSafetensors: key ${JSON.stringify(k)} contains '.', the separator of tensor names`);
      named((tree as Record<string, unknown>)[k], prefix ? `${prefix}.${k}` : k, out);
    }
  } else if (tree !== null && tree !== undefined) {
    throw new ValueError(`saveSafetensors: ${prefix || 'the tree'} is a ${typeof tree}; leaves must be NDArrays or numbers`);
  }
}

/**
 * The pytree's arrays as a safetensors file (F32, I32 or BOOL), named by
 * their paths. Reads every array back from the GPU, hence a Promise.
 * `metadata` goes into the header's `__metadata__` (string values only, as the format says).
 */
export async function saveSafetensors(tree: ArrayTree | object, metadata?: Record<string, string>): Promise<Uint8Array> {
  const items: Array<[string, NDArray]> = [];
  named(tree, '', items);
  if (items.length === 0) throw new ValueError('saveSafetensors: the tree has no arrays');
  const names = new Set<string>();
  for (const [n] of items) {
    if (n === '') throw new ValueError('saveSafetensors: a bare array needs a name: pass { name: array }');
    if (names.has(n)) throw new ValueError(`saveSafetensors: two tensors named ${n}`);
    names.add(n);
  }
  const datas = await Promise.all(items.map(([, x]) => x.data()));
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let at = 0;
  const bytes = datas.map((d, i) => {
    const x = items[i]![1];
    const raw = x.dtype === 'bool' ? new Uint8Array(d) : new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    header[items[i]![0]] = { dtype: CODE[x.dtype], shape: x.shape, data_offsets: [at, at + raw.byteLength] };
    at += raw.byteLength;
    return raw;
  });
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + new TextEncoder().encode(json).length) % 8)) % 8);
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + at);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let off = 8 + head.length;
  for (const b of bytes) {
    out.set(b, off);
    off += b.byteLength;
  }
  return out;
}

/** Element size and a reader to float32 / int32 / bool values, per safetensors dtype. */
const READERS: Record<string, { size: number; dtype: DType; read: (v: DataView, at: number) => number }> = {
  F32: { size: 4, dtype: 'float32', read: (v, at) => v.getFloat32(at, true) },
  F64: { size: 8, dtype: 'float32', read: (v, at) => v.getFloat64(at, true) },
  F16: { size: 2, dtype: 'float32', read: (v, at) => half(v.getUint16(at, true)) },
  BF16: { size: 2, dtype: 'float32', read: (v, at) => new Float32Array(new Uint32Array([v.getUint16(at, true) << 16]).buffer)[0]! },
  I32: { size: 4, dtype: 'int32', read: (v, at) => v.getInt32(at, true) },
  I64: { size: 8, dtype: 'int32', read: (v, at) => int64(v.getBigInt64(at, true)) },
  I16: { size: 2, dtype: 'int32', read: (v, at) => v.getInt16(at, true) },
  I8: { size: 1, dtype: 'int32', read: (v, at) => v.getInt8(at) },
  U8: { size: 1, dtype: 'int32', read: (v, at) => v.getUint8(at) },
  BOOL: { size: 1, dtype: 'bool', read: (v, at) => (v.getUint8(at) ? 1 : 0) },
};

function half(h: number): number {
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  const s = h & 0x8000 ? -1 : 1;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function int64(x: bigint): number {
  if (x > 2147483647n || x < -2147483648n) throw new ValueError(`loadSafetensors: an I64 value ${x} does not fit in int32`);
  return Number(x);
}

/**
 * A safetensors file as a pytree: names split at '.' into nested objects,
 * and a level whose keys are 0, 1, ... n-1 becomes an array (`layers.0.w`).
 * F32, F16, BF16 and F64 load as float32; I32, I64 (when it fits), I16, I8
 * and U8 as int32; BOOL as bool. A malformed file is a ValueError saying where.
 */
export function loadSafetensors(bytes: Uint8Array | ArrayBuffer): { tree: ArrayTree; metadata: Record<string, string> } {
  const buf = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  if (buf.byteLength < 8) throw new ValueError(`loadSafetensors: ${buf.byteLength} bytes is too short for a safetensors file`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = Number(view.getBigUint64(0, true));
  if (n > buf.byteLength - 8) throw new ValueError(`loadSafetensors: the header length ${n} runs past the end of the file (${buf.byteLength} bytes)`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(new TextDecoder().decode(buf.subarray(8, 8 + n)));
  } catch (e) {
    throw new ValueError(`loadSafetensors: the header is not JSON (${(e as Error).message})`);
  }
  const data = 8 + n;
  const size = buf.byteLength - data;
  const metadata = ((header as Record<string, unknown>).__metadata__ ?? {}) as Record<string, string>;
  const root: Record<string, unknown> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const r = READERS[info?.dtype];
    if (!r) throw new ValueError(`loadSafetensors: tensor ${name} has dtype ${String(info?.dtype)} (supported: ${Object.keys(READERS).join(', ')})`);
    const shape = info.shape;
    const [b, e] = info.data_offsets ?? [];
    const count = Array.isArray(shape) ? shape.reduce((p, q) => p * q, 1) : NaN;
    if (!Number.isInteger(b) || !Number.isInteger(e) || b! < 0 || e! > size || e! - b! !== count * r.size) {
      throw new ValueError(
        `loadSafetensors: tensor ${name} (${info.dtype} [${String(shape)}]) has data_offsets [${b}, ${e}] that do not fit its ${count} elements in ${size} bytes of data`,
      );
    }
    const values = new Array<number>(count);
    for (let i = 0; i < count; i++) values[i] = r.read(view, data + b! + i * r.size);
    const x = r.dtype === 'float32' ? array(Float32Array.from(values), shape) : array(values, { shape, dtype: r.dtype });
    const segs = name.split('.');
    let at = root;
    segs.slice(0, -1).forEach((s) => {
      const next = (at[s] ??= {}) as Record<string, unknown>;
      if (next instanceof NDArray) throw new ValueError(`loadSafetensors: ${name} is inside ${s}, which is a tensor`);
      at = next;
    });
    at[segs[segs.length - 1]!] = x;
  }
  return { tree: arraysWhereIndexed(root) as ArrayTree, metadata };
}

/** Objects whose keys are exactly 0..n-1 become arrays, recursively. */
function arraysWhereIndexed(t: unknown): unknown {
  if (t instanceof NDArray || t === null || typeof t !== 'object') return t;
  const o = t as Record<string, unknown>;
  const keys = Object.keys(o);
  const kids = Object.fromEntries(keys.map((k) => [k, arraysWhereIndexed(o[k])]));
  const indexed = keys.length > 0 && keys.every((k) => /^(0|[1-9]\d*)$/.test(k)) && keys.length === Math.max(...keys.map(Number)) + 1;
  return indexed ? keys.map((_, i) => kids[String(i)]) : kids;
}
