import { describe, it, expect, expectTypeOf } from 'vitest';
import fc from 'fast-check';
import {
  tree,
  flatten,
  unflatten,
  leaves,
  structure,
  map,
  leavesWithPath,
  assertSameStructure,
  registerLeafClass,
  isDefaultLeaf,
  TreeDef,
  type MapLeaves,
} from '../src/tree/tree';
import { GradGpuError, TreeError, TreeStructureError } from '../src/errors';

/** Stand-in for NDArray; `#brand` keeps it nominal so the type registration below matches nothing else. */
class Fake {
  #brand = 0;
  constructor(readonly v: number) {}
}
class FakeChild extends Fake {}
class Unregistered {
  #u = 0;
}
registerLeafClass(Fake);

declare module '../src/tree/tree' {
  interface LeafTypes {
    fake: Fake;
  }
}

const f = (v: number) => new Fake(v);
const err = (fn: () => unknown): Error => {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a throw');
};

describe('flatten / structure', () => {
  it('flattens object keys in sorted order, independent of insertion order', () => {
    expect(leaves({ b: 1, a: 2, c: 3 })).toEqual([2, 1, 3]);
    const ab = structure({ a: 1, b: 2 }),
      ba = structure({ b: 1, a: 2 });
    expect(ab.equals(ba)).toBe(true);
    expect(ba.toString()).toBe('{a: *, b: *}');
  });

  it('handles nested objects, arrays and tuples', () => {
    const x = f(7);
    const t = { w: [1, { z: x, y: [2, 3] }], a: { q: 4 } };
    const [ls, td] = flatten(t);
    expect(ls).toEqual([4, 1, 2, 3, x]);
    expect(ls[4]).toBe(x);
    expect(td.numLeaves).toBe(5);
    expect(td.toString()).toBe('{a: {q: *}, w: [*, {y: [*, *], z: *}]}');
    expect(unflatten(td, ls)).toEqual(t);
  });

  it('treats numbers and registered classes (and subclasses) as leaves', () => {
    const c = new FakeChild(1);
    expect(leaves([c, NaN, -0])).toEqual([c, NaN, -0]);
    expect(isDefaultLeaf(c)).toBe(true);
    expect(isDefaultLeaf(new Unregistered())).toBe(false);
    expect(isDefaultLeaf('1')).toBe(false);
    const [ls, td] = flatten(3);
    expect(ls).toEqual([3]);
    expect(td.toString()).toBe('*');
    expect(unflatten(td, [f(1)])).toEqual(f(1));
  });

  it('treats null and undefined as empty subtrees that unflatten to themselves', () => {
    const t = { a: null, b: [undefined, 1], c: undefined };
    const [ls, td] = flatten(t);
    expect(ls).toEqual([1]);
    expect(td.toString()).toBe('{a: null, b: [undefined, *], c: undefined}');
    const back = unflatten(td, [5]) as Record<string, unknown>;
    expect(back).toEqual({ a: null, b: [undefined, 5], c: undefined });
    expect(back.a).toBe(null);
    expect('c' in back && back.c === undefined).toBe(true);
    expect(flatten(null)[0]).toEqual([]);
    expect(unflatten(structure(null), [])).toBe(null);
    expect(unflatten(structure(undefined), [])).toBe(undefined);
  });

  it('distinguishes structures that differ only in container kind, length, keys or null-ness', () => {
    const differ = (a: unknown, b: unknown) => expect(structure(a).equals(structure(b))).toBe(false);
    differ([1, 2], { 0: 1, 1: 2 });
    differ([1, 2], [1, 2, 3]);
    differ([1, 2], [[1], 2]);
    differ({ a: 1 }, { a: 1, b: 2 });
    differ({ a: 1 }, { b: 1 });
    differ({ a: null }, { a: undefined });
    differ({ a: undefined }, {});
    differ({ a: 1 }, { a: null });
    differ([], {});
    expect(structure({ a: [1, f(2)] }).equals(structure({ a: [f(3), 4] }))).toBe(true);
  });

  it('supports a custom isLeaf (function or options) checked before containers', () => {
    const t = {
      p: [1, 2],
      q: [
        [3, 4],
        [5, 6],
      ],
    };
    const pair = (x: unknown) => Array.isArray(x) && x.length === 2 && x.every((v) => typeof v === 'number');
    expect(leaves(t, pair)).toEqual([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    expect(leaves(t, { isLeaf: pair })).toEqual([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    expect(leaves({ s: 'hi' }, (x) => typeof x === 'string')).toEqual(['hi']);
    expect(structure(t, pair).toString()).toBe('{p: *, q: [*, *]}');
  });

  it('keeps a "__proto__" key as an own key instead of setting the prototype', () => {
    const t = JSON.parse('{"__proto__": {"x": 1}, "a": 2}');
    const [ls, td] = flatten(t);
    expect(ls).toEqual([1, 2]);
    const back = unflatten(td, [3, 4]) as object;
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(back, '__proto__')?.value).toEqual({ x: 3 });
    expect(td.toString()).toBe('{__proto__: {x: *}, a: *}');
  });

  it('accepts null-prototype objects as plain objects', () => {
    const t = Object.assign(Object.create(null), { b: 1, a: 2 });
    expect(leaves(t)).toEqual([2, 1]);
  });

  it('exposes everything on the tree namespace', () => {
    expect(tree.flatten).toBe(flatten);
    expect(tree.map).toBe(map);
    expect(tree.unflatten).toBe(unflatten);
    expect(tree.assertSameStructure).toBe(assertSameStructure);
    expect(tree.leavesWithPath).toBe(leavesWithPath);
    expect(tree.registerLeafClass).toBe(registerLeafClass);
  });
});

describe('invalid leaves', () => {
  const params = (w: unknown) => ({ params: { layer1: { w, b: 1 } } });
  const msg = (x: unknown, rootName?: string) => {
    const e = err(() => flatten(x, { rootName }));
    expect(e).toBeInstanceOf(TreeError);
    expect(e).not.toBeInstanceOf(TreeStructureError);
    return e.message;
  };
  const EXPECTED = '(expected an NDArray, a number, a plain object, an array, or null)';

  it('names the path and the type', () => {
    expect(msg(params('x'))).toBe(`tree.params.layer1.w: unsupported pytree leaf of type string ${EXPECTED}`);
    expect(msg({ layer1: { w: 'x' } }, 'params')).toBe(`params.layer1.w: unsupported pytree leaf of type string ${EXPECTED}`);
    expect(msg(params(new Map()))).toBe(`tree.params.layer1.w: unsupported pytree leaf of type Map ${EXPECTED}`);
    expect(msg({ xs: [1, new Unregistered()] })).toBe(`tree.xs[1]: unsupported pytree leaf of type Unregistered ${EXPECTED}`);
    expect(msg({ 'a b': new Set() })).toBe(`tree["a b"]: unsupported pytree leaf of type Set ${EXPECTED}`);
    expect(msg(true)).toBe(`tree: unsupported pytree leaf of type boolean ${EXPECTED}`);
    expect(msg([() => 1])).toMatch(/^tree\[0\]: unsupported pytree leaf of type function /);
    expect(msg([1n])).toMatch(/^tree\[0\]: unsupported pytree leaf of type bigint /);
  });

  it('explains that typed arrays must be wrapped', () => {
    expect(msg({ w: new Float32Array(2) })).toBe(
      'tree.w: unsupported pytree leaf of type Float32Array (typed arrays are not pytree leaves; wrap with array(...))',
    );
  });

  it('rejects cyclic trees with a TreeError instead of overflowing the stack', () => {
    const a: Record<string, unknown> = {};
    a.self = a;
    expect(() => flatten(a)).toThrow(/cyclic/);
    expect(() => flatten(a)).toThrow(TreeError);
  });

  it('reports invalid leaves in the other trees of map / assertSameStructure with the tree name', () => {
    expect(() => map((x: number) => x, { w: 1 }, { w: 'no' })).toThrow(
      `tree.w: unsupported pytree leaf of type string ${EXPECTED} in the second tree`,
    );
    expect(() => assertSameStructure({ w: 1 }, { w: 'no' }, { names: ['params', 'grads'] })).toThrow(/ in grads$/);
  });
});

describe('unflatten', () => {
  it('throws on a leaf-count mismatch', () => {
    const td = structure({ a: 1, b: [2, 3], c: f(4) });
    const e = err(() => unflatten(td, [1, 2, 3]));
    expect(e).toBeInstanceOf(TreeError);
    expect(e.message).toBe('unflatten: treedef expects 4 leaves, got 3');
    expect(() => unflatten(td, [1, 2, 3, 4, 5])).toThrow('unflatten: treedef expects 4 leaves, got 5');
    expect(unflatten(td, ['a', 'b', 'c', 'd'])).toEqual({ a: 'a', b: ['b', 'c'], c: 'd' });
  });
});

describe('paths', () => {
  it('lists leaf paths in flatten order', () => {
    const t = { layer1: { w: 1, b: 2 }, xs: [3, { y: 4 }], 'a-b': 5, x: [null, 6, { y: 7 }], n: null };
    expect(structure(t).paths()).toEqual(['["a-b"]', 'layer1.b', 'layer1.w', 'x[1]', 'x[2].y', 'xs[0]', 'xs[1].y']);
    expect(structure([1, [2]]).paths()).toEqual(['[0]', '[1][0]']);
    expect(structure(1).paths()).toEqual(['']);
    expect(leavesWithPath({ b: [f(1)], a: 2 })).toEqual([
      ['a', 2],
      ['b[0]', f(1)],
    ]);
  });
});

describe('map', () => {
  it('maps one tree, keeping structure and null subtrees, without mutating it', () => {
    const t = { b: [1, f(2)], a: null, c: { d: 3 } };
    const out = map((x: number | Fake) => (x instanceof Fake ? x.v * 10 : x + 1), t);
    expect(out).toEqual({ a: null, b: [2, 20], c: { d: 4 } });
    expect(t).toEqual({ b: [1, f(2)], a: null, c: { d: 3 } });
  });

  it('passes the aligned leaves of every tree', () => {
    const calls: number[][] = [];
    const out = map(
      (a: number, b: number, c: number) => {
        calls.push([a, b, c]);
        return a + b * c;
      },
      { x: 1, y: [2] },
      { y: [20], x: 10 },
      { x: 100, y: [200] },
    );
    expect(out).toEqual({ x: 1001, y: [4002] });
    expect(calls).toEqual([
      [1, 10, 100],
      [2, 20, 200],
    ]);
  });

  it('names the first differing path on a structure mismatch', () => {
    const mismatch = (...trees: unknown[]) => {
      const e = err(() => map(() => 0, trees[0], ...trees.slice(1)));
      expect(e).toBeInstanceOf(TreeStructureError);
      return e.message;
    };
    const p = { params: { layer1: { w: 1, b: 2 } } };
    expect(mismatch(p, { params: { layer1: { b: 2 } } })).toBe('tree.params.layer1.w: missing in the second tree');
    expect(mismatch(p, { params: { layer1: { b: 2, w: 1, v: 0 } } })).toBe('tree.params.layer1.v: missing in the first tree');
    expect(mismatch(p, { params: { layer1: [1, 2] } })).toBe(
      'tree.params.layer1: expected an object with keys [b, w], got an array of length 2 in the second tree',
    );
    expect(mismatch(p, p, { params: { layer1: { b: 2, w: [1] } } })).toBe(
      'tree.params.layer1.w: expected a leaf, got an array of length 1 in the third tree',
    );
    expect(mismatch([1, [2, 3]], [1, [2]])).toBe('tree[1]: expected an array of length 2, got an array of length 1 in the second tree');
    expect(mismatch({ a: null }, { a: undefined })).toBe('tree.a: expected null, got undefined in the second tree');
    expect(mismatch({ a: 1 }, { a: null })).toBe('tree.a: expected a leaf, got null in the second tree');
    expect(mismatch([1], { 0: 1 })).toBe('tree: expected an array of length 1, got an object with keys [0] in the second tree');
    // the first difference in flatten order wins
    expect(mismatch({ a: [1], b: [1] }, { a: [1, 2], b: 2 })).toMatch(/^tree\.a: /);
  });
});

describe('assertSameStructure', () => {
  it('passes for equal structures regardless of leaf values and key order', () => {
    expect(() => assertSameStructure({ w: f(1), b: [1, null] }, { b: [f(2), null], w: 3 })).not.toThrow();
  });

  it('uses rootName and names in its messages', () => {
    const grads = { layer1: { w: 1, b: 2 } },
      params = { layer1: { b: 2 } };
    const e = err(() => assertSameStructure(grads, params, { rootName: 'grads', names: ['grads', 'params'] }));
    expect(e).toBeInstanceOf(TreeStructureError);
    expect(e).toBeInstanceOf(TreeError);
    expect(e).toBeInstanceOf(GradGpuError);
    expect(e.name).toBe('TreeStructureError');
    expect(e.message).toBe('grads.layer1.w: missing in params');
    expect(() => assertSameStructure(params, grads)).toThrow('tree.layer1.w: missing in the first tree');
    expect(() => assertSameStructure({ a: [1] }, { a: [1, 2] }, { rootName: 'p' })).toThrow(
      'p.a: expected an array of length 1, got an array of length 2 in the second tree',
    );
  });
});

// ---- property-based ----------------------------------------------------------

const { node: arbTree } = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, tie('leaf'), tie('none'), tie('arr'), tie('obj')),
  leaf: fc.oneof(fc.double(), fc.integer().map(f)),
  none: fc.constantFrom(null, undefined),
  arr: fc.array(tie('node'), { maxLength: 4 }),
  obj: fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('__proto__', 'a b', '', 'constructor')), tie('node'), { maxKeys: 4 }),
}));

/** Same tree with every object's keys inserted in reverse order. */
const reversedKeys = (t: unknown): unknown => {
  if (Array.isArray(t)) return t.map(reversedKeys);
  if (t === null || typeof t !== 'object' || t instanceof Fake) return t;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(t).reverse()) {
    Object.defineProperty(out, k, { value: reversedKeys((t as Record<string, unknown>)[k]), enumerable: true, writable: true, configurable: true });
  }
  return out;
};

describe('properties', () => {
  it('flatten -> unflatten roundtrips and preserves leaf identity', () => {
    fc.assert(
      fc.property(arbTree, (t) => {
        const [ls, td] = flatten(t);
        const back = unflatten(td, ls);
        expect(back).toEqual(t);
        expect(leaves(back)).toEqual(ls);
        leaves(back).forEach((x, i) => expect(x).toBe(ls[i]));
        expect(td.numLeaves).toBe(ls.length);
        expect(td.paths()).toHaveLength(ls.length);
      }),
    );
  });

  it('structure equality is reflexive and ignores key insertion order', () => {
    fc.assert(
      fc.property(arbTree, (t) => {
        expect(structure(t).equals(structure(t))).toBe(true);
        const r = reversedKeys(t);
        expect(structure(r).equals(structure(t))).toBe(true);
        expect(leaves(r)).toEqual(leaves(t));
      }),
    );
  });

  it('equals agrees with toString and with assertSameStructure', () => {
    fc.assert(
      fc.property(arbTree, arbTree, (a, b) => {
        const eq = structure(a).equals(structure(b));
        expect(eq).toBe(structure(a).toString() === structure(b).toString());
        if (eq) expect(() => assertSameStructure(a, b)).not.toThrow();
        else expect(() => assertSameStructure(a, b)).toThrow(TreeStructureError);
      }),
    );
  });

  it('map(identity) roundtrips and multi-tree map aligns leaves', () => {
    fc.assert(
      fc.property(arbTree, (t) => {
        expect(map((x) => x, t)).toEqual(t);
        const idx = map(() => 0, t);
        let i = 0;
        const numbered = map(() => i++, idx);
        expect(
          leaves(
            map((x, n) => [x, n], t, numbered),
            (x) => Array.isArray(x) && x.length === 2 && typeof x[1] === 'number',
          ),
        ).toEqual(leaves(t).map((x, n) => [x, n]));
      }),
    );
  });
});

// ---- types (checked by tsc; the runtime calls are no-ops) -------------------------

describe('types', () => {
  class Y {
    #y = 0;
  }
  it('MapLeaves replaces leaves through objects, arrays and tuples', () => {
    expectTypeOf<MapLeaves<{ w: Fake; b: [Fake, number] }, Y>>().toEqualTypeOf<{ w: Y; b: [Y, Y] }>();
    expectTypeOf<MapLeaves<{ a?: Fake; n: Fake | null; xs: readonly number[] }, Y>>().toEqualTypeOf<{ a?: Y; n: Y | null; xs: readonly Y[] }>();
    expectTypeOf<MapLeaves<{ u: undefined; s: { t: [] } }, Y>>().toEqualTypeOf<{ u: undefined; s: { t: [] } }>();
    expectTypeOf<MapLeaves<{ w: Unregistered }, Y, Unregistered>>().toEqualTypeOf<{ w: Y }>();
    expectTypeOf<MapLeaves<{ w: string }, Y>>().toEqualTypeOf<{ w: never }>();
    expectTypeOf<MapLeaves<unknown, Y>>().toEqualTypeOf<unknown>();
    expectTypeOf<MapLeaves<{ u: unknown }, Y>>().toEqualTypeOf<{ u: unknown }>();
  });
  it('unflatten and map return the mapped type', () => {
    const params = { w: f(1), b: [f(2), 3] as [Fake, number] };
    expectTypeOf(map((x) => String(x), params)).toEqualTypeOf<{ w: string; b: [string, string] }>();
    expectTypeOf(unflatten(structure(params), [true, false, true])).toEqualTypeOf<{ w: boolean; b: [boolean, boolean] }>();
    expectTypeOf(structure(params)).toEqualTypeOf<TreeDef<typeof params>>();
    expectTypeOf(unflatten(structure(params as unknown), [1, 2, 3])).toEqualTypeOf<unknown>();
  });
});
