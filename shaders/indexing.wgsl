// Indexing along one axis, with the input viewed as (A, N, B) and N the
// indexed axis: take (one index list for every (a, b)), take_along_axis (an
// index per output element), and their VJPs, which add each cotangent into
// the row it was taken from (scatter-add). An index i in [-N, N) means
// i mod N; outside it, the index is clamped to [0, N - 1] (README, "Indexing").
//
// The scatter-adds are written as gathers: one thread per output (a, n, b)
// adds the cotangents of every k whose index is n, in order of k. That is
// deterministic (no atomics, the same sum every run, right for repeated
// indices) and costs K reads of the index per output.
//
// Params: 0: A  1: K (indices along the axis)  2: N  3: B  4: total outputs

struct Params { A: u32, K: u32, N: u32, B: u32, total: u32, _p0: u32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<uniform> P: Params;

fn row(i: i32) -> u32 {
  let n = i32(P.N);
  var j = i;
  if (j < 0) { j += n; }
  return u32(clamp(j, 0, n - 1));
}

fn thread(gid: vec3<u32>, nwg: vec3<u32>) -> u32 { return gid.x + gid.y * nwg.x * 256u; }

// Gathers move u32 words, bit for bit, whatever the dtype.
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<storage, read> src: array<u32>;
@group(0) @binding(3) var<storage, read> idx: array<i32>;

// out (A, K, B)[a, k, b] = src[a, idx[k], b]
@compute @workgroup_size(256)
fn take(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = thread(gid, nwg);
  if (o >= P.total) { return; }
  let b = o % P.B;
  let k = (o / P.B) % P.K;
  let a = o / (P.B * P.K);
  out[o] = src[(a * P.N + row(idx[k])) * P.B + b];
}

// out (A, K, B)[a, k, b] = src[a, idx[a, k, b], b]
@compute @workgroup_size(256)
fn take_along(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = thread(gid, nwg);
  if (o >= P.total) { return; }
  let b = o % P.B;
  let a = o / (P.B * P.K);
  out[o] = src[(a * P.N + row(idx[o])) * P.B + b];
}

@group(0) @binding(1) var<storage, read_write> gout: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;

// gout (A, N, B)[a, n, b] = sum over k with row(idx[k]) == n of g[a, k, b]
@compute @workgroup_size(256)
fn take_add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = thread(gid, nwg);
  if (o >= P.total) { return; }
  let b = o % P.B;
  let n = (o / P.B) % P.N;
  let a = o / (P.B * P.N);
  var s = 0.0;
  for (var k = 0u; k < P.K; k++) {
    if (row(idx[k]) == n) { s += g[(a * P.K + k) * P.B + b]; }
  }
  gout[o] = s;
}

// gout (A, N, B)[a, n, b] = sum over k with row(idx[a, k, b]) == n of g[a, k, b]
@compute @workgroup_size(256)
fn take_along_add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = thread(gid, nwg);
  if (o >= P.total) { return; }
  let b = o % P.B;
  let n = (o / P.B) % P.N;
  let a = o / (P.B * P.N);
  var s = 0.0;
  for (var k = 0u; k < P.K; k++) {
    let at = (a * P.K + k) * P.B + b;
    if (row(idx[at]) == n) { s += g[at]; }
  }
  gout[o] = s;
}
