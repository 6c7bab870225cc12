// Data movement without arithmetic: strided gather (slice, transpose,
// materialised broadcast) and pad (the VJP of slice: scatter into zeros).
// Elements move as u32 words, bit for bit, whatever their dtype (the zero
// word is 0.0, 0 and false alike).
//
// Param words: 0: n  1: rank  2: input base offset
//   4..11: output dims   12..19: input strides per output axis (gather)
//   20..27: pad start per axis   28..35: input dims (pad)

struct Params { w: array<vec4<u32>, 9> }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<storage, read> src: array<u32>;

fn p(i: u32) -> u32 { return P.w[i / 4u][i % 4u]; }

@compute @workgroup_size(256)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p(0u)) { return; }
  var rem = i;
  var off = p(2u);
  for (var d = i32(p(1u)) - 1; d >= 0; d--) {
    let dim = p(4u + u32(d));
    off += (rem % dim) * p(12u + u32(d));
    rem /= dim;
  }
  out[i] = src[off];
}

@compute @workgroup_size(256)
fn pad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p(0u)) { return; }
  var rem = i;
  var off = 0u;
  var stride = 1u;
  var inside = true;
  for (var d = i32(p(1u)) - 1; d >= 0; d--) {
    let dim = p(4u + u32(d));
    let c = rem % dim;
    rem /= dim;
    let start = p(20u + u32(d));
    let len = p(28u + u32(d));
    if (c < start || c >= start + len) { inside = false; }
    off += (c - start) * stride;
    stride *= len;
  }
  var v = 0u;
  if (inside) { v = src[off]; }
  out[i] = v;
}
