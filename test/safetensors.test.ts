// Checkpoints in the safetensors format: round trips of pytrees, files
// written by hand byte by byte as the format's spec says (what Python's
// safetensors writes), and malformed files named as such.
import { describe, expect, it } from 'vitest';
import { array, loadSafetensors, NDArray, saveSafetensors, ValueError } from '../src/index';

/** A safetensors file from a header object and raw data, as the spec lays it out. */
function handMade(header: Record<string, unknown>, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

describe('safetensors', () => {
  it('round-trips a pytree of float32, int32 and bool arrays (names are paths joined by .)', async () => {
    const params = {
      l1: {
        w: array([
          [1.5, -2],
          [3, 4e-30],
        ]),
        b: array([0.25, NaN]),
      },
      layers: [{ w: array([1, 2, 3]) }, { w: array([4]) }],
      steps: array(new Int32Array([7, -2147483648])),
      mask: array([true, false, true]),
      scale: 2,
    };
    const bytes = await saveSafetensors(params, { format: 'gradgpu' });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0); // header padded to 8 bytes
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    expect(Object.keys(header).sort()).toEqual(['__metadata__', 'l1.b', 'l1.w', 'layers.0.w', 'layers.1.w', 'mask', 'scale', 'steps']);
    expect(header['l1.w']).toEqual({ dtype: 'F32', shape: [2, 2], data_offsets: expect.any(Array) });
    expect(header.steps.dtype).toBe('I32');
    expect(header.mask.dtype).toBe('BOOL');
    const { tree, metadata } = loadSafetensors(bytes);
    expect(metadata).toEqual({ format: 'gradgpu' });
    const t = tree as { l1: { w: NDArray; b: NDArray }; layers: Array<{ w: NDArray }>; steps: NDArray; mask: NDArray; scale: NDArray };
    expect(Array.from(await t.l1.w.data())).toEqual([1.5, -2, 3, Math.fround(4e-30)]);
    expect(Array.from(await t.l1.b.data())).toEqual([0.25, NaN]);
    expect(Array.isArray(t.layers)).toBe(true);
    expect(Array.from(await t.layers[1]!.w.data())).toEqual([4]);
    expect(t.steps.dtype).toBe('int32');
    expect(Array.from(await t.steps.data())).toEqual([7, -2147483648]);
    expect(t.mask.dtype).toBe('bool');
    expect(Array.from(await t.mask.data())).toEqual([1, 0, 1]);
    expect(t.scale.shape).toEqual([]);
  });
  it('loads a file laid out by hand: F32, F16, BF16, F64, I64, U8 and BOOL, little-endian', async () => {
    const data = new Uint8Array(4 + 2 + 2 + 8 + 8 + 1 + 1);
    const v = new DataView(data.buffer);
    v.setFloat32(0, -1.25, true);
    v.setUint16(4, 0x3c00, true); // F16 1.0
    v.setUint16(6, 0xc000, true); // BF16 -2.0
    v.setFloat64(8, 0.1, true);
    v.setBigInt64(16, -5n, true);
    v.setUint8(24, 200);
    v.setUint8(25, 1);
    const file = handMade(
      {
        a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
        h: { dtype: 'F16', shape: [], data_offsets: [4, 6] },
        bf: { dtype: 'BF16', shape: [1, 1], data_offsets: [6, 8] },
        d: { dtype: 'F64', shape: [1], data_offsets: [8, 16] },
        i: { dtype: 'I64', shape: [1], data_offsets: [16, 24] },
        u: { dtype: 'U8', shape: [1], data_offsets: [24, 25] },
        m: { dtype: 'BOOL', shape: [1], data_offsets: [25, 26] },
      },
      data,
    );
    const { tree } = loadSafetensors(file);
    const t = tree as Record<string, NDArray>;
    expect(Array.from(await t.a!.data())).toEqual([-1.25]);
    expect(await t.h!.item()).toBe(1);
    expect(t.bf!.shape).toEqual([1, 1]);
    expect(await t.bf!.item()).toBe(-2);
    expect(await t.d!.item()).toBe(Math.fround(0.1));
    expect(t.i!.dtype).toBe('int32');
    expect(await t.i!.item()).toBe(-5);
    expect(await t.u!.item()).toBe(200);
    expect(t.m!.dtype).toBe('bool');
  });
  it('a malformed file is a ValueError that says what is wrong', async () => {
    expect(() => loadSafetensors(new Uint8Array(3))).toThrow(ValueError);
    const bad = handMade({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, new Uint8Array(4));
    expect(() => loadSafetensors(bad)).toThrow(/data_offsets/);
    const weird = handMade({ a: { dtype: 'C64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8));
    expect(() => loadSafetensors(weird)).toThrow(/C64/);
    const notJson = new Uint8Array(12);
    new DataView(notJson.buffer).setBigUint64(0, 4n, true);
    expect(() => loadSafetensors(notJson)).toThrow(/not JSON/);
    await expect(saveSafetensors({ 'a.b': array([1]) })).rejects.toThrow(/contains '.'/);
    await expect(saveSafetensors(array([1]))).rejects.toThrow(/needs a name/);
  });
});
