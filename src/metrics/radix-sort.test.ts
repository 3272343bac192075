import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createRng } from "../random.ts";
import { sortFloat64 } from "./radix-sort.ts";

const same = (a: Float64Array, b: Float64Array) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.ok(Object.is(a[i], b[i]), `at ${i}: ${a[i]} vs ${b[i]}`);
};

describe("sortFloat64", () => {
  it("orders like the built-in sort: negatives, ±0, infinities, duplicates, subnormals", () => {
    const rng = createRng(7, "radix");
    const specials = [0, -0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 5e-324, -5e-324, 1, -1];
    const n = 200_000;
    const a = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const r = rng.next();
      a[i] = i % 50 === 0 ? specials[i % specials.length]! : r < 0.3 ? Math.round(r * 100) : (r - 0.4) * 1e6;
    }
    const expected = a.slice().sort();
    sortFloat64(a);
    same(a, expected);
  });

  it("sorts a view in place without touching the rest of its buffer, and falls back on NaN", () => {
    const buf = new Float64Array(100_002);
    buf[0] = 42;
    buf[100_001] = 43;
    const view = buf.subarray(1, 100_001);
    for (let i = 0; i < view.length; i++) view[i] = (i * 7919) % 100_000;
    sortFloat64(view);
    for (let i = 1; i < view.length; i++) assert.ok(view[i - 1]! <= view[i]!);
    assert.equal(buf[0], 42);
    assert.equal(buf[100_001], 43);
    const withNaN = Float64Array.from({ length: 70_000 }, (_, i) =>
      i === 500 ? Number.NaN : i % 3 ? -i : i,
    );
    const expected = withNaN.slice().sort();
    sortFloat64(withNaN);
    same(withNaN, expected);
    assert.ok(Number.isNaN(withNaN[69_999]));
  });
});
