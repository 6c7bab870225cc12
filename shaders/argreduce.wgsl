// argmax / argmin over the middle axis of a contiguous (A, R, B) array:
// one thread per output (a, b), which scans r and keeps the first index of
// the best value; the first NaN wins outright (NumPy's and JAX's rule).
// The TS side fills in the element type T, the comparison BETTER (> or <)
// and IS_NAN (is_nan(v) for f32, false otherwise). R >= 1.
//
// Params: 0: A  1: R  2: B

struct Params { A: u32, R: u32, B: u32, _p0: u32 }
@group(0) @binding(0) var<uniform> P: Params;
alias T = {{T}};
@group(0) @binding(1) var<storage, read_write> out: array<i32>;
@group(0) @binding(2) var<storage, read> src: array<T>;

fn is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn nan(v: T) -> bool { return {{IS_NAN}}; }

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = gid.x + gid.y * nwg.x * 256u;
  if (o >= P.A * P.B) { return; }
  let a = o / P.B;
  let b = o % P.B;
  let base = a * P.R * P.B + b;
  var best = src[base];
  var at = 0u;
  if (!nan(best)) {
    for (var r = 1u; r < P.R; r++) {
      let v = src[base + r * P.B];
      if (nan(v)) { at = r; break; }
      if (v {{BETTER}} best) { best = v; at = r; }
    }
  }
  out[o] = i32(at);
}
