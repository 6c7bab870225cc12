// Scalar functions shared by generated kernels (elementwise.wgsl, and the
// epilogues that matmul and matvec kernels run on their results, src/gpu/
// epilogue.ts): IEEE-faithful replacements for WGSL builtins, random
// numbers, and the params accessors. src/gpu/kernels.ts pastes this file
// where a kernel's source asks for the scalar functions; the kernel declares
// `P` with a field `w: array<vec4<u32>, 32>` holding the expression's words
// (see elementwise.wgsl for their layout).

fn p(i: u32) -> u32 { return P.w[i / 4u][i % 4u]; }
fn cf(k: u32) -> f32 { return bitcast<f32>(p(64u + k)); }
fn cu(k: u32) -> u32 { return p(64u + k); }
fn ci(k: u32) -> i32 { return bitcast<i32>(p(64u + k)); }

// Offset into a broadcast input for output element i.
fn bcast(i: u32, base: u32) -> u32 {
  var rem = i;
  var off = 0u;
  for (var d = i32(p(1u)) - 1; d >= 0; d--) {
    let dim = p(4u + u32(d));
    off += (rem % dim) * p(base + u32(d));
    rem /= dim;
  }
  return off;
}

// NaN test on the bits: comparisons such as x != x compile to ordered
// compares on Vulkan (false for NaN), so they cannot detect NaN.
fn is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
// r, unless x is NaN: then x. WGSL leaves builtins' NaN results unspecified
// (SwiftShader gave exp(NaN) = Inf and sign(NaN) = 0); IEEE says NaN.
fn keep_nan(x: f32, r: f32) -> f32 { return select(r, x, is_nan(x)); }
// sin and cos with their own argument reduction. WGSL only bounds the
// builtins on [-pi, pi], and loosely (2^-11): SwiftShader's were off by 1.9e-4
// there, by 7e-4 at 1e4 and by 0.03 at 1e6, and positional encodings use such
// arguments. Here x = k pi/2 + r by Cody-Waite with pi/2 in five parts, the
// first four short (4 significant bits) so that k * part is exact for
// |k| < 2^20 (|x| < 1.6e6), then minimax polynomials on |r| <= pi/4 (the
// coefficients of Cephes' sinf and cosf) and the quadrant. Beyond 1.6e6, the
// builtins. sin(+-Inf) and NaN are NaN.
fn sin_poly(r: f32) -> f32 {
  let z = r * r;
  return r + r * z * (-1.6666654611e-1 + z * (8.3321608736e-3 + z * -1.9515295891e-4));
}
fn cos_poly(r: f32) -> f32 {
  let z = r * r;
  return 1.0 - 0.5 * z + z * z * (4.166664568298827e-2 + z * (-1.388731625493765e-3 + z * 2.443315711809948e-5));
}
// shift 0: sin(x); shift 1: cos(x) = sin(x + pi/2).
fn sin_q(x: f32, shift: i32) -> f32 {
  if (is_nan(x) || is_inf(x)) { return bitcast<f32>(bitcast<u32>(x) | 0x7fc00000u); }
  if (abs(x) >= 1.6e6) { return select(sin(x), cos(x), shift == 1); }
  let k = round(x * 0.63661977);
  let r = ((((x - k * 0x1.ap0f) - k * -0x1.cp-5f) - k * 0x1p-11f) - k * -0x1.2p-18f) - k * -0x1.5dde98p-23f;
  let q = (i32(k) + shift) & 3;
  let v = select(sin_poly(r), cos_poly(r), (q & 1) == 1);
  return select(v, -v, q >= 2);
}
fn sin_s(x: f32) -> f32 { return sin_q(x, 0); }
fn cos_s(x: f32) -> f32 { return sin_q(x, 1); }
// tanh: the builtin computes it from exp, which loses every digit near 0
// (SwiftShader gave tanh(1e-8) = 0) and may overflow to NaN for large |x|.
// Near 0 the odd Taylor series to x^9 (error < 1e-8 relative for |x| < 0.25);
// elsewhere the builtin on a clamped argument (tanh(+-15) is +-1 in float32).
fn tanh_s(x: f32) -> f32 {
  if (is_nan(x)) { return x; }
  if (abs(x) < 0.25) {
    let t = x * x;
    return x * (1.0 + t * (-0.33333333 + t * (0.13333333 + t * (-0.053968254 + t * 0.021869488))));
  }
  return tanh(clamp(x, -15.0, 15.0));
}

// x^e that, unlike WGSL's pow, accepts a negative x for integer e, and gives
// NaN (as NumPy does) for a negative x and a non-integer e, where WGSL's pow
// is undefined (SwiftShader returns |x|^e). WGSL's pow (exp2(e * log2(x))) is
// undefined at x = 0 too: SwiftShader gave 0^0.5 = 7.7e-20 and 0^-1 = 1.7e38.
// Here 0^e is 0 for e > 0 and Inf for e < 0, with -0's sign for odd e (IEEE).
fn pow_s(x: f32, e: f32) -> f32 {
  if (e == 0.0) { return 1.0; }
  if (is_nan(x)) { return x; } // (the builtin gave Inf for NaN^3 on SwiftShader)
  let odd = e == floor(e) && abs(e) < 16777216.0 && (i32(e) & 1) == 1;
  let sgn = select(0u, bitcast<u32>(x) & 0x80000000u, odd);
  // (Infinities and NaNs built at run time: WGSL rejects them in constant expressions.)
  if (x == 0.0) { return bitcast<f32>(select(0u, 0x7f800000u, e < 0.0) | sgn); }
  if (x >= 0.0) { return pow(x, e); }
  if (e != floor(e)) {
    // (-Inf)^e is Inf for e > 0 and 0 for e < 0 (IEEE); other negatives give NaN.
    if (is_inf(x)) { return select(0.0, -x, e > 0.0); }
    return bitcast<f32>(bitcast<u32>(x) | 0x7fc00000u);
  }
  let m = pow(-x, e);
  return select(m, -m, odd);
}

// x / y. GPUs divide as x * (1 / y), and 1 / y flushes to 0 for |y| > 2^126
// (WGSL bounds the error only for |y| in [2^-126, 2^126]): on an NVIDIA H200,
// 1e37 / 3.4e38 gave 0. There both are scaled by 1/4 first (exact).
fn div_s(x: f32, y: f32) -> f32 {
  return select(x / y, (x * 0.25) / (y * 0.25), abs(y) > 0x1p126f);
}

fn is_inf(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u; }

// log with IEEE's edges, which WGSL leaves undefined (SwiftShader gave log|x|
// for x < 0, and -88.03 for 0): NaN below 0 (and for NaN), -Inf at 0.
fn log_s(x: f32) -> f32 {
  if (x > 0.0) { return log(x); }
  if (x == 0.0) { return bitcast<f32>(0xff800000u | bitcast<u32>(x)); }
  return bitcast<f32>(bitcast<u32>(x) | 0x7fc00000u);
}

// start + i step; where i step overflows though the sum does not (a range
// across most of the float32 line), the same halved and doubled (exact scalings).
fn arange_at(start: f32, step: f32, i: u32) -> f32 {
  let v = start + f32(i) * step;
  if ((bitcast<u32>(v) & 0x7fffffffu) < 0x7f800000u) { return v; }
  return (start * 0.5 + f32(i) * (step * 0.5)) * 2.0;
}

// lo + (hi - lo) u; where hi - lo overflows (a range wider than the float32
// maximum, e.g. [-3e38, 3e38]) lo (1 - u) + hi u, which does not.
fn lerp_u(lo: f32, hi: f32, u: f32) -> f32 {
  let d = hi - lo;
  if ((bitcast<u32>(d) & 0x7fffffffu) < 0x7f800000u) { return lo + d * u; }
  return lo * (1.0 - u) + hi * u;
}

// Counter-based random numbers: a 32-bit integer hash (lowbias32) of (index, seed).
fn hash(x0: u32) -> u32 {
  var x = x0;
  x ^= x >> 16u; x *= 0x7feb352du;
  x ^= x >> 15u; x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}
fn uniform01(i: u32, seed: u32, stream: u32) -> f32 {
  let h = hash(hash(i ^ hash(seed + stream * 0x9e3779b9u)) + seed);
  // 23 bits, so k + 0.5 is exact in f32: (0, 1) strictly. (With 24 bits,
  // 16777215 + 0.5 rounded to 2^24 and gave exactly 1.0.)
  return (f32(h >> 9u) + 0.5) * (1.0 / 8388608.0);
}
fn normal01(i: u32, seed: u32) -> f32 {
  // Box-Muller on two independent streams.
  let u1 = uniform01(i, seed, 1u);
  let u2 = uniform01(i, seed, 2u);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}


// log(1 + x): its Taylor series for |x| < 0.25 (terms to x^12: relative error
// below 1e-8, where log(1 + x) would lose digits to the rounding of 1 + x and
// to log's 2^-21 absolute error near 1), else log(1 + x).
fn log1p_s(x: f32) -> f32 {
  if (abs(x) < 0.25) {
    var s = 0.0;
    for (var n = 12; n >= 2; n--) { s = x * (select(1.0, -1.0, n % 2 == 0) / f32(n) + s); }
    return x + x * s;
  }
  return log_s(1.0 + x);
}

// erf(x): the odd Taylor series to x^13 for |x| < 0.5 (relative error below
// 3e-8), else 1 - erfc(|x|) by Numerical Recipes' Chebyshev fit (relative
// error of erfc below 1.2e-7), with the sign of x.
fn erf_s(x: f32) -> f32 {
  if (is_nan(x)) { return x; }
  let z = abs(x);
  if (z < 0.5) {
    let s = x * x;
    return x * 1.1283791671 * (1.0 + s * (-1.0 / 3.0 + s * (0.1 + s * (-1.0 / 42.0 + s * (1.0 / 216.0 + s * (-1.0 / 1320.0 + s / 9360.0))))));
  }
  if (z > 4.0) { return sign(x); }
  let t = 1.0 / (1.0 + 0.5 * z);
  let p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 +
    t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  return sign(x) * (1.0 - t * exp(-z * z + p));
}

// erf^-1(x) on (-1, 1): M. Giles' single-precision polynomials ("Approximating
// the erfinv function", GPU Computing Gems, 2011), the form XLA uses; +-Inf at
// +-1, NaN outside.
fn erf_inv_s(x: f32) -> f32 {
  if (is_nan(x) || abs(x) > 1.0) { return bitcast<f32>(bitcast<u32>(x) | 0x7fc00000u); }
  if (abs(x) == 1.0) { return bitcast<f32>((bitcast<u32>(x) & 0x80000000u) | 0x7f800000u); }
  var w = -log((1.0 - x) * (1.0 + x));
  var p: f32;
  if (w < 5.0) {
    w = w - 2.5;
    p = 2.81022636e-08;
    p = 3.43273939e-07 + p * w;
    p = -3.5233877e-06 + p * w;
    p = -4.39150654e-06 + p * w;
    p = 0.00021858087 + p * w;
    p = -0.00125372503 + p * w;
    p = -0.00417768164 + p * w;
    p = 0.246640727 + p * w;
    p = 1.50140941 + p * w;
  } else {
    w = sqrt(w) - 3.0;
    p = -0.000200214257;
    p = 0.000100950558 + p * w;
    p = 0.00134934322 + p * w;
    p = -0.00367342844 + p * w;
    p = 0.00573950773 + p * w;
    p = -0.0076224613 + p * w;
    p = 0.00943887047 + p * w;
    p = 1.00167406 + p * w;
    p = 2.83297682 + p * w;
  }
  return p * x;
}
