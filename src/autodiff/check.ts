// checkGrads, in the spirit of jax.test_util.check_grads: compare reverse-mode
// directional derivatives <grad f(x), v> with central finite differences
// (f(x + eps v) - f(x - eps v)) / 2 eps along random directions v, and,
// for order 2, do the same for x -> <grad f(x), v> (so grad of grad is checked).

import { GradError } from '../errors';
import { NDArray } from '../array/ndarray';
import { add, array, mul, scale, sum } from '../array/ops';
import { flatten, unflatten } from '../tree/tree';
import { grad } from './grad';

/** Options of checkGrads: order, finite-difference step, tolerances, seed. */
export interface CheckGradsOptions {
  order?: 1 | 2;
  eps?: number;
  atol?: number;
  rtol?: number;
  /** Random directions tried per order (default 3). */
  directions?: number;
  seed?: number;
  /** Which arguments to check (default: all). */
  argnums?: number[];
}

export class GradCheckError extends GradError {}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any argument list (pytrees)
type ScalarFn = (...args: any[]) => NDArray;

function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

async function scalar(a: NDArray): Promise<number> {
  return (await a.data())[0]!;
}

/** Throws GradCheckError when reverse mode and finite differences disagree; returns the worst relative error. */
export async function checkGrads(f: ScalarFn, args: unknown[], opts: CheckGradsOptions = {}): Promise<number> {
  const { order = 1, eps = 1e-3, atol = 1e-3, rtol = 1e-2, directions = 3, seed = 0 } = opts;
  const argnums = opts.argnums ?? args.map((_, i) => i).filter((i) => flatten(args[i])[0].some((l) => l instanceof NDArray));
  const rand = rng(seed + 12345);
  let worst = 0;
  for (let k = 0; k < directions; k++) {
    // One random direction per differentiated leaf (normal, via Box-Muller).
    const dirs = argnums.map((i) => {
      const [leaves, def] = flatten(args[i]);
      return unflatten(
        def,
        leaves.map((l) => {
          const shape = l instanceof NDArray ? l.shape : [];
          const n = shape.reduce((a, b) => a * b, 1);
          const v = new Float32Array(n).map(() => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand()));
          return array(v, shape);
        }),
      );
    });
    const along = (t: number) =>
      args.map((a, i) => {
        const j = argnums.indexOf(i);
        if (j < 0) return a;
        const [leaves, def] = flatten(a);
        const [dl] = flatten(dirs[j]);
        return unflatten(
          def,
          leaves.map((l, m) => add(l instanceof NDArray ? l : array(l as number), scale(dl[m] as NDArray, t))),
        );
      });
    const directional = (g: unknown[]): NDArray => {
      let acc: NDArray | null = null;
      g.forEach((gt, j) => {
        const [gl] = flatten(gt);
        const [dl] = flatten(dirs[j]);
        gl.forEach((x, m) => {
          const term = sum(mul(x as NDArray, dl[m] as NDArray));
          acc = acc ? add(acc, term) : term;
        });
      });
      return acc!;
    };
    const gradAll = (h: ScalarFn) => grad(h, { argnums });
    const check = async (h: ScalarFn, what: string) => {
      const analytic = await scalar(directional(gradAll(h)(...args) as unknown[]));
      const numeric = ((await scalar(h(...along(eps)))) - (await scalar(h(...along(-eps))))) / (2 * eps);
      const err = Math.abs(analytic - numeric);
      const rel = err / Math.max(Math.abs(numeric), Math.abs(analytic), 1e-30);
      worst = Math.max(worst, Math.min(rel, err));
      if (err > atol + rtol * Math.abs(numeric)) {
        throw new GradCheckError(
          `checkGrads (${what}): reverse mode gives ${analytic}, finite differences give ${numeric} along random direction ${k} (|diff| ${err.toExponential(2)} > atol ${atol} + rtol ${rtol} * |fd|)`,
        );
      }
    };
    await check(f, 'order 1');
    if (order === 2) {
      // g(x) = <grad f(x), v> is scalar; check its gradient the same way.
      const g: ScalarFn = (...xs) => directional(gradAll(f)(...xs) as unknown[]);
      await check(g, 'order 2');
    }
  }
  return worst;
}
