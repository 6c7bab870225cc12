// Matrix-vector products, the shapes of the reference problem (x @ w with
// x (65536, 512), and its VJP x^T g), where a tiled matmul would leave 15 of
// every 16 threads idle. Both read the matrix A, row-major (R, C), once.
//
//   rows: out[r] = sum_c A[r, c] v[c]         (A @ v)
//   cols: out[s, c] = sum_{r in chunk s} A[r, c] v[r]   (A^T v, split over
//         row chunks; the TS side sums the chunks with reduce.wgsl)
//
// Params: 0: R  1: C  2: chunk (rows per split, cols only)
// Generated: IN0, IN1 (A's and v's bindings), PARAMS_W and EPILOGUE (store,
// which writes out's elements), as in matmul_register.wgsl.

struct Params { R: u32, C: u32, chunk: u32, _p: u32{{PARAMS_W}} }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding({{IN0}}) var<storage, read> A: array<f32>;
@group(0) @binding({{IN1}}) var<storage, read> v: array<f32>;
{{EPILOGUE}}
// The same matrix as vec4s, for the *4 entry points (C a multiple of 4); no entry point uses both.
@group(0) @binding({{IN0}}) var<storage, read> A4: array<vec4<f32>>;

const WG: u32 = 64u;
var<workgroup> partial: array<f32, WG>;

// One thread per row: best where "threads" are SIMD lanes of a CPU (SwiftShader).
@compute @workgroup_size(64)
fn rows_thread(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = gid.x + gid.y * nwg.x * WG;
  if (r >= P.R) { return; }
  let base = r * P.C;
  var s0 = 0.0;
  var s1 = 0.0;
  var s2 = 0.0;
  var s3 = 0.0;
  var c = 0u;
  for (; c + 3u < P.C; c += 4u) {
    s0 += A[base + c] * v[c];
    s1 += A[base + c + 1u] * v[c + 1u];
    s2 += A[base + c + 2u] * v[c + 2u];
    s3 += A[base + c + 3u] * v[c + 3u];
  }
  for (; c < P.C; c++) { s0 += A[base + c] * v[c]; }
  store(r, (s0 + s1) + (s2 + s3));
}

// One workgroup per row, coalesced loads and a tree in workgroup memory: for real GPUs.
@compute @workgroup_size(64)
fn rows_group(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = wid.x + wid.y * nwg.x;
  let valid = r < P.R;
  var s = 0.0;
  if (valid) {
    let base = r * P.C;
    for (var c = lid.x; c < P.C; c += WG) { s += A[base + c] * v[c]; }
  }
  partial[lid.x] = s;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid.x < stride) { partial[lid.x] += partial[lid.x + stride]; }
    workgroupBarrier();
  }
  if (valid && lid.x == 0u) { store(r, partial[0]); }
}

// Thread per column c, grid y over row chunks; neighbouring threads read neighbouring columns.
@compute @workgroup_size(64)
fn cols(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  let s = gid.y + gid.z * 65535u;
  if (c >= P.C) { return; }
  let r0 = s * P.chunk;
  if (r0 >= P.R) { return; }
  let r1 = min(P.R, r0 + P.chunk);
  var a0 = 0.0;
  var a1 = 0.0;
  var r = r0;
  for (; r + 1u < r1; r += 2u) {
    a0 += A[r * P.C + c] * v[r];
    a1 += A[(r + 1u) * P.C + c] * v[r + 1u];
  }
  if (r < r1) { a0 += A[r * P.C + c] * v[r]; }
  store(s * P.C + c, a0 + a1);
}

// cols with 4 columns per thread and vec4 loads (C a multiple of 4). Four
// independent accumulators keep more loads in flight (1.9x on SwiftShader).
@compute @workgroup_size(64)
fn cols4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c4 = gid.x;
  let C4 = P.C / 4u;
  let s = gid.y + gid.z * 65535u;
  if (c4 >= C4) { return; }
  let r0 = s * P.chunk;
  if (r0 >= P.R) { return; }
  let r1 = min(P.R, r0 + P.chunk);
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  var r = r0;
  for (; r + 3u < r1; r += 4u) {
    a0 += A4[r * C4 + c4] * v[r];
    a1 += A4[(r + 1u) * C4 + c4] * v[r + 1u];
    a2 += A4[(r + 2u) * C4 + c4] * v[r + 2u];
    a3 += A4[(r + 3u) * C4 + c4] * v[r + 3u];
  }
  for (; r < r1; r++) { a0 += A4[r * C4 + c4] * v[r]; }
  let acc = (a0 + a1) + (a2 + a3);
  let o = s * P.C + c4 * 4u;
  store(o, acc.x);
  store(o + 1u, acc.y);
  store(o + 2u, acc.z);
  store(o + 3u, acc.w);
}

// rows_thread with vec4 loads of both A and v (C a multiple of 4) and four
// accumulators, so more loads are in flight. (Loading v as four scalars made
// it ~1.6x slower on SwiftShader, and two accumulators ~1.2x: the loop is
// load-bound.)
@group(0) @binding({{IN1}}) var<storage, read> v4: array<vec4<f32>>;

@compute @workgroup_size(64)
fn rows_thread4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = gid.x + gid.y * nwg.x * WG;
  if (r >= P.R) { return; }
  let C4 = P.C / 4u;
  let base = r * C4;
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  var c = 0u;
  for (; c + 3u < C4; c += 4u) {
    a0 += A4[base + c] * v4[c];
    a1 += A4[base + c + 1u] * v4[c + 1u];
    a2 += A4[base + c + 2u] * v4[c + 2u];
    a3 += A4[base + c + 3u] * v4[c + 3u];
  }
  for (; c < C4; c++) { a0 += A4[base + c] * v4[c]; }
  let acc = (a0 + a1) + (a2 + a3);
  store(r, (acc.x + acc.y) + (acc.z + acc.w));
}

// For CPU adapters, more work per thread: each thread's loop overhead and
// loads of v are shared by more multiply-adds (SwiftShader runs threads as
// SIMD lanes; measured on the (65536, 512) reference problem, 4 rows per
// thread ran 1.3x faster than 1, and 16 columns per thread 1.3x faster than 4).

// rows_thread4 with four rows per thread (C a multiple of 4). Rows past R
// re-read row R - 1 and are not stored.
@compute @workgroup_size(64)
fn rows_block4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = (gid.x + gid.y * nwg.x * WG) * 4u;
  if (r >= P.R) { return; }
  let C4 = P.C / 4u;
  let b0 = r * C4;
  let b1 = min(r + 1u, P.R - 1u) * C4;
  let b2 = min(r + 2u, P.R - 1u) * C4;
  let b3 = min(r + 3u, P.R - 1u) * C4;
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  for (var c = 0u; c < C4; c++) {
    let w = v4[c];
    a0 += A4[b0 + c] * w;
    a1 += A4[b1 + c] * w;
    a2 += A4[b2 + c] * w;
    a3 += A4[b3 + c] * w;
  }
  store(r, (a0.x + a0.y) + (a0.z + a0.w));
  if (r + 1u < P.R) { store(r + 1u, (a1.x + a1.y) + (a1.z + a1.w)); }
  if (r + 2u < P.R) { store(r + 2u, (a2.x + a2.y) + (a2.z + a2.w)); }
  if (r + 3u < P.R) { store(r + 3u, (a3.x + a3.y) + (a3.z + a3.w)); }
}

// cols4 with sixteen columns per thread (C a multiple of 16).
@compute @workgroup_size(64)
fn cols16(@builtin(global_invocation_id) gid: vec3<u32>) {
  let q = gid.x;
  let C4 = P.C / 4u;
  let s = gid.y + gid.z * 65535u;
  if (q * 4u >= C4) { return; }
  let r0 = s * P.chunk;
  if (r0 >= P.R) { return; }
  let r1 = min(P.R, r0 + P.chunk);
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  var at = r0 * C4 + q * 4u;
  for (var r = r0; r < r1; r++) {
    let vr = v[r];
    a0 += A4[at] * vr;
    a1 += A4[at + 1u] * vr;
    a2 += A4[at + 2u] * vr;
    a3 += A4[at + 3u] * vr;
    at += C4;
  }
  let o = s * P.C + q * 16u;
  let acc = array<vec4<f32>, 4>(a0, a1, a2, a3);
  for (var j = 0u; j < 4u; j++) {
    store(o + 4u * j, acc[j].x);
    store(o + 4u * j + 1u, acc[j].y);
    store(o + 4u * j + 2u, acc[j].z);
    store(o + 4u * j + 3u, acc[j].w);
  }
}
