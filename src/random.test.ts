import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createRng } from "./random.ts";

describe("seeded random numbers", () => {
  it("repeats a stream for the same seed and label", () => {
    const a = createRng(42, "x");
    const b = createRng(42, "x");
    for (let i = 0; i < 100; i++) assert.equal(a.next(), b.next());
  });

  it("gives different streams for different seeds and labels", () => {
    const first = (seed: number, label: string) => createRng(seed, label).next();
    assert.notEqual(first(1, "x"), first(2, "x"));
    assert.notEqual(first(1, "x"), first(1, "y"));
    assert.notEqual(first(0, ""), first(2 ** 32, ""));
  });

  it("draws uniformly in [0, 1) and [0, n)", () => {
    const rng = createRng(3);
    const buckets = new Array(10).fill(0);
    for (let i = 0; i < 100_000; i++) {
      const u = rng.next();
      assert.ok(u >= 0 && u < 1);
      buckets[rng.int(10)]++;
    }
    for (const b of buckets) assert.ok(Math.abs(b - 10_000) < 500, `bucket ${b}`);
  });

  it("rejects a seed that is not a safe integer", () => {
    assert.throws(() => createRng(1.5), RangeError);
  });
});
