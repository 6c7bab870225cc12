// Matmul, register-blocked: C[b] = op(A[b]) @ op(B[b]), op = optional transpose.
// Each thread computes a 4x4 block of C straight from global memory, with no
// workgroup memory and no barriers: on CPU "GPUs" (SwiftShader) barriers are
// expensive and caches do the work that shared memory does on a real GPU.
// A workgroup of 16x16 threads covers a 64x64 tile of C.
// Split-K: grid z = batch * splits; split s sums k in [s*kChunk, (s+1)*kChunk)
// and writes its partial product to C + s * batch * M * N (summed afterwards).
//
// Generated constants: TRANS_A, TRANS_B.

const TRANS_A: bool = {{TRANS_A}};
const TRANS_B: bool = {{TRANS_B}};

// zBase: the first (batch, split) index of this dispatch (more than 65535 are dispatched in parts).
struct Params { M: u32, N: u32, K: u32, batch: u32, aBatch: u32, bBatch: u32, kChunk: u32, splits: u32,
                zBase: u32, _p0: u32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> C: array<f32>;
@group(0) @binding(2) var<storage, read> A: array<f32>;
@group(0) @binding(3) var<storage, read> B: array<f32>;

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
      if (n0 + j < P.N) { C[cBase + m * P.N + n0 + j] = acc[i][j]; }
    }
  }
}

// The same product with vec4 loads, for M, N and K multiples of 4: each step
// of k loads a 4x4 block of op(A) and of op(B) as four vec4s each and does 64
// multiply-adds, with no bounds checks inside the loop.
@group(0) @binding(2) var<storage, read> A4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> B4: array<vec4<f32>>;

@compute @workgroup_size(16, 16)
fn main4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
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
  let K4 = P.K / 4u;
  let M4 = P.M / 4u;
  let N4 = P.N / 4u;
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var k = k0; k < k1; k += 4u) {
    // Rows i of the 4x4 block of op(A): a_i = op(A)[m0 + i, k..k+3].
    var a0: vec4<f32>; var a1: vec4<f32>; var a2: vec4<f32>; var a3: vec4<f32>;
    if (TRANS_A) {
      let c0 = A4[(aBase + k * P.M) / 4u + m0 / 4u];
      let c1 = A4[(aBase + (k + 1u) * P.M) / 4u + m0 / 4u];
      let c2 = A4[(aBase + (k + 2u) * P.M) / 4u + m0 / 4u];
      let c3 = A4[(aBase + (k + 3u) * P.M) / 4u + m0 / 4u];
      a0 = vec4<f32>(c0.x, c1.x, c2.x, c3.x); a1 = vec4<f32>(c0.y, c1.y, c2.y, c3.y);
      a2 = vec4<f32>(c0.z, c1.z, c2.z, c3.z); a3 = vec4<f32>(c0.w, c1.w, c2.w, c3.w);
    } else {
      let r = aBase / 4u + m0 * K4 + k / 4u;
      a0 = A4[r]; a1 = A4[r + K4]; a2 = A4[r + 2u * K4]; a3 = A4[r + 3u * K4];
    }
    // Rows j of the 4x4 block of op(B): b_j = op(B)[k + j, n0..n0+3].
    var b0: vec4<f32>; var b1: vec4<f32>; var b2: vec4<f32>; var b3: vec4<f32>;
    if (TRANS_B) {
      let r = bBase / 4u + n0 * K4 + k / 4u;
      let d0 = B4[r]; let d1 = B4[r + K4]; let d2 = B4[r + 2u * K4]; let d3 = B4[r + 3u * K4];
      b0 = vec4<f32>(d0.x, d1.x, d2.x, d3.x); b1 = vec4<f32>(d0.y, d1.y, d2.y, d3.y);
      b2 = vec4<f32>(d0.z, d1.z, d2.z, d3.z); b3 = vec4<f32>(d0.w, d1.w, d2.w, d3.w);
    } else {
      let r = (bBase + k * P.N) / 4u + n0 / 4u;
      b0 = B4[r]; b1 = B4[r + N4]; b2 = B4[r + 2u * N4]; b3 = B4[r + 3u * N4];
    }
    acc0 += a0.x * b0 + a0.y * b1 + a0.z * b2 + a0.w * b3;
    acc1 += a1.x * b0 + a1.y * b1 + a1.z * b2 + a1.w * b3;
    acc2 += a2.x * b0 + a2.y * b1 + a2.z * b2 + a2.w * b3;
    acc3 += a3.x * b0 + a3.y * b1 + a3.z * b2 + a3.w * b3;
  }
  let c = (split * P.batch + batchIdx) * P.M * P.N + m0 * P.N + n0;
  let cs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
  for (var i = 0u; i < 4u; i++) {
    C[c + i * P.N] = cs[i].x;
    C[c + i * P.N + 1u] = cs[i].y;
    C[c + i * P.N + 2u] = cs[i].z;
    C[c + i * P.N + 3u] = cs[i].w;
  }
  _ = M4;
}
