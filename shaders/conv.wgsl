// Convolution as patches and a matrix product. im2col gathers, for every
// output position of an NHWC input, its KH x KW x C window into one row
// (order kh, kw, c: the rows of an HWIO kernel reshaped to (KH KW C, O)), so
// conv2d is one matmul on the tuned matmul kernels; padded positions read
// `pad` (0 for a convolution, -Inf for a max pool). col2im is its transpose,
// the VJP: every input element adds up the window entries that read it, as a
// gather (one thread per input element, at most KH x KW terms, in a fixed
// order: deterministic, no atomics). max_pool and max_pool_grad are the max
// pool and its VJP without patches: the first maximum of each window (a NaN
// counts as the largest; padded entries are never chosen) takes the window's
// cotangent, as JAX's select_and_scatter_add does.
//
// Params: 0: N 1: H 2: W 3: C 4: OH 5: OW 6: KH 7: KW 8: SH 9: SW
//         10: pad top 11: pad left 12: total threads 13: pad value (f32 bits)

struct Params { w: array<vec4<u32>, 4> }
@group(0) @binding(0) var<uniform> P: Params;
fn p(i: u32) -> u32 { return P.w[i / 4u][i % 4u]; }

@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
// max_pool_grad only: the cotangent (N, OH, OW, C).
@group(0) @binding(3) var<storage, read> cot: array<f32>;

fn is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }

@compute @workgroup_size(256)
fn im2col(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = gid.x + gid.y * nwg.x * 256u;
  if (o >= p(12u)) { return; }
  let C = p(3u);
  let KW = p(7u);
  let KH = p(6u);
  let OW = p(5u);
  let OH = p(4u);
  let c = o % C;
  var t = o / C;
  let kw = t % KW;
  t /= KW;
  let kh = t % KH;
  t /= KH;
  let ow = t % OW;
  t /= OW;
  let oh = t % OH;
  let n = t / OH;
  let ih = i32(oh * p(8u) + kh) - i32(p(10u));
  let iw = i32(ow * p(9u) + kw) - i32(p(11u));
  var v = bitcast<f32>(p(13u));
  if (ih >= 0 && iw >= 0 && u32(ih) < p(1u) && u32(iw) < p(2u)) {
    v = src[((n * p(1u) + u32(ih)) * p(2u) + u32(iw)) * C + c];
  }
  out[o] = v;
}

// out (N, H, W, C): the sum of the window entries of src (N, OH, OW, KH, KW, C) that read it.
@compute @workgroup_size(256)
fn col2im(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = gid.x + gid.y * nwg.x * 256u;
  if (o >= p(12u)) { return; }
  let C = p(3u);
  let W = p(2u);
  let H = p(1u);
  let c = o % C;
  var t = o / C;
  let iw = i32(t % W);
  t /= W;
  let ih = i32(t % H);
  let n = t / H;
  let KH = p(6u);
  let KW = p(7u);
  let SH = i32(p(8u));
  let SW = i32(p(9u));
  var s = 0.0;
  for (var kh = 0u; kh < KH; kh++) {
    let y = ih + i32(p(10u)) - i32(kh);
    if (y < 0 || y % SH != 0 || u32(y / SH) >= p(4u)) { continue; }
    for (var kw = 0u; kw < KW; kw++) {
      let x = iw + i32(p(11u)) - i32(kw);
      if (x < 0 || x % SW != 0 || u32(x / SW) >= p(5u)) { continue; }
      s += src[((((n * p(4u) + u32(y / SH)) * p(5u) + u32(x / SW)) * KH + kh) * KW + kw) * C + c];
    }
  }
  out[o] = s;
}

// The window entry (kh * KW + kw) that a max pool picks in window (n, oh, ow, c) of src: the first
// maximum among the entries inside the image, NaN above everything; KH * KW if none is inside.
fn first_max(n: u32, oh: u32, ow: u32, c: u32) -> u32 {
  let C = p(3u);
  let KH = p(6u);
  let KW = p(7u);
  var best = KH * KW;
  var v = 0.0;
  for (var kh = 0u; kh < KH; kh++) {
    let ih = i32(oh * p(8u) + kh) - i32(p(10u));
    if (ih < 0 || u32(ih) >= p(1u)) { continue; }
    for (var kw = 0u; kw < KW; kw++) {
      let iw = i32(ow * p(9u) + kw) - i32(p(11u));
      if (iw < 0 || u32(iw) >= p(2u)) { continue; }
      let x = src[((n * p(1u) + u32(ih)) * p(2u) + u32(iw)) * C + c];
      if (best == KH * KW || (!is_nan(v) && (x > v || is_nan(x)))) {
        best = kh * KW + kw;
        v = x;
      }
    }
  }
  return best;
}

// out (N, OH, OW, C): the maximum of each window of src (N, H, W, C).
@compute @workgroup_size(256)
fn max_pool(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = gid.x + gid.y * nwg.x * 256u;
  if (o >= p(12u)) { return; }
  let C = p(3u);
  let OW = p(5u);
  let OH = p(4u);
  let c = o % C;
  var t = o / C;
  let ow = t % OW;
  t /= OW;
  let oh = t % OH;
  let n = t / OH;
  let k = first_max(n, oh, ow, c);
  var v = bitcast<f32>(p(13u)); // -Inf: a window with nothing inside (not reachable with SAME or VALID)
  if (k < p(6u) * p(7u)) {
    let KW = p(7u);
    let ih = oh * p(8u) + k / KW - p(10u);
    let iw = ow * p(9u) + k % KW - p(11u);
    v = src[((n * p(1u) + ih) * p(2u) + iw) * C + c];
  }
  out[o] = v;
}

// out (N, H, W, C): the sum of the cotangents of the windows whose first maximum is this element.
@compute @workgroup_size(256)
fn max_pool_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = gid.x + gid.y * nwg.x * 256u;
  if (o >= p(12u)) { return; }
  let C = p(3u);
  let W = p(2u);
  let H = p(1u);
  let c = o % C;
  var t = o / C;
  let iw = i32(t % W);
  t /= W;
  let ih = i32(t % H);
  let n = t / H;
  let KH = p(6u);
  let KW = p(7u);
  let SH = i32(p(8u));
  let SW = i32(p(9u));
  var s = 0.0;
  if (SH == i32(KH) && SW == i32(KW)) {
    // Windows that tile the image (the usual pool): one window holds this element.
    let y = ih + i32(p(10u));
    let x = iw + i32(p(11u));
    let oh = u32(y / SH);
    let ow = u32(x / SW);
    if (oh < p(4u) && ow < p(5u) && first_max(n, oh, ow, c) == u32(y % SH) * KW + u32(x % SW)) {
      s = cot[((n * p(4u) + oh) * p(5u) + ow) * C + c];
    }
    out[o] = s;
    return;
  }
  for (var kh = 0u; kh < KH; kh++) {
    let y = ih + i32(p(10u)) - i32(kh);
    if (y < 0 || y % SH != 0 || u32(y / SH) >= p(4u)) { continue; }
    for (var kw = 0u; kw < KW; kw++) {
      let x = iw + i32(p(11u)) - i32(kw);
      if (x < 0 || x % SW != 0 || u32(x / SW) >= p(5u)) { continue; }
      let oh = u32(y / SH);
      let ow = u32(x / SW);
      if (first_max(n, oh, ow, c) == kh * KW + kw) {
        s += cot[((n * p(4u) + oh) * p(5u) + ow) * C + c];
      }
    }
  }
  out[o] = s;
}

// max_pool_grad when the windows tile the image exactly (strides = window, no padding, no remainder):
// one thread per window (n, oh, ow, c) writes its KH x KW entries, the cotangent at its first maximum.
@compute @workgroup_size(256)
fn max_pool_scatter(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = gid.x + gid.y * nwg.x * 256u;
  if (o >= p(12u)) { return; }
  let C = p(3u);
  let OW = p(5u);
  let OH = p(4u);
  let KH = p(6u);
  let KW = p(7u);
  let c = o % C;
  var t = o / C;
  let ow = t % OW;
  t /= OW;
  let oh = t % OH;
  let n = t / OH;
  let k = first_max(n, oh, ow, c);
  let g = cot[o];
  for (var kh = 0u; kh < KH; kh++) {
    for (var kw = 0u; kw < KW; kw++) {
      out[((n * p(1u) + oh * KH + kh) * p(2u) + ow * KW + kw) * C + c] = select(0.0, g, k == kh * KW + kw);
    }
  }
}
