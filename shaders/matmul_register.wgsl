// Matmul, register-blocked: C[b] = op(A[b]) @ op(B[b]), op = optional transpose.
// Each thread computes a 4x4 block of C straight from global memory, with no
// workgroup memory and no barriers: on CPU "GPUs" (SwiftShader) barriers are
// expensive and caches do the work that shared memory does on a real GPU.
// A workgroup of 16x16 threads covers a 64x64 tile of C.
// Split-K: grid z = batch * splits; split s sums k in [s*kChunk, (s+1)*kChunk)
// and writes its partial product to C + s * batch * M * N (summed afterwards).
//
// Generated: TRANS_A, TRANS_B; IN0, IN1 (A's and B's bindings), PARAMS_W
// and EPILOGUE (store and store4, which write C's elements: by default as
// they are, or through a fused elementwise epilogue, src/gpu/epilogue.ts).

const TRANS_A: bool = {{TRANS_A}};
const TRANS_B: bool = {{TRANS_B}};

// zBase: the first (batch, split) index of this dispatch (more than 65535 are dispatched in parts).
struct Params { M: u32, N: u32, K: u32, batch: u32, aBatch: u32, bBatch: u32, kChunk: u32, splits: u32,
                zBase: u32, _p0: u32, _p1: u32, _p2: u32{{PARAMS_W}} }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> C: array<f32>;
@group(0) @binding({{IN0}}) var<storage, read> A: array<f32>;
@group(0) @binding({{IN1}}) var<storage, read> B: array<f32>;
{{EPILOGUE}}

// A is logically (M, K); stored (K, M) when TRANS_A. Out-of-range reads give 0.
fn a_at(base: u32, m: u32, k: u32) -> f32 {
  if (m >= P.M || k >= P.K) { return 0.0; }
  if (TRANS_A) { return A[base + k * P.M + m]; }
  return A[base + m * P.K + k];
}
// B is logically (K, N); stored (N, K) when TRANS_B.
fn b_at(base: u32, k: u32, n: u32) -> f32 {
  if (k >= P.K || n >= P.N) { return 0.0; }
  if (TRANS_B) { return B[base + n * P.K + k]; }
  return B[base + k * P.N + n];
}

@compute @workgroup_size(16, 16)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let z = wid.z + P.zBase;
  let batchIdx = z % P.batch;
  let split = z / P.batch;
  let m0 = gid.y * 4u;
  let n0 = gid.x * 4u;
  if (m0 >= P.M || n0 >= P.N) { return; }
  let aBase = batchIdx * P.aBatch;
  let bBase = batchIdx * P.bBatch;
  let k0 = split * P.kChunk;
  let k1 = min(P.K, k0 + P.kChunk);
  var acc: array<vec4<f32>, 4>;
  for (var k = k0; k < k1; k++) {
    let b = vec4<f32>(b_at(bBase, k, n0), b_at(bBase, k, n0 + 1u), b_at(bBase, k, n0 + 2u), b_at(bBase, k, n0 + 3u));
    acc[0] += a_at(aBase, m0, k) * b;
    acc[1] += a_at(aBase, m0 + 1u, k) * b;
    acc[2] += a_at(aBase, m0 + 2u, k) * b;
    acc[3] += a_at(aBase, m0 + 3u, k) * b;
  }
  let cBase = (split * P.batch + batchIdx) * P.M * P.N;
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + i;
    if (m >= P.M) { break; }
    for (var j = 0u; j < 4u; j++) {
      if (n0 + j < P.N) { store(cBase + m * P.N + n0 + j, acc[i][j]); }
    }
  }
}

// The same product with vec4 loads, for M, N and K multiples of 4: each
// thread owns an 8x8 block of C (two vec4 columns per row) and, per step of 4
// in k, loads a 4x8 block of op(B) and an 8x4 block of op(A) as 8 vec4s each
// for 256 multiply-adds, with no bounds checks inside the loop. 8x8 threads
// cover the same 64x64 tile as `main`. On SwiftShader this block shape ran
// 1.6x faster than 4x4 blocks at 1024 (more arithmetic per load; 16
// accumulators still fit in registers); 16x8 and 8x16 blocks spill.
// The second half of a block (rows m0+4.., columns n0+4..) may lie past M or
// N: it then re-reads the first half's rows/columns and is not stored.
@group(0) @binding(1) var<storage, read_write> C4: array<vec4<f32>>;
@group(0) @binding({{IN0}}) var<storage, read> A4: array<vec4<f32>>;
@group(0) @binding({{IN1}}) var<storage, read> B4: array<vec4<f32>>;

@compute @workgroup_size(8, 8)
fn main8(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let z = wid.z + P.zBase;
  let batchIdx = z % P.batch;
  let split = z / P.batch;
  let m0 = gid.y * 8u;
  let n0 = gid.x * 8u;
  if (m0 >= P.M || n0 >= P.N) { return; }
  let K4 = P.K / 4u;
  let M4 = P.M / 4u;
  let N4 = P.N / 4u;
  let aBase4 = batchIdx * P.aBatch / 4u;
  let bBase4 = batchIdx * P.bBatch / 4u;
  let mHi = m0 + 4u < P.M; // is the block's second row half inside C?
  let nHi = n0 + 4u < P.N;
  let m1 = select(m0, m0 + 4u, mHi);
  let n1 = select(n0, n0 + 4u, nHi);
  let k0 = split * P.kChunk;
  let k1 = min(P.K, k0 + P.kChunk);
  var c00 = vec4<f32>(0.0); var c01 = vec4<f32>(0.0); var c10 = vec4<f32>(0.0); var c11 = vec4<f32>(0.0);
  var c20 = vec4<f32>(0.0); var c21 = vec4<f32>(0.0); var c30 = vec4<f32>(0.0); var c31 = vec4<f32>(0.0);
  var c40 = vec4<f32>(0.0); var c41 = vec4<f32>(0.0); var c50 = vec4<f32>(0.0); var c51 = vec4<f32>(0.0);
  var c60 = vec4<f32>(0.0); var c61 = vec4<f32>(0.0); var c70 = vec4<f32>(0.0); var c71 = vec4<f32>(0.0);
  for (var k = k0; k < k1; k += 4u) {
    // bjh = op(B)[k + j, column half h (n0.. or n1..), 4 columns].
    var b00: vec4<f32>; var b01: vec4<f32>; var b10: vec4<f32>; var b11: vec4<f32>;
    var b20: vec4<f32>; var b21: vec4<f32>; var b30: vec4<f32>; var b31: vec4<f32>;
    if (TRANS_B) {
      // Stored (N, K): one vec4 is four k of one column; transpose 4x4 blocks.
      let r = bBase4 + k / 4u;
      let d0 = B4[r + n0 * K4]; let d1 = B4[r + (n0 + 1u) * K4]; let d2 = B4[r + (n0 + 2u) * K4]; let d3 = B4[r + (n0 + 3u) * K4];
      let d4 = B4[r + n1 * K4]; let d5 = B4[r + (n1 + 1u) * K4]; let d6 = B4[r + (n1 + 2u) * K4]; let d7 = B4[r + (n1 + 3u) * K4];
      b00 = vec4<f32>(d0.x, d1.x, d2.x, d3.x); b01 = vec4<f32>(d4.x, d5.x, d6.x, d7.x);
      b10 = vec4<f32>(d0.y, d1.y, d2.y, d3.y); b11 = vec4<f32>(d4.y, d5.y, d6.y, d7.y);
      b20 = vec4<f32>(d0.z, d1.z, d2.z, d3.z); b21 = vec4<f32>(d4.z, d5.z, d6.z, d7.z);
      b30 = vec4<f32>(d0.w, d1.w, d2.w, d3.w); b31 = vec4<f32>(d4.w, d5.w, d6.w, d7.w);
    } else {
      let r = bBase4 + k * N4;
      b00 = B4[r + n0 / 4u]; b01 = B4[r + n1 / 4u];
      b10 = B4[r + N4 + n0 / 4u]; b11 = B4[r + N4 + n1 / 4u];
      b20 = B4[r + 2u * N4 + n0 / 4u]; b21 = B4[r + 2u * N4 + n1 / 4u];
      b30 = B4[r + 3u * N4 + n0 / 4u]; b31 = B4[r + 3u * N4 + n1 / 4u];
    }
    // ai = op(A)[row i of the block, k..k+3].
    var a0: vec4<f32>; var a1: vec4<f32>; var a2: vec4<f32>; var a3: vec4<f32>;
    var a4: vec4<f32>; var a5: vec4<f32>; var a6: vec4<f32>; var a7: vec4<f32>;
    if (TRANS_A) {
      // Stored (K, M): one vec4 is four rows at one k; transpose 4x4 blocks.
      let r = aBase4 + k * M4;
      let e0 = A4[r + m0 / 4u]; let e1 = A4[r + M4 + m0 / 4u]; let e2 = A4[r + 2u * M4 + m0 / 4u]; let e3 = A4[r + 3u * M4 + m0 / 4u];
      let f0 = A4[r + m1 / 4u]; let f1 = A4[r + M4 + m1 / 4u]; let f2 = A4[r + 2u * M4 + m1 / 4u]; let f3 = A4[r + 3u * M4 + m1 / 4u];
      a0 = vec4<f32>(e0.x, e1.x, e2.x, e3.x); a1 = vec4<f32>(e0.y, e1.y, e2.y, e3.y);
      a2 = vec4<f32>(e0.z, e1.z, e2.z, e3.z); a3 = vec4<f32>(e0.w, e1.w, e2.w, e3.w);
      a4 = vec4<f32>(f0.x, f1.x, f2.x, f3.x); a5 = vec4<f32>(f0.y, f1.y, f2.y, f3.y);
      a6 = vec4<f32>(f0.z, f1.z, f2.z, f3.z); a7 = vec4<f32>(f0.w, f1.w, f2.w, f3.w);
    } else {
      let r = aBase4 + k / 4u;
      a0 = A4[r + m0 * K4]; a1 = A4[r + (m0 + 1u) * K4]; a2 = A4[r + (m0 + 2u) * K4]; a3 = A4[r + (m0 + 3u) * K4];
      a4 = A4[r + m1 * K4]; a5 = A4[r + (m1 + 1u) * K4]; a6 = A4[r + (m1 + 2u) * K4]; a7 = A4[r + (m1 + 3u) * K4];
    }
    c00 += a0.x * b00 + a0.y * b10 + a0.z * b20 + a0.w * b30; c01 += a0.x * b01 + a0.y * b11 + a0.z * b21 + a0.w * b31;
    c10 += a1.x * b00 + a1.y * b10 + a1.z * b20 + a1.w * b30; c11 += a1.x * b01 + a1.y * b11 + a1.z * b21 + a1.w * b31;
    c20 += a2.x * b00 + a2.y * b10 + a2.z * b20 + a2.w * b30; c21 += a2.x * b01 + a2.y * b11 + a2.z * b21 + a2.w * b31;
    c30 += a3.x * b00 + a3.y * b10 + a3.z * b20 + a3.w * b30; c31 += a3.x * b01 + a3.y * b11 + a3.z * b21 + a3.w * b31;
    c40 += a4.x * b00 + a4.y * b10 + a4.z * b20 + a4.w * b30; c41 += a4.x * b01 + a4.y * b11 + a4.z * b21 + a4.w * b31;
    c50 += a5.x * b00 + a5.y * b10 + a5.z * b20 + a5.w * b30; c51 += a5.x * b01 + a5.y * b11 + a5.z * b21 + a5.w * b31;
    c60 += a6.x * b00 + a6.y * b10 + a6.z * b20 + a6.w * b30; c61 += a6.x * b01 + a6.y * b11 + a6.z * b21 + a6.w * b31;
    c70 += a7.x * b00 + a7.y * b10 + a7.z * b20 + a7.w * b30; c71 += a7.x * b01 + a7.y * b11 + a7.z * b21 + a7.w * b31;
  }
  // Row r of C starts at vec4 index c + r * N4.
  let c = ((split * P.batch + batchIdx) * P.M * P.N + m0 * P.N + n0) / 4u;
  store4(c, c00); store4(c + N4, c10); store4(c + 2u * N4, c20); store4(c + 3u * N4, c30);
  if (nHi) { store4(c + 1u, c01); store4(c + N4 + 1u, c11); store4(c + 2u * N4 + 1u, c21); store4(c + 3u * N4 + 1u, c31); }
  if (mHi) {
    let h = c + 4u * N4;
    store4(h, c40); store4(h + N4, c50); store4(h + 2u * N4, c60); store4(h + 3u * N4, c70);
    if (nHi) { store4(h + 1u, c41); store4(h + N4 + 1u, c51); store4(h + 2u * N4 + 1u, c61); store4(h + 3u * N4 + 1u, c71); }
  }
}

// Small products (M or N below 16: attention's (T, T) scores per head, a
// classifier head with 10 columns): one thread per element of C over all
// batches, in a flat 1-D grid, so no thread of a 64x64 tile idles. Grid x
// and y fold the flat index as elsewhere (grid1d); no split-K.
@compute @workgroup_size(256)
fn small(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = gid.x + gid.y * nwg.x * 256u;
  if (o >= P.batch * P.M * P.N) { return; }
  let n = o % P.N;
  let m = (o / P.N) % P.M;
  let batchIdx = o / (P.M * P.N);
  let aBase = batchIdx * P.aBatch;
  let bBase = batchIdx * P.bBatch;
  var s0 = 0.0;
  var s1 = 0.0;
  var k = 0u;
  for (; k + 1u < P.K; k += 2u) {
    s0 += a_at(aBase, m, k) * b_at(bBase, k, n);
    s1 += a_at(aBase, m, k + 1u) * b_at(bBase, k + 1u, n);
  }
  if (k < P.K) { s0 += a_at(aBase, m, k) * b_at(bBase, k, n); }
  store(o, s0 + s1);
}

// The same for N a multiple of 4: one thread per four consecutive outputs of
// a row of C, so each A element is read once for four products and there are
// a quarter as many invocations (what a CPU adapter pays for most).
@compute @workgroup_size(256)
fn small4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = gid.x + gid.y * nwg.x * 256u;
  let N4 = P.N / 4u;
  if (o >= P.batch * P.M * N4) { return; }
  let n = (o % N4) * 4u;
  let m = (o / N4) % P.M;
  let batchIdx = o / (P.M * N4);
  let aBase = batchIdx * P.aBatch;
  let bBase = batchIdx * P.bBatch;
  var s = vec4<f32>(0.0);
  for (var k = 0u; k < P.K; k++) {
    let b = vec4<f32>(b_at(bBase, k, n), b_at(bBase, k, n + 1u), b_at(bBase, k, n + 2u), b_at(bBase, k, n + 3u));
    s += a_at(aBase, m, k) * b;
  }
  let c = batchIdx * P.M * P.N + m * P.N + n;
  store(c, s.x);
  store(c + 1u, s.y);
  store(c + 2u, s.z);
  store(c + 3u, s.w);
}
