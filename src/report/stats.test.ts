import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { wilcoxonRankSum } from "simple-statistics";
import { createRng } from "../random.ts";
import {
  bootstrapMeanAndPercentiles,
  bootstrapRatioOfSums,
  erfc,
  mannKendall,
  mannWhitneyU,
  median,
  moverDifference,
  normalCdf,
  normalQuantile,
  percentileInterval,
  theilSenSlope,
  twoSidedP,
  twoSidedZ,
  wilsonInterval,
} from "./stats.ts";

function close(actual: number, expected: number, relTol: number, what = "") {
  const tol = relTol * Math.max(Math.abs(expected), Number.MIN_VALUE);
  assert.ok(
    Math.abs(actual - expected) <= tol,
    `${what} ${actual} differs from ${expected} by more than ${tol}`,
  );
}

describe("normal distribution", () => {
  it("erfc is accurate in the body and far in the tail (reference: scipy.special.erfc)", () => {
    close(erfc(0), 1, 1e-15);
    close(erfc(0.5), 0.4795001221869535, 1e-13);
    close(erfc(2), 0.004677734981047266, 1e-12);
    close(erfc(2.49), 0.00042928786773391303, 1e-11);
    close(erfc(2.51), 0.0003857054817242799, 1e-12);
    close(erfc(3), 2.2090496998585445e-5, 1e-11);
    close(erfc(10), 2.0884875837625446e-45, 1e-12);
    close(erfc(-1), 2 - 0.15729920705028516, 1e-15);
    assert.equal(erfc(30), 0);
  });

  it("normalCdf, the two-sided p and the quantile agree with tables", () => {
    close(normalCdf(1.96), 0.9750021048517795, 1e-14);
    close(normalCdf(-1.96), 1 - 0.9750021048517795, 1e-12);
    close(twoSidedP(1.96), 0.04999579029644087, 1e-12);
    close(twoSidedP(-1.96), 0.04999579029644087, 1e-12);
    close(normalQuantile(0.975), 1.959963984540054, 1e-14);
    close(normalQuantile(0.01), -2.3263478740408408, 1e-13);
    close(normalQuantile(1e-10), -6.361340902404056, 1e-12);
    assert.equal(normalQuantile(0.5), 0);
    close(twoSidedZ(0.95), 1.959963984540054, 1e-14);
    close(twoSidedZ(0.99), 2.5758293035489004, 1e-13);
    for (const p of [1e-6, 0.001, 0.2, 0.7, 0.999]) close(normalCdf(normalQuantile(p)), p, 1e-12, `p=${p}`);
    assert.throws(() => normalQuantile(1.5), RangeError);
    assert.throws(() => twoSidedZ(1), RangeError);
  });
});

describe("wilsonInterval", () => {
  // Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table II, method 3.
  const cases: [number, number, number, number][] = [
    [81, 263, 0.2553, 0.3662],
    [15, 148, 0.0624, 0.1605],
    [0, 20, 0, 0.1611],
    [1, 29, 0.0061, 0.1718],
  ];
  for (const [k, n, lo, hi] of cases) {
    it(`matches Newcombe's ${k}/${n}`, () => {
      const w = wilsonInterval(k, n);
      assert.equal(w.estimate, k / n);
      assert.equal(Number(w.lo.toFixed(4)), lo);
      assert.equal(Number(w.hi.toFixed(4)), hi);
    });
  }

  it("reaches exactly 1 at n of n, widens with confidence, and rejects impossible counts", () => {
    const all = wilsonInterval(20, 20);
    assert.equal(all.hi, 1);
    close(all.lo, 1 - 0.1611, 1e-3);
    const w95 = wilsonInterval(30, 100);
    const w99 = wilsonInterval(30, 100, 0.99);
    assert.ok(w99.lo < w95.lo && w99.hi > w95.hi);
    assert.throws(() => wilsonInterval(5, 4), RangeError);
    assert.throws(() => wilsonInterval(1, 0), RangeError);
    assert.throws(() => wilsonInterval(1.5, 4), RangeError);
  });
});

describe("moverDifference", () => {
  it("with Wilson intervals is Newcombe's hybrid score interval (56/70 − 48/80: 0.0524 to 0.3339)", () => {
    // Newcombe (1998), "Interval estimation for the difference between independent proportions", method 10.
    const d = moverDifference(wilsonInterval(48, 80), wilsonInterval(56, 70));
    close(d.estimate, 0.2, 1e-12);
    assert.equal(Number(d.lo.toFixed(4)), 0.0524);
    assert.equal(Number(d.hi.toFixed(4)), 0.3339);
  });

  it("is antisymmetric", () => {
    const a = wilsonInterval(10, 50);
    const b = wilsonInterval(30, 60);
    const ab = moverDifference(a, b);
    const ba = moverDifference(b, a);
    close(ab.lo, -ba.hi, 1e-12);
    close(ab.hi, -ba.lo, 1e-12);
  });
});

describe("mannWhitneyU", () => {
  it("matches the scipy documentation example (U = 17, asymptotic p = 0.1113)", () => {
    const r = mannWhitneyU([19, 22, 16, 29, 24], [20, 11, 17, 12]);
    assert.equal(r.ux, 17);
    assert.equal(r.uy, 3);
    assert.equal(r.rankSumX, 32);
    close(r.p, 0.11134688653314041, 1e-12);
    assert.equal(r.probabilityYLessThanX, 17 / 20);
  });

  it("gives the hand-worked figures for complete separation", () => {
    // Ranks of x = 1, 2, 3: sum 6, U_x = 6 − 3·4/2 = 0, U_y = 9; mean 4.5, variance 3·3·7/12 = 5.25;
    // z = (9 − 4.5 − 0.5) / √5.25 = 1.7457; p = 2·(1 − Φ(1.7457)) = 0.0809.
    const r = mannWhitneyU([1, 2, 3], [4, 5, 6]);
    assert.equal(r.rankSumX, 6);
    assert.equal(r.ux, 0);
    assert.equal(r.uy, 9);
    close(r.z, 4 / Math.sqrt(5.25), 1e-14);
    close(r.p, 0.08085559837005224, 1e-12);
    assert.equal(r.probabilityYLessThanX, 0);
    const swapped = mannWhitneyU([4, 5, 6], [1, 2, 3]);
    assert.equal(swapped.p, r.p);
    assert.equal(swapped.probabilityYLessThanX, 1);
  });

  it("averages tied ranks and corrects the variance for ties", () => {
    const x = [1, 2, 2, 3, 3, 3, 4];
    const y = [2, 3, 3, 4, 4, 5, 5, 5];
    const r = mannWhitneyU(x, y);
    // Pooled ranks: 1 → 1; 2 ×3 → 3; 3 ×5 → 7; 4 ×3 → 11; 5 ×3 → 14. x: 1 + 3·2 + 7·3 + 11 = 39.
    assert.equal(r.rankSumX, 39);
    assert.equal(r.rankSumX, wilcoxonRankSum(x, y));
    assert.equal(r.ux, 39 - (7 * 8) / 2);
    // Tie term Σ(t³ − t) = 24 + 120 + 24 + 24 = 192; variance (7·8/12)·(16 − 192/210).
    close(r.z, (45 - 28 - 0.5) / Math.sqrt((56 / 12) * (16 - 192 / 210)), 1e-14);
    close(r.p, 0.049238967838553395, 1e-12);
    // Ties count half: 11 = pairs with x > y + ½·ties.
    let above = 0;
    let ties = 0;
    for (const a of x) {
      for (const b of y) {
        if (a > b) above++;
        else if (a === b) ties++;
      }
    }
    assert.equal(r.ux, above + ties / 2);
  });

  it("agrees with simple-statistics' rank sum on random samples with many ties", () => {
    const rng = createRng(7, "mw-ties");
    for (let rep = 0; rep < 20; rep++) {
      const x = Array.from({ length: 5 + rng.int(30) }, () => rng.int(8));
      const y = Array.from({ length: 5 + rng.int(30) }, () => rng.int(8));
      assert.equal(mannWhitneyU(x, y).rankSumX, wilcoxonRankSum(x, y));
    }
  });

  it("gives p = 1 when every value is tied, and rejects empty samples and NaN", () => {
    const r = mannWhitneyU([3, 3, 3], [3, 3]);
    assert.equal(r.p, 1);
    assert.equal(r.z, 0);
    assert.equal(r.probabilityYLessThanX, 0.5);
    assert.throws(() => mannWhitneyU([], [1]), RangeError);
    assert.throws(() => mannWhitneyU([1, Number.NaN], [1]), RangeError);
  });
});

describe("bootstrapMeanAndPercentiles", () => {
  it("draws resamples of the right composition (two values: 0, ½ and 1 with frequencies ¼, ½, ¼)", () => {
    const resamples = 8000;
    const [d] = bootstrapMeanAndPercentiles([[0, 1]], [50, 99], resamples, createRng(1, "two"));
    const freq = new Map<number, number>();
    for (let r = 0; r < resamples; r++) {
      const m = d!.mean[r]!;
      freq.set(m, (freq.get(m) ?? 0) + 1);
      // With two sorted values a and b the numpy-linear p50 is their midpoint and p99 is a + 0.99·(b − a).
      assert.equal(d!.percentiles[0]![r], m);
      const expected99 = m === 0 ? 0 : m === 1 ? 1 : 0.99;
      close(d!.percentiles[1]![r]!, expected99, 1e-15);
    }
    assert.deepEqual([...freq.keys()].sort(), [0, 0.5, 1]);
    close(freq.get(0)! / resamples, 0.25, 0.08);
    close(freq.get(0.5)! / resamples, 0.5, 0.04);
    close(freq.get(1)! / resamples, 0.25, 0.08);
  });

  it("centres the mean's draws on the sample mean with spread s/√n", () => {
    const rng = createRng(2, "data");
    const n = 1000;
    const values = Float64Array.from({ length: n }, () => -Math.log(1 - rng.next()) * 100);
    const [d] = bootstrapMeanAndPercentiles([values], [], 4000, createRng(3, "boot"));
    let mean = 0;
    for (const v of values) mean += v / n;
    let sd = 0;
    for (const v of values) sd += (v - mean) ** 2 / n;
    sd = Math.sqrt(sd);
    let dm = 0;
    for (const v of d!.mean) dm += v / d!.mean.length;
    let ds = 0;
    for (const v of d!.mean) ds += (v - dm) ** 2 / d!.mean.length;
    close(dm, mean, 0.005);
    close(Math.sqrt(ds), sd / Math.sqrt(n), 0.06);
  });

  it("gives percentiles that are sample values when no interpolation is needed (odd n, p50)", () => {
    const values = [5, 1, 4, 2, 3, 9, 7];
    const [d] = bootstrapMeanAndPercentiles([values], [50], 500, createRng(4, "odd"));
    for (const v of d!.percentiles[0]!) assert.ok(values.includes(v), `${v} is not a sample value`);
  });

  it("resamples units jointly across columns and skips missing values", () => {
    // Column b is column a wherever present: in every resample its statistics come from the same requests.
    const n = 400;
    const rng = createRng(5, "cols");
    const a = Float64Array.from({ length: n }, () => rng.next());
    const b = a.map((v, i) => (i % 2 === 0 ? v : Number.NaN));
    const c = a.map((v) => v * 2);
    const [da, db, dc] = bootstrapMeanAndPercentiles([a, b, c], [90], 300, createRng(6, "joint"));
    for (let r = 0; r < 300; r++) {
      close(dc!.mean[r]!, 2 * da!.mean[r]!, 1e-12);
      close(dc!.percentiles[0]![r]!, 2 * da!.percentiles[0]![r]!, 1e-12);
      assert.ok(Number.isFinite(db!.mean[r]!));
    }
    // A value present on a single unit is either in the resample (its own value) or not (NaN).
    const lonely = Float64Array.from({ length: n }, (_, i) => (i === 17 ? 42 : Number.NaN));
    const [, dl] = bootstrapMeanAndPercentiles([a, lonely], [50], 2000, createRng(7, "lonely"));
    let missing = 0;
    for (const v of dl!.mean) {
      if (Number.isNaN(v)) missing++;
      else assert.equal(v, 42);
    }
    // P(unit not drawn in n draws) = (1 − 1/n)^n ≈ e^-1.
    close(missing / 2000, (1 - 1 / n) ** n, 0.1);
  });

  it("is reproducible for a seed and differs between seeds", () => {
    const values = Array.from({ length: 300 }, (_, i) => (i * 37) % 101);
    const run = (seed: number) => bootstrapMeanAndPercentiles([values], [50, 90], 200, createRng(seed, "x"));
    assert.deepEqual(run(9), run(9));
    assert.notDeepEqual(run(9)[0]!.mean, run(10)[0]!.mean);
  });

  it("rejects bad input", () => {
    assert.throws(() => bootstrapMeanAndPercentiles([[]], [50], 10, createRng(1)), RangeError);
    assert.throws(() => bootstrapMeanAndPercentiles([[1, 2]], [101], 10, createRng(1)), RangeError);
    assert.throws(() => bootstrapMeanAndPercentiles([[1, 2]], [50], 0, createRng(1)), RangeError);
    assert.throws(() => bootstrapMeanAndPercentiles([[1, 2], [1]], [50], 10, createRng(1)), RangeError);
    assert.throws(() => bootstrapMeanAndPercentiles([[1, Infinity]], [50], 10, createRng(1)), RangeError);
  });
});

describe("bootstrapRatioOfSums", () => {
  it("is constant when every unit has the same ratio, and NaN on an all-zero denominator", () => {
    const draws = bootstrapRatioOfSums([1, 2, 3, 4], [4, 8, 12, 16], 100, createRng(1, "r"));
    for (const d of draws) close(d, 0.25, 1e-15);
    const zero = bootstrapRatioOfSums([0, 0], [0, 0], 10, createRng(1, "z"));
    assert.ok(zero.every(Number.isNaN));
  });

  it("weights units by their denominator", () => {
    // Σ/Σ, not a mean of ratios: a resample holding the big request at 10 % and the small one at 100 % gives
    // 110/1010 ≈ 11 %, not the 55 % a mean of the two ratios would.
    const draws = bootstrapRatioOfSums([100, 10], [1000, 10], 2000, createRng(2, "w"));
    const values = new Set(draws);
    for (const v of values)
      assert.ok(
        [0.1, 1, 110 / 1010].some((e) => Math.abs(v - e) < 1e-15),
        `${v}`,
      );
  });
});

describe("percentileInterval", () => {
  it("takes the numpy-linear 2.5th and 97.5th percentiles, skipping NaN draws", () => {
    const draws = Array.from({ length: 101 }, (_, i) => 100 - i);
    const check = (ci: { lo: number; hi: number } | null, lo: number, hi: number) => {
      assert.ok(ci);
      close(ci.lo, lo, 1e-12);
      close(ci.hi, hi, 1e-12);
    };
    check(percentileInterval(draws), 2.5, 97.5);
    check(percentileInterval([...draws, Number.NaN, Number.NaN]), 2.5, 97.5);
    check(percentileInterval(draws, 0.5), 25, 75);
  });

  it("is null for an infinite draw or no usable draws", () => {
    assert.equal(percentileInterval([1, 2, Infinity]), null);
    assert.equal(percentileInterval([Number.NaN]), null);
    assert.equal(percentileInterval([]), null);
  });
});

describe("trend estimates", () => {
  it("Theil–Sen ignores an outlier that least squares would follow", () => {
    const x = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    const y = x.map((v) => 3 * v + 1);
    y[9] = 1000;
    assert.equal(theilSenSlope(x, y), 3);
    assert.ok(Number.isNaN(theilSenSlope([1, 1], [2, 3])));
  });

  it("Mann–Kendall: a perfect rise of 6 points gives S = 15 and one-sided p = 0.0043", () => {
    // Var S = 6·5·17/18 = 28.33; z = (15 − 1)/√28.33 = 2.630.
    const r = mannKendall([1, 2, 3, 4, 5, 6]);
    assert.equal(r.s, 15);
    close(r.z, 14 / Math.sqrt((6 * 5 * 17) / 18), 1e-14);
    close(r.pIncreasing, 0.004267460207113888, 1e-9);
    close(r.p, 2 * r.pIncreasing, 1e-12);
    const down = mannKendall([6, 5, 4, 3, 2, 1]);
    assert.equal(down.s, -15);
    close(down.pIncreasing, 1 - r.pIncreasing, 1e-12);
  });

  it("Mann–Kendall corrects the variance for ties and is neutral on a flat series", () => {
    // Ties: one pair of 2s (t = 2): Var S = (7·6·19 − 2·1·9)/18 = 43.33.
    const r = mannKendall([1, 3, 2, 2, 5, 4, 7]);
    assert.equal(r.s, 14);
    close(r.z, 13 / Math.sqrt((7 * 6 * 19 - 18) / 18), 1e-14);
    const flat = mannKendall([4, 4, 4, 4]);
    assert.equal(flat.s, 0);
    assert.equal(flat.z, 0);
    assert.equal(flat.pIncreasing, 0.5);
  });

  it("median copies rather than sorting its input", () => {
    const v = [3, 1, 2];
    assert.equal(median(v), 2);
    assert.deepEqual(v, [3, 1, 2]);
  });
});
