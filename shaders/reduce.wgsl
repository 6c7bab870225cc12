// Reduce the middle axis of a contiguous (A, R, B) array, one pass of a
// multi-pass tree: each pass turns (A, R, B) into (A, ceil(R / CHUNK), B).
// The TS side repeats passes until R is 1, so the sum of 10^6 elements is a
// tree of partial sums rather than one long float32 running total.
// The TS side fills in the element type T (f32, i32 or u32) and the
// reduction: combine(a, b) (sum, max, min), its vec4 form, its identity, and
// what a stored value becomes (a float32 sum is times P.scale: a mean's 1/n in
// its last pass, 1 in the others).
//
// Params: 0: A  1: R  2: B  3: Rout (= ceil(R / chunk))  4: chunk  5: scale (f32)
// Also generated: IN0 (src's binding), PARAMS_W and EPILOGUE (store and
// store4, which write out's elements), as in matmul_register.wgsl: a
// one-pass reduction can run an elementwise epilogue (src/gpu/epilogue.ts).

struct Params { A: u32, R: u32, B: u32, Rout: u32, chunk: u32, scale: f32, _p1: u32, _p2: u32{{PARAMS_W}} }
@group(0) @binding(0) var<uniform> P: Params;
alias T = {{T}};
@group(0) @binding(1) var<storage, read_write> out: array<T>;
@group(0) @binding({{IN0}}) var<storage, read> src: array<T>;
{{EPILOGUE}}
fn combine(a: T, b: T) -> T { return {{COMBINE}}; }
fn combine4(a: vec4<T>, b: vec4<T>) -> vec4<T> { return {{COMBINE4}}; }
fn zero() -> T { return {{ZERO}}; }
fn finish(v: T) -> T { return {{FINISH}}; }
fn finish4(v: vec4<T>) -> vec4<T> { return {{FINISH}}; }

const WG: u32 = 256u;
var<workgroup> partial: array<T, WG>;

// B == 1: rows are contiguous. A workgroup sums one chunk (4 * WG elements)
// of one row: each thread adds 4 strided elements, then a tree in workgroup memory.
@compute @workgroup_size(256)
fn reduce_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = wid.x + wid.y * nwg.x;           // (a, rc) flattened
  let valid = g < P.A * P.Rout;
  let a = g / max(P.Rout, 1u);
  let rc = g % max(P.Rout, 1u);
  let base = a * P.R;
  let r0 = rc * (4u * WG) + lid.x;
  var s0 = zero();
  var s1 = zero();
  if (valid) {
    if (r0 < P.R) { s0 = src[base + r0]; }
    if (r0 + WG < P.R) { s0 = combine(s0, src[base + r0 + WG]); }
    if (r0 + 2u * WG < P.R) { s1 = src[base + r0 + 2u * WG]; }
    if (r0 + 3u * WG < P.R) { s1 = combine(s1, src[base + r0 + 3u * WG]); }
  }
  partial[lid.x] = combine(s0, s1);
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid.x < stride) { partial[lid.x] = combine(partial[lid.x], partial[lid.x + stride]); }
    workgroupBarrier();
  }
  if (valid && lid.x == 0u) { store(g, finish(partial[0])); }
}

// B > 1: one thread per output (a, rc, b); neighbouring threads read
// neighbouring b, so loads are coalesced. Each thread sums `chunk` values of r.
@compute @workgroup_size(256)
fn reduce_strided(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = gid.x + gid.y * nwg.x * WG;
  if (o >= P.A * P.Rout * P.B) { return; }
  let b = o % P.B;
  let rc = (o / P.B) % P.Rout;
  let a = o / (P.B * P.Rout);
  let r0 = rc * P.chunk;
  let r1 = min(P.R, r0 + P.chunk);
  var s0 = zero();
  var s1 = zero();
  var r = r0;
  let base = a * P.R * P.B + b;
  for (; r + 1u < r1; r += 2u) {
    s0 = combine(s0, src[base + r * P.B]);
    s1 = combine(s1, src[base + (r + 1u) * P.B]);
  }
  if (r < r1) { s0 = combine(s0, src[base + r * P.B]); }
  store(o, finish(combine(s0, s1)));
}

// reduce_strided with vec4 loads and stores, for B a multiple of 4: one thread
// per (a, rc, 4 consecutive b) (about 2x on SwiftShader, like the other
// vec4 kernels: the loop is load-bound).
@group(0) @binding(1) var<storage, read_write> out4: array<vec4<T>>;
@group(0) @binding({{IN0}}) var<storage, read> src4: array<vec4<T>>;

@compute @workgroup_size(256)
fn reduce_strided4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = gid.x + gid.y * nwg.x * WG;
  let B4 = P.B / 4u;
  if (o >= P.A * P.Rout * B4) { return; }
  let b = o % B4;
  let rc = (o / B4) % P.Rout;
  let a = o / (B4 * P.Rout);
  let r0 = rc * P.chunk;
  let r1 = min(P.R, r0 + P.chunk);
  var s0 = vec4<T>(zero());
  var s1 = vec4<T>(zero());
  var r = r0;
  let base = a * P.R * B4 + b;
  for (; r + 1u < r1; r += 2u) {
    s0 = combine4(s0, src4[base + r * B4]);
    s1 = combine4(s1, src4[base + (r + 1u) * B4]);
  }
  if (r < r1) { s0 = combine4(s0, src4[base + r * B4]); }
  store4(o, finish4(combine4(s0, s1)));
}
