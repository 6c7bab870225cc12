// A failed optimizer update or applyUpdates consumes nothing: every check runs
// before anything is donated, so grads, state and params read back exactly as
// they were and the same call succeeds once the fault is gone. One table of
// faults, crossed with every optimizer it applies to.
import { describe, expect, it } from 'vitest';
import {
  adam,
  adamw,
  applyUpdates,
  array,
  chain,
  clipByGlobalNorm,
  DisposedArrayError,
  NDArray,
  sgd,
  ShapeError,
  tree,
  TreeStructureError,
  ValueError,
  type GradientTransformation,
} from '../src/index';

type P = { w: NDArray; b: NDArray };
const mk = (): P => ({ w: array([0.5, -0.25]), b: array([0.1]) });
const grads = (): P => ({ w: array([0.2, -0.4]), b: array([0.3]) });

const optimizers: Record<string, (lr: number | ((t: number) => number)) => GradientTransformation<any>> = {
  sgd: (lr) => sgd(lr),
  'sgd momentum': (lr) => sgd(lr, { momentum: 0.9 }),
  adam: (lr) => adam(lr),
  adamw: (lr) => adamw(lr, { weightDecay: 0.01 }),
  'chain(clipByGlobalNorm, adamw)': (lr) => chain(clipByGlobalNorm(1), adamw(lr)),
};

interface Fault {
  name: string;
  /** The optimizer's learning rate under this fault (default 0.1). */
  lr?: number | ((t: number) => number);
  /** The arguments of the failing call, built from good ones. */
  args?: (g: P, params: P) => { grads: unknown; params?: unknown };
  error: new (...a: never[]) => Error;
  message: RegExp;
  /** Only for optimizers that read params (weight decay). */
  needsParams?: boolean;
}

const faults: Fault[] = [
  { name: 'no params for weight decay', args: (g) => ({ grads: g }), error: ValueError, message: /needs params/, needsParams: true },
  {
    name: 'a schedule that returns NaN',
    lr: (t) => (t === 0 ? 0.1 : NaN),
    error: ValueError,
    message: /learning rate must be a finite number; got NaN at step 1/,
  },
  {
    name: 'a schedule that throws',
    lr: (t) => {
      if (t > 0) throw new RangeError('schedule broke');
      return 0.1;
    },
    error: RangeError,
    message: /schedule broke/,
  },
  {
    name: 'grads of another shape',
    args: (g, p) => ({ grads: { w: array([1, 2, 3]), b: g.b }, params: p }),
    error: ShapeError,
    message: /grads\.w has shape \[3\].*\[2\]/,
  },
  { name: 'grads of another structure', args: (g, p) => ({ grads: { w: g.w }, params: p }), error: TreeStructureError, message: /b/ },
  {
    name: 'a disposed grad',
    args: (g, p) => {
      const w = array([9, 9]);
      w.dispose();
      return { grads: { w, b: g.b }, params: p };
    },
    error: DisposedArrayError,
    message: /grads\.w: .*disposed/,
  },
];

const values = async (t: unknown) =>
  Promise.all(
    tree
      .leaves(t)
      .filter((l): l is NDArray => l instanceof NDArray)
      .map(async (l) => Array.from(await l.data())),
  );

describe('a failed update consumes nothing', () => {
  for (const [optName, make] of Object.entries(optimizers)) {
    for (const f of faults) {
      if (f.needsParams && !/adamw/.test(optName)) continue;
      it(`${optName}: ${f.name}`, async () => {
        const params = mk();
        const opt = make(f.lr ?? 0.1);
        let state = opt.init(params);
        // One good step first, so the state holds real moments.
        const [u0, s0] = opt.update(grads(), state, params);
        state = s0;
        const p1 = applyUpdates(params, u0) as P;
        const g = grads();
        const before = { g: await values(g), state: await values(state), params: await values(p1) };
        const { grads: bad, params: badParams } = f.args ? f.args(g, p1) : { grads: g, params: p1 };
        let thrown: unknown;
        try {
          opt.update(bad as P, state, badParams);
        } catch (e) {
          thrown = e;
        }
        expect(thrown).toBeInstanceOf(f.error);
        expect(String((thrown as Error).message)).toMatch(f.message);
        // Nothing was consumed: every array reads back as it was.
        expect(await values(g)).toEqual(before.g);
        expect(await values(state)).toEqual(before.state);
        expect(await values(p1)).toEqual(before.params);
        if (f.lr !== undefined) return; // the optimizer itself is broken; the arrays are what matters
        // And the same call succeeds with good arguments.
        const [u, s] = opt.update(g, state, p1);
        const p2 = applyUpdates(p1, u) as P;
        expect((await p2.w.data()).every(Number.isFinite)).toBe(true);
        void s;
      });
    }
  }
});

describe('constructors and applyUpdates check before anything moves', () => {
  it('a learning rate, momentum, decay or norm that is not a finite number is a ValueError at construction', () => {
    expect(() => sgd(NaN)).toThrow(ValueError);
    expect(() => sgd(0.1, { momentum: Infinity })).toThrow(ValueError);
    expect(() => adam(0.1, { b1: NaN })).toThrow(/adam: b1 must be a finite number/);
    expect(() => adamw(0.1, { weightDecay: NaN })).toThrow(ValueError);
    expect(() => clipByGlobalNorm(0)).toThrow(/positive/);
  });

  it('a state that is not what init returned is a ValueError, not a TypeError', () => {
    const opt = adam(0.1);
    const params = mk();
    expect(() => opt.update(grads(), undefined as never, params)).toThrow(ValueError);
    expect(() => opt.update(grads(), [{}, {}] as never, params)).toThrow(/state must be the one init\(\)/);
  });

  it('applyUpdates with updates of another shape throws ShapeError and keeps params and updates', async () => {
    const params = mk();
    const updates = { w: array([1, 2, 3]), b: array([1]) };
    expect(() => applyUpdates(params, updates)).toThrow(/updates\.w has shape \[3\], but params\.w has shape \[2\]/);
    expect(Array.from(await params.w.data())).toEqual([0.5, -0.25]);
    expect(Array.from(await updates.w.data())).toEqual([1, 2, 3]);
  });
});
