// Convolution as patches and a matrix product. im2col gathers, for every
// output position of an NHWC input, its KH x KW x C window into one row
// (order kh, kw, c: the rows of an HWIO kernel reshaped to (KH KW C, O)), so
// conv2d is one matmul on the tuned matmul kernels; padded positions read
// `pad` (0 for a convolution, -Inf for a max pool). col2im is its transpose,
// the VJP: every input element adds up the window entries that read it, as a
// gather (one thread per input element, at most KH x KW terms, in a fixed
// order: deterministic, no atomics).
//
// Params: 0: N 1: H 2: W 3: C 4: OH 5: OW 6: KH 7: KW 8: SH 9: SW
//         10: pad top 11: pad left 12: total threads 13: pad value (f32 bits)

struct Params { w: array<vec4<u32>, 4> }
@group(0) @binding(0) var<uniform> P: Params;
fn p(i: u32) -> u32 { return P.w[i / 4u][i % 4u]; }

@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;

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
