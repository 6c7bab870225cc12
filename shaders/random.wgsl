// Counter-based random numbers: Threefry-2x32 with 20 rounds (Salmon et al.,
// "Parallel random numbers: as easy as 1, 2, 3", 2011), in the layout JAX
// uses with jax_threefry_partitionable (its default since JAX 0.5): element i
// of a draw is threefry(key, (0, i)), so every value depends only on the key
// and its index: the same on every adapter, in any dispatch order.
//
// Entries: bits (x0 ^ x1 per element, as int32 words), split (subkey i is
// both words of threefry(key, (0, i))), unit (uniform in [0, 1) from the top
// 23 bits, JAX's mantissa trick), and the two passes of a permutation
// (ranks of uniform keys, then out[rank] = i).
//
// Params: 0: n (outputs)  1: counter offset (foldIn)

struct Params { n: u32, offset: u32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<uniform> P: Params;

fn rotl(x: u32, r: u32) -> u32 { return (x << r) | (x >> (32u - r)); }

fn rounds(v: vec2<u32>, r: vec4<u32>) -> vec2<u32> {
  var x = v;
  for (var k = 0u; k < 4u; k++) {
    x.x += x.y;
    x.y = rotl(x.y, r[k]);
    x.y ^= x.x;
  }
  return x;
}

fn threefry(k0: u32, k1: u32, c: vec2<u32>) -> vec2<u32> {
  let k2 = k0 ^ k1 ^ 0x1BD11BDAu;
  let ra = vec4<u32>(13u, 15u, 26u, 6u);
  let rb = vec4<u32>(17u, 29u, 16u, 24u);
  var x = c + vec2<u32>(k0, k1);
  x = rounds(x, ra);
  x += vec2<u32>(k1, k2 + 1u);
  x = rounds(x, rb);
  x += vec2<u32>(k2, k0 + 2u);
  x = rounds(x, ra);
  x += vec2<u32>(k0, k1 + 3u);
  x = rounds(x, rb);
  x += vec2<u32>(k1, k2 + 4u);
  x = rounds(x, ra);
  x += vec2<u32>(k2, k0 + 5u);
  return x;
}

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 { return gid.x + gid.y * nwg.x * 256u; }

@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<storage, read> key: array<u32>;

@compute @workgroup_size(256)
fn bits(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= P.n) { return; }
  let x = threefry(key[0], key[1], vec2<u32>(0u, i + P.offset));
  out[i] = x.x ^ x.y;
}

// out (n / 2, 2): subkey j = threefry(key, (0, j)).
@compute @workgroup_size(256)
fn split(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= P.n) { return; }
  let x = threefry(key[0], key[1], vec2<u32>(0u, i / 2u + P.offset));
  out[i] = select(x.y, x.x, i % 2u == 0u);
}

@group(0) @binding(1) var<storage, read_write> unit_out: array<f32>;

@compute @workgroup_size(256)
fn unit(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= P.n) { return; }
  let x = threefry(key[0], key[1], vec2<u32>(0u, i + P.offset));
  unit_out[i] = bitcast<f32>(((x.x ^ x.y) >> 9u) | 0x3f800000u) - 1.0;
}

// A permutation of 0..n-1 from n uniform floats u: rank[i] = the number of j
// with u[j] < u[i], ties broken by index (so ranks are distinct), then
// out[rank[i]] = i. O(n^2) comparisons: fine for the minibatch shuffles it is
// for (8,000 examples: 64M comparisons), not for sorting millions.
@group(0) @binding(1) var<storage, read_write> rank: array<u32>;
@group(0) @binding(2) var<storage, read> u: array<f32>;

@compute @workgroup_size(256)
fn ranks(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= P.n) { return; }
  let ui = u[i];
  var r = 0u;
  for (var j = 0u; j < P.n; j++) {
    let uj = u[j];
    if (uj < ui || (uj == ui && j < i)) { r++; }
  }
  rank[i] = r;
}

@group(0) @binding(1) var<storage, read_write> perm: array<i32>;
@group(0) @binding(2) var<storage, read> ranked: array<u32>;

@compute @workgroup_size(256)
fn scatter(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= P.n) { return; }
  perm[ranked[i]] = i32(i);
}
