// One table of bad inputs: each must throw the named error class with a
// message that says what to fix, and leave every existing array and pytree
// exactly as it was.
import { describe, expect, it } from 'vitest';
import {
  add,
  adam,
  applyUpdates,
  array,
  DisposedArrayError,
  grad,
  GradError,
  gradOverFlatParams,
  IndexError,
  matmul,
  reshape,
  ShapeError,
  slice,
  sum,
  TreeError,
  TreeStructureError,
  ValueError,
  valueAndGrad,
  zeros,
  NDArray,
  transpose,
  mean,
  concatenate,
  zerosLike,
  onesLike,
  pow,
  ConcretizationError,
} from '../src/index';

const w = array([1, 2]);
const b = array([0.5]);
const x = array([
  [1, -1],
  [2, 0],
]);
const params = { w, b };
const loss = (p: { w: NDArray; b: NDArray }, xs: NDArray) => sum(add(matmul(xs, p.w), p.b));
const disposed = array([1, 2, 3]);
disposed.dispose();

type Case = [string, () => unknown, new (...a: any[]) => Error, RegExp];
const cases: Case[] = [
  ['non-scalar loss', () => grad((p: NDArray) => add(p, 1))(w), GradError, /scalar output; got shape \[2\]/],
  ['loss of shape [1]', () => grad((p: NDArray) => reshape(sum(p), [1]))(w), GradError, /got shape \[1\]/],
  ['loss is a plain number', () => grad((_p: NDArray) => 3 as never)(w), GradError, /scalar NDArray.*got number/],
  ['loss is not an array', () => grad((_p: NDArray) => 'loss' as never)(w), GradError, /got string/],
  ['argnums out of range', () => grad(loss, { argnums: 2 })(params, x), GradError, /argnums 2 is out of range/],
  ['argnums at a string argument', () => grad((p: NDArray, s: string) => sum(p), { argnums: 1 })(w, 'name'), GradError, /argument 1/],
  ['hasAux without a pair', () => grad((p: NDArray) => sum(p), { hasAux: true })(w), GradError, /pair \[loss, aux\]/],
  ['pytree leaf is a string', () => grad(loss)({ w, b: 'bias' } as never, x), GradError, /\.b: unsupported pytree leaf of type string/],
  ['pytree leaf is a Map', () => grad(loss)({ w, b: new Map() } as never, x), GradError, /\.b: unsupported pytree leaf/],
  ['pytree leaf is a class instance', () => grad(loss)({ w, b: new (class Bias {})() } as never, x), GradError, /\.b: unsupported pytree leaf/],
  ['grads vs params structure', () => applyUpdates(params, { w }), TreeStructureError, /b: missing/],
  ['optimizer state vs params', () => adam(0.1).update({ w, c: b }, adam(0.1).init(params), params), TreeStructureError, /grads\.c|missing/],
  ['matmul inner dimensions', () => matmul(x, array([1, 2, 3])), ShapeError, /inner dimensions differ: \[2, 2\] @ \[3\]/],
  ['add shapes that do not broadcast', () => add(x, array([1, 2, 3])), ShapeError, /\[2, 2\] and \[3\] do not broadcast/],
  ['reshape to a different size', () => reshape(x, [3]), ShapeError, /cannot reshape \[2, 2\]/],
  ['transpose with a bad permutation', () => transpose(x, [0, 0]), ValueError, /not a permutation/],
  ['sum over an axis out of range', () => mean(x, 2), ValueError, /axis 2 is out of range/],
  ['slice out of range', () => slice(w, [1], [5]), IndexError, /\[1:5\] is out of range for axis 0 of size 2/],
  ['negative size', () => zeros([2, -1]), ValueError, /invalid size -1/],
  ['non-finite size', () => zeros([NaN]), ValueError, /invalid size NaN/],
  ['data length vs shape', () => array([1, 2, 3], [2, 2]), ValueError, /3 values do not fill shape \[2, 2\]/],
  ['ragged nested data', () => array([[1, 2], [3]]), ValueError, /ragged/],
  ['use of a disposed array', () => add(disposed, 1), DisposedArrayError, /disposed/],
  ['flatParams of the wrong length', () => gradOverFlatParams([1, 2], [[1, 2, 3]]), ShapeError, /\(4,\).*got shape \[2\]/],
  ['x that is 1-D', () => gradOverFlatParams([1, 2], array([1, 2])), ShapeError, /x must be 2-D/],
  ['x that is 3-D', () => gradOverFlatParams([1, 2], array([[[1]]])), ShapeError, /x must be 2-D/],
  // eslint-disable-next-line no-sparse-arrays -- the hole is the point
  ['a JS array with a hole', () => array([1, , 3] as never), ValueError, /hole \(missing element\) at \[1\]/],
  [
    'a JS array with holes from new Array(n)',
    () => {
      const a = new Array(10);
      a[9] = 5;
      return array(a);
    },
    ValueError,
    /hole.*at \[0\]/,
  ],
  [
    'a hole in a nested row',
    () =>
      array([
        [1, 2],
        // eslint-disable-next-line no-sparse-arrays -- the hole is the point
        [3, ,],
      ] as never),
    ValueError,
    /ragged|hole/,
  ],
  ['a string', () => array('abc' as never), ValueError, /got a string/],
  ['an array-like object', () => array({ length: 3 } as never), ValueError, /an object that is not an array/],
  ['a huge array-like object', () => array({ length: 2 ** 32 } as never), ValueError, /not an array/],
  ['a BigInt64Array', () => array(new BigInt64Array(2) as never), ValueError, /BigInt64Array holds BigInts/],
  ['null where an array is expected (add)', () => add(x, null as never), ValueError, /expected an NDArray or a number; got null/],
  ['null to sum', () => sum(null as never), ValueError, /sum: its argument must be an NDArray; got null/],
  ['a string in concatenate', () => concatenate([w, 'x' as never]), ValueError, /concatenate: element 1 must be an NDArray; got string/],
  ['grad of a number', () => (grad as unknown as (f: unknown) => (a: NDArray) => unknown)(123)(w), GradError, /must be a function/],
  [
    'nesting 10,000 deep',
    () => {
      let d: unknown = 1;
      for (let i = 0; i < 10000; i++) d = [d];
      return array(d as never);
    },
    ShapeError,
    /nested more than 8 deep/,
  ],
  ['a rank-9 array', () => zeros([1, 1, 1, 1, 1, 1, 1, 1, 1]), ShapeError, /rank 9 is over the 8 dimensions/],
  ['a rank-9 reshape', () => reshape(w, [1, 1, 1, 1, 1, 1, 1, 1, 2]), ShapeError, /rank 9/],
  [
    'a Symbol key in a pytree',
    () => grad(loss)({ w, b, [Symbol('extra')]: w } as never, x),
    GradError,
    /Symbol\(extra\) is a Symbol; pytree keys must be strings/,
  ],
  ['zerosLike of a disposed array', () => zerosLike(disposed), DisposedArrayError, /disposed/],
  ['onesLike of a disposed array', () => onesLike(disposed), DisposedArrayError, /disposed/],
  ['grad of an async function', () => grad(async (p: NDArray) => sum(p))(w), GradError, /returned a Promise: the function must be synchronous/],
  [
    'a cyclic aux',
    () => {
      const aux: Record<string, unknown> = {};
      aux.self = aux;
      return valueAndGrad((p: NDArray) => [sum(p), aux] as [NDArray, unknown], { hasAux: true })(w);
    },
    GradError,
    /hasAux: .*deeper than/,
  ],
  [
    'an aux holding a Date is fine (a leaf, as in JAX)',
    () => {
      const r = valueAndGrad((p: NDArray) => [sum(p), { when: new Date(0) }] as [NDArray, unknown], { hasAux: true })(w);
      if ((r[0][1] as { when: Date }).when.getTime() !== 0) throw new Error('aux lost');
      throw new ValueError('ok: no error');
    },
    ValueError,
    /ok: no error/,
  ],
  ['pow with an array exponent', () => pow(w, array(2) as never), ValueError, /exponent must be a number; got an NDArray/],
  [
    'reading values inside a traced function',
    () => {
      let read: Promise<unknown> | undefined;
      grad((p: NDArray) => {
        read = p.data();
        return sum(p);
      })(w);
      return read;
    },
    ConcretizationError,
    /inside a function being differentiated/,
  ],
];

describe('bad input table', () => {
  it.each(cases)('%s', async (_name, fn, cls, message) => {
    const before = [await w.data(), await b.data(), await x.data()].map((a) => Array.from(a));
    let error: unknown;
    try {
      const r = fn();
      if (r instanceof NDArray) await r.data();
      if (r instanceof Promise) await r;
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(cls);
    expect((error as Error).message).toMatch(message);
    const after = [await w.data(), await b.data(), await x.data()].map((a) => Array.from(a));
    expect(after).toEqual(before);
    // The inputs are still usable: a gradient over them is correct afterwards.
    const [l, g] = valueAndGrad(loss)(params, x);
    expect(await l.item()).toBeCloseTo(-1 + 2 + 2 * 0.5, 5);
    expect(Array.from(await g.w.data())).toEqual([3, -1]);
  });

  it('TreeError is what flatten throws for a bad leaf outside grad', () => {
    expect(() => applyUpdates({ w: 'x' } as never, { w })).toThrow(TreeError);
  });
});
