import { percentileOfSorted } from "../metrics/summary.ts";

/**
 * Percentile estimates from a Prometheus histogram as AIPerf's server-metrics export makes them (its "polynomial
 * histogram" estimator): it learns where observations sit inside a bucket from scrape intervals whose observations
 * all fell in that one bucket (their exact mean is sum delta / count delta), places synthetic observations in each
 * bucket accordingly, back-fills the +Inf bucket from the exact total sum, nudges the finite ones to match that sum,
 * and takes type-7 percentiles of the result.
 */

export const ESTIMATE_QUANTILES = [1, 5, 10, 25, 50, 75, 90, 95, 99] as const;

/** What the single-bucket intervals taught about one bucket. */
export interface BucketLearning {
  observations: number;
  weightedMeanSum: number;
  /** The mean of each single-bucket interval, for the spread. */
  means: number[];
}

/** Below this many single-bucket intervals a bucket's spread is not trusted. */
const MIN_SPREAD_INTERVALS = 3;
/** More observations than this are scaled down proportionally first, counts and sum alike. */
const MAX_OBSERVATIONS = 100_000;

const learnedMean = (l: BucketLearning | undefined) =>
  l && l.observations > 0 ? l.weightedMeanSum / l.observations : undefined;

function learnedVariance(l: BucketLearning | undefined): number | undefined {
  if (!l || l.means.length < MIN_SPREAD_INTERVALS) return undefined;
  const m = l.means.reduce((a, b) => a + b, 0) / l.means.length;
  return l.means.reduce((a, b) => a + (b - m) ** 2, 0) / (l.means.length - 1);
}

const leValue = (le: string) => (le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le));
const byBound = (les: Iterable<string>) => [...les].sort((a, b) => leValue(a) - leValue(b));

/**
 * Per-bucket learning over consecutive scrapes (cumulative sums, counts and bucket counts, `les` sorted by bound):
 * each interval whose new observations all landed in one bucket records that bucket's exact mean.
 */
export function learnBuckets(
  sums: readonly number[],
  counts: readonly number[],
  les: readonly string[],
  bucketCounts: readonly (readonly number[])[],
): Map<string, BucketLearning> {
  const out = new Map<string, BucketLearning>();
  for (let i = 1; i < sums.length; i++) {
    const countDelta = Math.trunc(counts[i]! - counts[i - 1]!);
    if (countDelta <= 0) continue;
    const sumDelta = sums[i]! - sums[i - 1]!;
    let active = -1;
    let activeCount = 0;
    let prev = 0;
    for (let b = 0; b < les.length; b++) {
      const cum = Math.max(0, bucketCounts[i]![b]! - bucketCounts[i - 1]![b]!);
      const own = b === 0 ? cum : Math.max(0, cum - prev);
      prev = cum;
      if (own > 0) {
        active = b;
        activeCount++;
      }
    }
    if (activeCount !== 1) continue;
    const le = les[active]!;
    let l = out.get(le);
    if (!l) {
      l = { observations: 0, weightedMeanSum: 0, means: [] };
      out.set(le, l);
    }
    const mean = sumDelta / countDelta;
    l.observations += countDelta;
    l.weightedMeanSum += mean * countDelta;
    l.means.push(mean);
  }
  return out;
}

function boundsOf(le: string, finiteSorted: readonly string[]): [number, number] {
  const i = finiteSorted.indexOf(le);
  return [i <= 0 ? 0 : leValue(finiteSorted[i - 1]!), leValue(le)];
}

const evenFractions = (n: number) => Array.from({ length: n }, (_, i) => (i + 0.5) / n);
const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

function twoPoint(n: number, lower: number, upper: number, mean: number, variance: number): number[] {
  const a = clamp(mean - lower > 0 ? mean + variance / (mean - lower) : upper, lower, upper);
  const denom = variance + (mean - lower) ** 2;
  const pLower = clamp(denom > 0 ? variance / denom : 0.5, 0, 1);
  const atLower = Math.trunc(n * pLower);
  return Array.from({ length: n }, (_, i) => (i < atLower ? lower : a));
}

function spreadAround(n: number, lower: number, upper: number, mean: number, std: number): number[] {
  const down = Math.min(std > 0 ? (mean - lower) / std : 3, 3);
  const up = Math.min(std > 0 ? (upper - mean) / std : 3, 3);
  return evenFractions(n).map((f) =>
    clamp(f < 0.5 ? mean - down * std * (1 - 2 * f) : mean + up * std * (2 * f - 1), lower, upper),
  );
}

function shiftedUniform(n: number, lower: number, upper: number, center: number): number[] {
  const shift = center - (lower + upper) / 2;
  return evenFractions(n).map((f) => clamp(lower + (upper - lower) * f + shift, lower, upper));
}

/** Synthetic observations for the finite buckets, then shifted so their sum meets `targetSum`. */
function finiteObservations(
  perBucket: Map<string, number>,
  targetSum: number,
  learned: Map<string, BucketLearning>,
): number[] {
  const finite = byBound([...perBucket.keys()].filter((le) => le !== "+Inf"));
  let counts = new Map(finite.map((le) => [le, perBucket.get(le) ?? 0]));
  let total = [...counts.values()].reduce((a, b) => a + b, 0);
  if (total > MAX_OBSERVATIONS) {
    const ratio = MAX_OBSERVATIONS / total;
    counts = new Map([...counts].map(([le, c]) => [le, c * ratio]));
    targetSum *= ratio;
    total = [...counts.values()].reduce((a, b) => a + b, 0);
  }
  // When nearly all observations share one bucket, their overall mean is the best centre for it.
  const avg = total > 0 ? targetSum / total : 0;
  let dominant: string | undefined;
  if (total > 0) {
    const max = Math.max(...counts.values());
    if (max / total >= 0.95) dominant = finite.find((le) => counts.get(le) === max);
  }
  const obs: number[] = [];
  const ranges: Array<{ start: number; n: number; lower: number; upper: number }> = [];
  for (const le of finite) {
    const n = Math.trunc(counts.get(le) ?? 0);
    if (n <= 0) continue;
    const [lower, upper] = boundsOf(le, finite);
    const width = upper - lower;
    const mid = (lower + upper) / 2;
    const l = learned.get(le);
    const m = learnedMean(l);
    const mean = m !== undefined && lower < m && m < upper ? m : undefined;
    const variance = learnedVariance(l);
    let placed: number[] | undefined;
    if (mean !== undefined && variance !== undefined && variance > 0) {
      const std = Math.sqrt(variance);
      const coverage = (4 * std) / width;
      const offset = Math.abs(mean - mid) / width;
      if (coverage < 0.01) placed = twoPoint(n, lower, upper, mean, variance);
      else if (coverage < 0.2 && offset < 0.3) {
        const u = shiftedUniform(n, lower, upper, mean);
        const v = spreadAround(n, lower, upper, mean, std);
        placed = u.map((x, i) => clamp(0.5 * x + 0.5 * v[i]!, lower, upper));
      } else placed = spreadAround(n, lower, upper, mean, std);
    }
    if (!placed) {
      let center = mean ?? mid;
      if (le === dominant && lower < avg && avg < upper) center = avg;
      placed = shiftedUniform(n, lower, upper, center);
    }
    ranges.push({ start: obs.length, n, lower, upper });
    for (const x of placed) obs.push(x);
  }
  const generated = obs.reduce((a, b) => a + b, 0);
  if (generated <= 0 || targetSum <= 0) return obs;
  const gap = targetSum - generated;
  if (Math.abs(gap) / targetSum < 0.001) return obs;
  for (const r of ranges) {
    let bucketSum = 0;
    for (let i = r.start; i < r.start + r.n; i++) bucketSum += obs[i]!;
    const maxShift = (r.upper - r.lower) * 0.4;
    const shift = clamp((gap * (bucketSum / generated)) / r.n, -maxShift, maxShift);
    for (let i = r.start; i < r.start + r.n; i++) obs[i] = clamp(obs[i]! + shift, r.lower, r.upper);
  }
  return obs;
}

/**
 * Estimated p1…p99 from the run's bucket deltas (cumulative, keyed by `le`), its exact sum and count deltas, and what
 * the scrapes taught about each bucket; null when nothing was observed or the sum is not usable.
 */
export function estimatePercentiles(
  cumulativeDeltas: ReadonlyMap<string, number>,
  learned: Map<string, BucketLearning>,
  totalSum: number,
  totalCount: number,
): number[] | null {
  const les = [...cumulativeDeltas.keys()];
  if (totalCount <= 0 || les.length === 0) return null;
  if (!Number.isFinite(totalSum) || totalSum < 0) return null;
  if (totalSum === 0) return ESTIMATE_QUANTILES.map(() => 0);
  const finite = byBound(les.filter((le) => le !== "+Inf"));
  if (finite.length === 0) return null;
  const maxFinite = leValue(finite[finite.length - 1]!);
  const perBucket = new Map<string, number>();
  let prev = 0;
  for (const le of finite) {
    perBucket.set(le, cumulativeDeltas.get(le)! - prev);
    prev = cumulativeDeltas.get(le)!;
  }
  if (cumulativeDeltas.has("+Inf")) perBucket.set("+Inf", cumulativeDeltas.get("+Inf")! - prev);
  const all = [...perBucket.values()].reduce((a, b) => a + b, 0);
  let sum = totalSum;
  if (all > MAX_OBSERVATIONS) {
    const ratio = MAX_OBSERVATIONS / all;
    for (const [le, c] of perBucket) perBucket.set(le, c * ratio);
    sum *= ratio;
  }
  const rawInf = perBucket.get("+Inf") ?? 0;
  const infCount = rawInf > 0 ? Math.ceil(rawInf) : 0;
  let finiteSumEstimate = 0;
  for (const le of finite) {
    const c = perBucket.get(le)!;
    if (c <= 0) continue;
    const [lower, upper] = boundsOf(le, finite);
    const m = learnedMean(learned.get(le));
    finiteSumEstimate += c * (m !== undefined && lower < m && m < upper ? m : (lower + upper) / 2);
  }
  const inf: number[] = [];
  if (infCount > 0) {
    const infSum = sum - finiteSumEstimate;
    let infAvg = infSum > 0 ? infSum / infCount : maxFinite * 1.5;
    if (infAvg <= maxFinite) infAvg = maxFinite * 1.5;
    let top = 2 * infAvg - maxFinite;
    if (top <= maxFinite) top = maxFinite * 2;
    if (infCount === 1) inf.push(infAvg);
    else for (let i = 0; i < infCount; i++) inf.push(maxFinite + ((top - maxFinite) * i) / (infCount - 1));
  }
  const infSum = inf.reduce((a, b) => a + b, 0);
  const obs = finiteObservations(perBucket, sum - infSum, learned).concat(inf);
  if (obs.length === 0) return null;
  obs.sort((a, b) => a - b);
  return ESTIMATE_QUANTILES.map((q) => percentileOfSorted(obs, q));
}
