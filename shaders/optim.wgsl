// Fused Adam (Optax's scale_by_adam followed by a scale): one pass over a leaf
// reads g, m, v and writes m', v' and the update into one packed buffer
// [m' | v' | update], each segment `seg` floats long (a multiple of 64, so the
// three views start 256-byte aligned).
//   m' = b1 m + (1 - b1) g          v' = b2 v + (1 - b2) g^2
//   u  = scale * (m' / bc1) / (sqrt(v' / bc2 + epsRoot) + eps),  bc_i = 1 - b_i^t

struct Params { n: u32, seg: u32, _p0: u32, _p1: u32,
                b1: f32, b2: f32, eps: f32, epsRoot: f32,
                bc1: f32, bc2: f32, scale: f32, _p2: f32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read> m: array<f32>;
@group(0) @binding(4) var<storage, read> v: array<f32>;

@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= P.n) { return; }
  let gi = g[i];
  let m1 = P.b1 * m[i] + (1.0 - P.b1) * gi;
  let v1 = P.b2 * v[i] + (1.0 - P.b2) * gi * gi;
  out[i] = m1;
  out[P.seg + i] = v1;
  // u in an order where no step overflows unless u itself does: sqrt(v'/bc2 + epsRoot) as
  // sqrt(v' + epsRoot bc2) / sqrt(bc2) (v'/bc2 overflowed once v' > bc2 * 3.4e38, making u 0), and
  // the division by bc1 <= 1 last (m'/bc1 overflowed once |m'| > bc1 * 3.4e38, making u Inf or NaN).
  let d = sqrt(v1 + P.epsRoot * P.bc2) / sqrt(P.bc2) + P.eps;
  out[2u * P.seg + i] = P.scale * ((m1 / d) / P.bc1);
}

// adam for n a multiple of 4: four elements per thread, vec4 loads and stores
// (the same arithmetic, componentwise).
@group(0) @binding(1) var<storage, read_write> out4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> g4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> m4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> v4: array<vec4<f32>>;

@compute @workgroup_size(256)
fn adam4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= P.n / 4u) { return; }
  let s = P.seg / 4u;
  let gi = g4[i];
  let m1 = P.b1 * m4[i] + (1.0 - P.b1) * gi;
  let v1 = P.b2 * v4[i] + (1.0 - P.b2) * gi * gi;
  out4[i] = m1;
  out4[s + i] = v1;
  let d = sqrt(v1 + P.epsRoot * P.bc2) / sqrt(P.bc2) + P.eps;
  out4[2u * s + i] = P.scale * ((m1 / d) / P.bc1);
}
