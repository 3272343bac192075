import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createRng } from "../random.ts";
import { formatFixed2 } from "./format.ts";
import { distributionStats, GrowableFloat64Array, scaleStats } from "./stats.ts";

/** Equal to within a relative 1e-12: the expectations come from numpy, which sums in a different order. */
function close(actual: number, expected: number, what: string): void {
  const tol = 1e-12 * Math.max(1, Math.abs(expected));
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} ≠ ${expected}`);
}

describe("GrowableFloat64Array", () => {
  it("keeps every value across growth", () => {
    const a = new GrowableFloat64Array(2);
    for (let i = 0; i < 5; i++) a.push(i);
    a.pushAll([10, 11, 12, 13, 14, 15, 16]);
    assert.equal(a.length, 12);
    assert.deepEqual([...a.view()], [0, 1, 2, 3, 4, 10, 11, 12, 13, 14, 15, 16]);
  });

  it("rejects a useless capacity", () => {
    assert.throws(() => new GrowableFloat64Array(0), RangeError);
  });
});

describe("distributionStats", () => {
  it("matches numpy.percentile (linear) and numpy.std (population)", () => {
    // numpy 2.4: np.percentile(a, [1,5,10,25,50,75,90,95,99]), a.mean(), a.std()
    const cases = [
      {
        values: [15, 20, 35, 40, 50],
        p: [15.2, 16.0, 17.0, 20.0, 35.0, 40.0, 46.0, 48.0, 49.6],
        avg: 32,
        std: 12.884098726725126,
      },
      {
        values: [3.5, -1, 7.25, 0, 2, 2, 9.125, 4],
        p: [-0.93, -0.65, -0.3, 1.5, 2.75, 4.8125, 7.8125, 8.46875, 8.99375],
        avg: 3.359375,
        std: 3.217042933250192,
      },
    ];
    for (const c of cases) {
      const s = distributionStats(Float64Array.from(c.values))!;
      const got = [s.p1, s.p5, s.p10, s.p25, s.p50, s.p75, s.p90, s.p95, s.p99];
      for (const [i, v] of got.entries()) close(v, c.p[i]!, `percentile ${i} of ${c.values}`);
      close(s.avg, c.avg, "avg");
      close(s.std, c.std, "std");
      assert.equal(s.min, Math.min(...c.values));
      assert.equal(s.max, Math.max(...c.values));
    }
  });

  it("gives one value for every statistic of a single value, and null for none", () => {
    const s = distributionStats(Float64Array.of(7))!;
    assert.deepEqual(Object.values(s), [7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 0]);
    assert.equal(distributionStats(new Float64Array(0)), null);
  });

  it("does not depend on the order values arrived in", () => {
    const values = [0.1, 0.7, 1e-9, 3.3, 0.2, 5.5, 0.3, 1 / 3];
    const a = distributionStats(Float64Array.from(values));
    const b = distributionStats(Float64Array.from([...values].reverse()));
    assert.deepEqual(a, b);
  });

  it("scales every statistic for a unit change", () => {
    const s = scaleStats(distributionStats(Float64Array.of(1e6, 3e6))!, 1e6);
    assert.equal(s.avg, 2);
    assert.equal(s.std, 1);
    assert.equal(s.p50, 2);
    assert.equal(s.max, 3);
  });
});

describe("formatFixed2", () => {
  it("prints what Python's %.2f and {:,.2f} print", () => {
    // Python 3: "%.2f" % v and f"{v:,.2f}"
    const cases: [number, string, string][] = [
      [0.125, "0.12", "0.12"],
      [0.375, "0.38", "0.38"],
      [0.625, "0.62", "0.62"],
      [0.875, "0.88", "0.88"],
      [2.5, "2.50", "2.50"],
      [2.675, "2.67", "2.67"],
      [1.005, "1.00", "1.00"],
      [1.115, "1.11", "1.11"],
      [123.455, "123.45", "123.45"],
      [1000, "1000.00", "1,000.00"],
      [1234567.891, "1234567.89", "1,234,567.89"],
      [-0.125, "-0.12", "-0.12"],
      [-0.001, "-0.00", "-0.00"],
      [1.5e-7, "0.00", "0.00"],
      [1.795638778167625e18, "1795638778167624960.00", "1,795,638,778,167,624,960.00"],
      [1e21, "1000000000000000000000.00", "1,000,000,000,000,000,000,000.00"],
      [1e22, "10000000000000000000000.00", "10,000,000,000,000,000,000,000.00"],
    ];
    for (const [v, plain, grouped] of cases) {
      assert.equal(formatFixed2(v), plain, `%.2f of ${v}`);
      assert.equal(formatFixed2(v, true), grouped, `{:,.2f} of ${v}`);
    }
    assert.equal(formatFixed2(Number.NaN), "nan");
    assert.equal(formatFixed2(Number.NEGATIVE_INFINITY), "-inf");
  });
});

describe("GrowableFloat64Array sorting as it grows", () => {
  it("ends in the built-in sort's order whatever the presort calls in between", () => {
    const rng = createRng(5, "presort");
    // Zeros of either sign compare equal, so their order is free: compare values with −0 read as 0.
    const plain = (a: ArrayLike<number>) => Array.from(a, (x) => x + 0);
    for (const minTail of [1, 7, 64]) {
      const g = new GrowableFloat64Array(4);
      const all: number[] = [];
      for (let step = 0; step < 400; step++) {
        const v = rng.next() < 0.1 ? Math.round(rng.next() * 10) : (rng.next() - 0.3) * 1000;
        if (rng.next() < 0.5) {
          g.push(v);
          all.push(v);
        } else {
          g.pushAll([v, -v]);
          all.push(v, -v);
        }
        if (rng.next() < 0.3) g.presort(minTail);
      }
      assert.deepEqual(plain(g.sorted()), plain(Float64Array.from(all).sort()));
      // More values after a sort, and another sort.
      g.push(-1e9);
      assert.equal(g.sorted()[0], -1e9);
      assert.equal(g.sorted().length, all.length + 1);
    }
  });
});
