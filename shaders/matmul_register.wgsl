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
