// Float64 helpers for the autodiff tests (test/grad.test.ts), independent of
// the library: no imports from src/. Row-major Float64Arrays throughout.
//
// fdGrad64 differentiates a float64 JS function numerically, element by
// element, with a Richardson-extrapolated central difference (truncation
// O(h^4), rounding ~1e-16 |f| / h): a reference accurate to ~1e-10 for the
// small smooth functions it is used on, so disagreements of float32 reverse
// mode with it beyond float32 rounding are bugs, not noise.

/** float32 unit roundoff. */
export const U = 2 ** -24;

/** A small deterministic PRNG (mulberry32) so data follows from a fast-check seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n values uniform in [lo, hi), rounded to float32 (so GPU and reference see the same numbers). */
export function uniform(r: () => number, n: number, lo = -1, hi = 1): Float64Array {
  return Float64Array.from({ length: n }, () => Math.fround(lo + (hi - lo) * r()));
}

/** n values with |v| in [lo, hi) and a random sign (away from 0: kinks, poles). */
export function awayFromZero(r: () => number, n: number, lo: number, hi: number): Float64Array {
  return Float64Array.from({ length: n }, () => Math.fround((r() < 0.5 ? -1 : 1) * (lo + (hi - lo) * r())));
}

export const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Numerical gradient of f with respect to every element of every argument. */
export function fdGrad64(f: (xs: Float64Array[]) => number, xs: Float64Array[], h = 1e-3): Float64Array[] {
  return xs.map((x, a) => {
    const g = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const at = (t: number) => {
        const ys = xs.map((y) => y.slice());
        ys[a]![i] = x[i]! + t;
        return f(ys);
      };
      const d = (s: number) => (at(s) - at(-s)) / (2 * s);
      g[i] = (4 * d(h / 2) - d(h)) / 3;
    }
    return g;
  });
}

/** C (m, n) = A (m, k) @ B (k, n). */
export function matmul64(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const v = a[i * k + p]!;
      if (v === 0) continue;
      for (let j = 0; j < n; j++) c[i * n + j] += v * b[p * n + j]!;
    }
  }
  return c;
}

/** Transpose of a (m, n) matrix. */
export function transpose64(a: ArrayLike<number>, m: number, n: number): Float64Array {
  const t = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[j * m + i] = a[i * n + j]!;
  return t;
}

/**
 * Throws (with the index, both values and the tolerance) unless
 * |got[i] - want[i]| <= tol[i] for every i. tol may be a number or per element.
 */
export function expectClose64(got: ArrayLike<number>, want: ArrayLike<number>, tol: number | ArrayLike<number>, label: string): void {
  if (got.length !== want.length) throw new Error(`${label}: length ${got.length}, expected ${want.length}`);
  let worst = -1;
  let worstRatio = 0;
  for (let i = 0; i < want.length; i++) {
    const t = typeof tol === 'number' ? tol : tol[i]!;
    const err = Math.abs(got[i]! - want[i]!);
    const ratio = err / t;
    if (!(err <= t) && !(ratio <= worstRatio)) {
      worst = i;
      worstRatio = Number.isNaN(ratio) ? Infinity : ratio;
    }
  }
  if (worst >= 0) {
    const t = typeof tol === 'number' ? tol : tol[worst]!;
    throw new Error(
      `${label}: element ${worst} is ${got[worst]}, expected ${want[worst]} ` +
        `(|diff| ${Math.abs(got[worst]! - want[worst]!).toExponential(3)} > tol ${t.toExponential(3)})`,
    );
  }
}

/** Per-element tolerance rel * max(|want|_inf, floor): for composite functions with no simple error bound. */
export function infTol(want: ArrayLike<number>, rel: number, floor = 1): number {
  let m = floor;
  for (let i = 0; i < want.length; i++) m = Math.max(m, Math.abs(want[i]!));
  return rel * m;
}

/** erf in float64 to about 1e-13, independently of the library's: 2/sqrt(pi) times the integral of exp(-t^2) from 0 to x, by Simpson's rule. */
export function erf64(x: number): number {
  if (Number.isNaN(x)) return x;
  const z = Math.min(Math.abs(x), 7);
  const n = 2000;
  const h = z / n;
  let s = 1 + Math.exp(-z * z);
  for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * Math.exp(-((i * h) ** 2));
  return Math.sign(x) * ((s * h) / 3) * (2 / Math.sqrt(Math.PI));
}

/** erf^-1 in float64 by bisection on erf64. */
export function erfInv64(x: number): number {
  if (Number.isNaN(x) || Math.abs(x) > 1) return NaN;
  let [lo, hi] = [-7, 7];
  for (let k = 0; k < 64; k++) {
    const mid = (lo + hi) / 2;
    if (erf64(mid) < x) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}
