/** Distribution summary in the shape reports and JSON exports use. */
export interface Summary {
  count: number;
  mean: number;
  std: number;
  min: number;
  p25: number;
  p50: number;
  p75: number;
  p90: number;
  p99: number;
  max: number;
}

/**
 * Percentile of ascending-sorted values with linear interpolation between closest ranks (numpy's default
 * `linear` method), so figures agree with Python tooling run on the same data.
 */
export function percentileOfSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const pos = (q / 100) * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, n - 1);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (b - a) * (pos - lo);
}

/** Summarizes values (population standard deviation, as numpy's `std`). Empty input gives NaN statistics. */
export function summarize(values: ArrayLike<number>): Summary {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i]!;
  const mean = n === 0 ? Number.NaN : sum / n;
  let sq = 0;
  for (let i = 0; i < n; i++) sq += (sorted[i]! - mean) ** 2;
  return {
    count: n,
    mean,
    std: n === 0 ? Number.NaN : Math.sqrt(sq / n),
    min: n === 0 ? Number.NaN : sorted[0]!,
    p25: percentileOfSorted(sorted, 25),
    p50: percentileOfSorted(sorted, 50),
    p75: percentileOfSorted(sorted, 75),
    p90: percentileOfSorted(sorted, 90),
    p99: percentileOfSorted(sorted, 99),
    max: n === 0 ? Number.NaN : sorted[n - 1]!,
  };
}
