// Data movement without arithmetic: strided gather (slice, transpose,
// materialised broadcast) and pad (the VJP of slice: scatter into zeros).
// Elements move as u32 words, bit for bit, whatever their dtype (the zero
// word is 0.0, 0 and false alike).
//
// The TS side (lowering.ts) generates the index arithmetic with the shape's
// sizes and strides as literals, its adjacent axes merged where they stay
// contiguous: dividing by a constant compiles to a multiply and shift, where
// a division by a runtime size (and an indexed uniform array) cost about 10x
// on SwiftShader. One pipeline per distinct layout.
//
// Param words: 0: n  2: input base offset (gather)

struct Params { n: u32, _p0: u32, base: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<storage, read> src: array<u32>;

// The input offset of output element i; for pad, whether it lies inside the input.
fn gather_offset(i: u32) -> u32 {
  var rem = i;
  var off = P.base;
  {{GATHER}}
  return off;
}

@compute @workgroup_size(256)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= P.n) { return; }
  out[i] = src[gather_offset(i)];
}

@compute @workgroup_size(256)
fn pad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= P.n) { return; }
  var rem = i;
  var off = 0u;
  var inside = true;
  {{PAD}}
  var v = 0u;
  if (inside) { v = src[off]; }
  out[i] = v;
}
