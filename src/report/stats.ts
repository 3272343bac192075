/**
 * Statistical building blocks for comparing serving arms: normal distribution functions, Wilson and MOVER
 * intervals, the Mann–Whitney U test, a fast bootstrap of the mean and percentiles, and robust trend estimates
 * (Theil–Sen slope, Mann–Kendall test). Pure functions: no I/O, no clock; randomness only from a passed-in Rng.
 */
import { percentileOfSorted } from "../metrics/summary.ts";
import type { Rng } from "../random.ts";

/** A confidence interval. */
export interface Interval {
  lo: number;
  hi: number;
}

/** A point estimate with its confidence interval. */
export interface Estimate extends Interval {
  estimate: number;
}

const SQRT_PI = Math.sqrt(Math.PI);

/**
 * The complementary error function to near double precision. A Taylor series with only positive terms (no
 * cancellation) below 2.5, a continued fraction above it: p-values of large samples are far out in the tail, where
 * the usual 7-digit approximations lose all relative precision.
 */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < 2.5) {
    // erf(x) = 2/√π · e^(−x²) · Σ 2ⁿ x^(2n+1) / (1·3·…·(2n+1))
    const x2 = x * x;
    let term = x;
    let sum = x;
    for (let n = 1; n < 200; n++) {
      term *= (2 * x2) / (2 * n + 1);
      sum += term;
      if (term < sum * 1e-17) break;
    }
    return 1 - (2 / SQRT_PI) * Math.exp(-x2) * sum;
  }
  if (x > 27) return 0;
  // erfc(x) = e^(−x²)/√π · 1/(x + ½/(x + 1/(x + 3⁄2/(x + …)))), evaluated with the modified Lentz method.
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let k = 1; k < 500; k++) {
    const a = k / 2;
    d = x + a * d;
    d = d === 0 ? 1 / tiny : 1 / d;
    c = x + a / c;
    if (c === 0) c = tiny;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / SQRT_PI / f;
}

/** P(Z ≤ z) for a standard normal Z. */
export function normalCdf(z: number): number {
  return 0.5 * erfc(-z / Math.SQRT2);
}

/** P(|Z| ≥ |z|): the two-sided p-value of a z statistic. */
export function twoSidedP(z: number): number {
  return erfc(Math.abs(z) / Math.SQRT2);
}

// Acklam's rational approximation of the normal quantile (relative error below 1.2e-9), refined below.
const ACKLAM_A = [
  -3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1,
  2.506628277459239,
];
const ACKLAM_B = [
  -5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1,
];
const ACKLAM_C = [
  -7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968,
  2.938163982698783,
];
const ACKLAM_D = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];

function poly(coeffs: readonly number[], x: number): number {
  let r = 0;
  for (const c of coeffs) r = r * x + c;
  return r;
}

/** The z with P(Z ≤ z) = p for a standard normal Z (the probit). */
export function normalQuantile(p: number): number {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`probability must be in [0, 1], got ${p}`);
  if (p === 0) return Number.NEGATIVE_INFINITY;
  if (p === 1) return Number.POSITIVE_INFINITY;
  const pLow = 0.02425;
  let x: number;
  if (p < pLow) {
    const q = Math.sqrt(-2 * Math.log(p));
    x = poly(ACKLAM_C, q) / (poly(ACKLAM_D, q) * q + 1);
  } else if (p <= 1 - pLow) {
    const q = p - 0.5;
    const r = q * q;
    x = (poly(ACKLAM_A, r) * q) / (poly(ACKLAM_B, r) * r + 1);
  } else {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    x = -poly(ACKLAM_C, q) / (poly(ACKLAM_D, q) * q + 1);
  }
  // One Halley step against the exact CDF takes the result to full double precision.
  const e = normalCdf(x) - p;
  const u = e * Math.sqrt(2 * Math.PI) * Math.exp((x * x) / 2);
  return x - u / (1 + (x * u) / 2);
}

function checkConfidence(confidence: number): void {
  if (!(confidence > 0 && confidence < 1)) {
    throw new RangeError(`confidence must be in (0, 1), got ${confidence}`);
  }
}

/** The z of a two-sided interval at `confidence` (1.96 for 0.95). */
export function twoSidedZ(confidence: number): number {
  checkConfidence(confidence);
  return normalQuantile(1 - (1 - confidence) / 2);
}

/**
 * Wilson score interval for a binomial proportion. Unlike the textbook p̂ ± z·SE it stays inside [0, 1] and keeps
 * near-nominal coverage when the proportion is close to 0 or 1, which SLO attainment usually is.
 */
export function wilsonInterval(successes: number, n: number, confidence = 0.95): Estimate {
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`n must be a positive integer, got ${n}`);
  if (!Number.isInteger(successes) || successes < 0 || successes > n) {
    throw new RangeError(`successes must be an integer in [0, ${n}], got ${successes}`);
  }
  const z = twoSidedZ(confidence);
  const p = successes / n;
  const z2n = (z * z) / n;
  const center = (p + z2n / 2) / (1 + z2n);
  const half = (z / (1 + z2n)) * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n));
  // At 0 and n successes the exact bound is 0 (or 1); rounding must not leave it a hair off.
  return {
    estimate: p,
    lo: successes === 0 ? 0 : Math.max(0, center - half),
    hi: successes === n ? 1 : Math.min(1, center + half),
  };
}

/**
 * Interval for the difference b − a of two independent estimates from their own intervals: the MOVER method of
 * Zou and Donner (2008). With Wilson intervals for two proportions it is Newcombe's hybrid score interval (his
 * method 10), which keeps its coverage where the Wald interval of a difference fails (proportions near 0 or 1).
 */
export function moverDifference(a: Estimate, b: Estimate): Estimate {
  const d = b.estimate - a.estimate;
  return {
    estimate: d,
    lo: d - Math.sqrt((b.estimate - b.lo) ** 2 + (a.hi - a.estimate) ** 2),
    hi: d + Math.sqrt((b.hi - b.estimate) ** 2 + (a.estimate - a.lo) ** 2),
  };
}

/** Multiplies an estimate and its bounds by a non-negative factor (a change of unit or scale). */
export function scaleEstimate(e: Estimate, factor: number): Estimate {
  return { estimate: e.estimate * factor, lo: e.lo * factor, hi: e.hi * factor };
}

export interface MannWhitneyResult {
  nx: number;
  ny: number;
  /** Sum of the ranks of x in the pooled sample, tied values sharing their average rank. */
  rankSumX: number;
  /** U of x: the number of pairs with x > y, a tie counting half (scipy's U1). */
  ux: number;
  /** U of y: nx·ny − ux. */
  uy: number;
  /** Normal approximation with tie and continuity corrections; 0 when every value is tied. */
  z: number;
  /** Two-sided p-value of the normal approximation; 1 when every value is tied. */
  p: number;
  /** P(Y < X) + ½·P(Y = X) for a random pair: the common-language effect size, ux / (nx·ny). */
  probabilityYLessThanX: number;
}

function sortedCopy(values: ArrayLike<number>, what: string): Float64Array {
  const out = Float64Array.from(values);
  for (let i = 0; i < out.length; i++) {
    if (Number.isNaN(out[i]!)) throw new RangeError(`${what}[${i}] is NaN`);
  }
  return out.sort();
}

/**
 * The Mann–Whitney U (Wilcoxon rank-sum) test of x against y, two-sided, by the normal approximation with tie
 * correction and continuity correction: the same figures as scipy's `mannwhitneyu(x, y, method="asymptotic")`.
 * With hundreds of requests per arm the approximation is far tighter than anything a report needs, and unlike the
 * exact distribution it costs O(n log n). Throws RangeError for an empty sample or a NaN.
 */
export function mannWhitneyU(x: ArrayLike<number>, y: ArrayLike<number>): MannWhitneyResult {
  const nx = x.length;
  const ny = y.length;
  if (nx === 0 || ny === 0) throw new RangeError("Mann–Whitney U needs two non-empty samples");
  const sx = sortedCopy(x, "x");
  const sy = sortedCopy(y, "y");
  // Merge the sorted samples tie group by tie group: each group shares the average of the ranks it spans.
  let i = 0;
  let j = 0;
  let rank = 0;
  let rankSumX = 0;
  let tieTerm = 0;
  while (i < nx || j < ny) {
    const v = j >= ny || (i < nx && sx[i]! <= sy[j]!) ? sx[i]! : sy[j]!;
    let cx = 0;
    let cy = 0;
    while (i < nx && sx[i] === v) {
      i++;
      cx++;
    }
    while (j < ny && sy[j] === v) {
      j++;
      cy++;
    }
    const t = cx + cy;
    rankSumX += cx * (rank + (t + 1) / 2);
    rank += t;
    tieTerm += t * t * t - t;
  }
  const n = nx + ny;
  const ux = rankSumX - (nx * (nx + 1)) / 2;
  const uy = nx * ny - ux;
  const mu = (nx * ny) / 2;
  const variance = ((nx * ny) / 12) * (n + 1 - tieTerm / (n * (n - 1)));
  let z = 0;
  let p = 1;
  if (variance > 0) {
    z = (Math.max(ux, uy) - mu - 0.5) / Math.sqrt(variance);
    p = Math.min(1, erfc(z / Math.SQRT2));
  }
  return { nx, ny, rankSumX, ux, uy, z, p, probabilityYLessThanX: ux / (nx * ny) };
}

export interface BootstrapDraws {
  /** The mean of each resample; NaN where the resample holds no value of the column. */
  mean: Float64Array;
  /** For each requested percentile, its value (numpy-linear) in each resample; NaN likewise. */
  percentiles: Float64Array[];
}

function checkResamples(resamples: number): void {
  if (!Number.isInteger(resamples) || resamples < 1) {
    throw new RangeError(`resamples must be a positive integer, got ${resamples}`);
  }
}

/**
 * Fills `counts` with how often each of its `n` units is drawn in one resample of n draws with replacement.
 * Drawing dominates a bootstrap's cost, so each 53-bit uniform u yields two indices where n ≤ 2^16: the integer
 * part of u·n, and its fraction, itself uniform on a 2^-38-or-finer grid, scaled by n again (a bias below 1e-6
 * per index).
 */
function drawCounts(counts: Uint32Array, next: () => number): void {
  const n = counts.length;
  counts.fill(0);
  if (n <= 1 << 16) {
    for (let k = 0; k + 1 < n; k += 2) {
      const u = next() * n;
      const i = Math.floor(u);
      counts[i]!++;
      counts[Math.floor((u - i) * n)]!++;
    }
    if (n % 2 === 1) counts[Math.floor(next() * n)]!++;
  } else {
    for (let k = 0; k < n; k++) counts[Math.floor(next() * n)]!++;
  }
}

/** Where numpy-linear percentiles of `count` sorted values sit: the order statistics (0-based) to look up. */
interface RankPlan {
  /** Ascending, unique. */
  ranks: number[];
  /** Per percentile: index in `ranks` of its lower and upper order statistic, and the weight of the upper. */
  lowerAt: number[];
  upperAt: number[];
  fraction: number[];
}

function rankPlan(percentiles: readonly number[], count: number): RankPlan {
  const lower = percentiles.map((q) => Math.floor((q / 100) * (count - 1)));
  const upper = lower.map((lo) => Math.min(lo + 1, count - 1));
  const ranks = [...new Set([...lower, ...upper])].sort((a, b) => a - b);
  return {
    ranks,
    lowerAt: lower.map((r) => ranks.indexOf(r)),
    upperAt: upper.map((r) => ranks.indexOf(r)),
    fraction: percentiles.map((q, p) => (q / 100) * (count - 1) - lower[p]!),
  };
}

/** One column prepared for resampling: its present units in value order. */
interface Column {
  /** Unit indices of the present values, ascending by value (ties by unit). */
  order: Int32Array;
  /** The values in that order. */
  sorted: Float64Array;
  /** Every unit has a value: the resample size is fixed, and so are the ranks. */
  complete: boolean;
  plan: RankPlan | null;
}

function prepareColumn(
  values: ArrayLike<number>,
  n: number,
  percentiles: readonly number[],
  c: number,
): Column {
  if (values.length !== n) throw new RangeError(`column ${c} has ${values.length} values, expected ${n}`);
  const present: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    if (Number.isNaN(v)) continue;
    if (!Number.isFinite(v)) throw new RangeError(`column ${c}, unit ${i}: value must be finite, got ${v}`);
    present.push(i);
  }
  present.sort((i, j) => values[i]! - values[j]! || i - j);
  const order = Int32Array.from(present);
  const complete = order.length === n;
  return {
    order,
    sorted: Float64Array.from(present, (i) => values[i]!),
    complete,
    plan: complete ? rankPlan(percentiles, n) : null,
  };
}

/**
 * Bootstrap distribution of the mean and of numpy-linear percentiles of one or more columns of values measured on
 * the same n units (say, TTFT and ITL of the same requests; NaN where a unit lacks a value): `resamples`
 * resamples of the units with replacement, each column's statistics taken over the resampled units that have a
 * value. A resample is kept as a count per unit rather than as values: one pass over each column in value order
 * then yields its mean and every order statistic the percentiles need, exactly, with no sorting or selection.
 * That is O(n) per resample, and one set of draws serves every column: 10,000 units × 2,000 resamples take a few
 * tenths of a second. Returns one set of draws per column.
 */
export function bootstrapMeanAndPercentiles(
  columns: readonly ArrayLike<number>[],
  percentiles: readonly number[],
  resamples: number,
  rng: Rng,
): BootstrapDraws[] {
  checkResamples(resamples);
  if (columns.length === 0) return [];
  const n = columns[0]!.length;
  if (n === 0) throw new RangeError("cannot bootstrap an empty sample");
  for (const q of percentiles) {
    if (!(q >= 0 && q <= 100)) throw new RangeError(`percentile must be in [0, 100], got ${q}`);
  }
  const cols = columns.map((values, c) => prepareColumn(values, n, percentiles, c));
  const out = cols.map(() => ({
    mean: new Float64Array(resamples),
    percentiles: percentiles.map(() => new Float64Array(resamples)),
  }));
  const counts = new Uint32Array(n);
  const rankValues = new Float64Array(2 * percentiles.length);
  const next = rng.next;
  for (let r = 0; r < resamples; r++) {
    drawCounts(counts, next);
    for (let c = 0; c < cols.length; c++) {
      const { order, sorted, plan: fixedPlan } = cols[c]!;
      const m = order.length;
      let total = n;
      if (fixedPlan === null) {
        total = 0;
        for (let i = 0; i < m; i++) total += counts[order[i]!]!;
      }
      const draws = out[c]!;
      if (total === 0) {
        draws.mean[r] = Number.NaN;
        for (const p of draws.percentiles) p[r] = Number.NaN;
        continue;
      }
      const plan = fixedPlan ?? rankPlan(percentiles, total);
      const ranks = plan.ranks;
      let sum = 0;
      let cum = 0;
      let pending = 0;
      let wanted = ranks[0]!;
      // Branch-free but for the rare rank crossing: a third of the counts are 0, at random, and a test for them
      // would be mispredicted constantly.
      for (let i = 0; i < m; i++) {
        const k = counts[order[i]!]!;
        const v = sorted[i]!;
        sum += k * v;
        cum += k;
        if (cum > wanted) {
          // Resampled positions cum − k … cum − 1 all hold v.
          while (pending < ranks.length && ranks[pending]! < cum) rankValues[pending++] = v;
          wanted = pending < ranks.length ? ranks[pending]! : Number.POSITIVE_INFINITY;
        }
      }
      draws.mean[r] = sum / total;
      for (let p = 0; p < percentiles.length; p++) {
        const a = rankValues[plan.lowerAt[p]!]!;
        const b = rankValues[plan.upperAt[p]!]!;
        draws.percentiles[p]![r] = a + (b - a) * plan.fraction[p]!;
      }
    }
  }
  return out;
}

/**
 * Bootstrap distribution of Σnumerator / Σdenominator over units resampled with replacement (a ratio estimator,
 * such as cached over prompt tokens, where units are requests). A resample with a zero denominator gives NaN.
 */
export function bootstrapRatioOfSums(
  numerator: ArrayLike<number>,
  denominator: ArrayLike<number>,
  resamples: number,
  rng: Rng,
): Float64Array {
  checkResamples(resamples);
  const n = numerator.length;
  if (n === 0 || denominator.length !== n) {
    throw new RangeError("ratio bootstrap needs equally long, non-empty numerator and denominator");
  }
  const num = Float64Array.from(numerator);
  const den = Float64Array.from(denominator);
  const out = new Float64Array(resamples);
  const counts = new Uint32Array(n);
  const next = rng.next;
  for (let r = 0; r < resamples; r++) {
    drawCounts(counts, next);
    let a = 0;
    let b = 0;
    for (let i = 0; i < n; i++) {
      const k = counts[i]!;
      a += k * num[i]!;
      b += k * den[i]!;
    }
    out[r] = b === 0 ? Number.NaN : a / b;
  }
  return out;
}

/**
 * The percentile interval of bootstrap draws: their (1 − confidence)/2 and (1 + confidence)/2 quantiles,
 * numpy-linear. NaN draws (resamples where the statistic does not exist, e.g. no request with the metric) are left
 * out, which conditions on the statistic existing. Returns null when no draw is left, or a draw is infinite (a
 * ratio over a zero baseline).
 */
export function percentileInterval(draws: ArrayLike<number>, confidence = 0.95): Interval | null {
  checkConfidence(confidence);
  const kept: number[] = [];
  for (let i = 0; i < draws.length; i++) {
    const d = draws[i]!;
    if (Number.isNaN(d)) continue;
    if (!Number.isFinite(d)) return null;
    kept.push(d);
  }
  if (kept.length === 0) return null;
  const sorted = Float64Array.from(kept).sort();
  return {
    lo: percentileOfSorted(sorted, ((1 - confidence) / 2) * 100),
    hi: percentileOfSorted(sorted, ((1 + confidence) / 2) * 100),
  };
}

/** Numpy-linear percentile of unsorted values (copies them). NaN for no values. */
export function percentile(values: ArrayLike<number>, q: number): number {
  return percentileOfSorted(Float64Array.from(values).sort(), q);
}

/** The median of unsorted values (copies them). NaN for no values. */
export function median(values: ArrayLike<number>): number {
  return percentile(values, 50);
}

/**
 * Theil–Sen slope of y over x: the median of the slopes between every pair of points with distinct x. A few wild
 * points (one stalled request, one burst) cannot move it, unlike least squares. O(n²): meant for tens of points.
 * NaN when no two points differ in x.
 */
export function theilSenSlope(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = x.length;
  if (y.length !== n) throw new RangeError("x and y must have the same length");
  const slopes: number[] = [];
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const dx = x[j]! - x[i]!;
      if (dx !== 0) slopes.push((y[j]! - y[i]!) / dx);
    }
  }
  return median(slopes);
}

export interface MannKendallResult {
  /** Σ sign(y_j − y_i) over i < j: positive when later values tend to be larger. */
  s: number;
  /** Normal approximation with tie and continuity corrections. */
  z: number;
  /** One-sided p-value for an increasing trend. */
  pIncreasing: number;
  /** Two-sided p-value for any monotonic trend. */
  p: number;
}

/**
 * Mann–Kendall test for a monotonic trend in a series taken in order, by the normal approximation with tie
 * correction (adequate from about 8 points; with fewer, a perfect trend still reaches p ≈ 0.004 at 6 points).
 */
export function mannKendall(y: ArrayLike<number>): MannKendallResult {
  const n = y.length;
  let s = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) s += Math.sign(y[j]! - y[i]!);
  }
  const sorted = Float64Array.from(y).sort();
  let tieTerm = 0;
  for (let i = 0; i < n; ) {
    let t = 1;
    while (i + t < n && sorted[i + t] === sorted[i]) t++;
    tieTerm += t * (t - 1) * (2 * t + 5);
    i += t;
  }
  const variance = (n * (n - 1) * (2 * n + 5) - tieTerm) / 18;
  const z = variance > 0 && s !== 0 ? (s - Math.sign(s)) / Math.sqrt(variance) : 0;
  return { s, z, pIncreasing: 0.5 * erfc(z / Math.SQRT2), p: twoSidedP(z) };
}
