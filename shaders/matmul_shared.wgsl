// Matmul, tiled through workgroup memory: the variant real GPUs reward.
// A workgroup of 16x16 threads computes a 64x64 tile of C, 4x4 per thread,
// staging 64x16 slices of A and 16x64 slices of B in workgroup memory.
// Same parameters, transposes and split-K layout as matmul_register.wgsl.
//
// Generated: TRANS_A, TRANS_B, and IN0, IN1, PARAMS_W, EPILOGUE as in
// matmul_register.wgsl.

const TRANS_A: bool = {{TRANS_A}};
const TRANS_B: bool = {{TRANS_B}};
const TILE: u32 = 64u;
const TK: u32 = 16u;

// zBase: the first (batch, split) index of this dispatch (more than 65535 are dispatched in parts).
struct Params { M: u32, N: u32, K: u32, batch: u32, aBatch: u32, bBatch: u32, kChunk: u32, splits: u32,
                zBase: u32, _p0: u32, _p1: u32, _p2: u32{{PARAMS_W}} }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> C: array<f32>;
@group(0) @binding({{IN0}}) var<storage, read> A: array<f32>;
@group(0) @binding({{IN1}}) var<storage, read> B: array<f32>;
{{EPILOGUE}}

var<workgroup> As: array<f32, 1024>; // [TK][TILE]: As[k * TILE + m]
var<workgroup> Bs: array<f32, 1024>; // [TK][TILE]: Bs[k * TILE + n]

fn a_at(base: u32, m: u32, k: u32, kEnd: u32) -> f32 {
  if (m >= P.M || k >= kEnd) { return 0.0; }
  if (TRANS_A) { return A[base + k * P.M + m]; }
  return A[base + m * P.K + k];
}
fn b_at(base: u32, k: u32, n: u32, kEnd: u32) -> f32 {
  if (k >= kEnd || n >= P.N) { return 0.0; }
  if (TRANS_B) { return B[base + n * P.K + k]; }
  return B[base + k * P.N + n];
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let z = wid.z + P.zBase;
  let batchIdx = z % P.batch;
  let split = z / P.batch;
  let tm = wid.y * TILE;
  let tn = wid.x * TILE;
  let aBase = batchIdx * P.aBatch;
  let bBase = batchIdx * P.bBatch;
  let k0 = split * P.kChunk;
  let k1 = min(P.K, k0 + P.kChunk);
  let t = lid.y * 16u + lid.x; // 0..255
  var acc: array<vec4<f32>, 4>;
  for (var kt = k0; kt < k1; kt += TK) {
    // 256 threads load 1024 values of each tile: 4 each.
    for (var r = 0u; r < 4u; r++) {
      let e = t + r * 256u;         // 0..1023
      let kk = e / TILE;            // 0..15
      let mm = e % TILE;            // 0..63
      As[e] = a_at(aBase, tm + mm, kt + kk, k1);
      Bs[e] = b_at(bBase, kt + kk, tn + mm, k1);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      let b = vec4<f32>(Bs[kk * TILE + lid.x * 4u], Bs[kk * TILE + lid.x * 4u + 1u],
                        Bs[kk * TILE + lid.x * 4u + 2u], Bs[kk * TILE + lid.x * 4u + 3u]);
      for (var i = 0u; i < 4u; i++) {
        acc[i] += As[kk * TILE + lid.y * 4u + i] * b;
      }
    }
    workgroupBarrier();
  }
  let cBase = (split * P.batch + batchIdx) * P.M * P.N;
  let m0 = tm + lid.y * 4u;
  let n0 = tn + lid.x * 4u;
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + i;
    if (m >= P.M) { break; }
    for (var j = 0u; j < 4u; j++) {
      if (n0 + j < P.N) { store(cBase + m * P.N + n0 + j, acc[i][j]); }
    }
  }
}
