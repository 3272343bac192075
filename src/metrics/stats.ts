import { sortFloat64 } from "./radix-sort.ts";
import { percentileOfSorted } from "./summary.ts";

/**
 * An append-only Float64Array that doubles its capacity as it fills: per-request metric values of a long run stay
 * in one flat buffer (8 bytes each) instead of a boxed JS array. It can also sort itself bit by bit as values
 * arrive (`presort`, for a thread with time to spare), so that `sorted` at the end only has a short tail to sort
 * and a few sorted runs to merge.
 */
export class GrowableFloat64Array {
  private data: Float64Array;
  private size = 0;
  /** Ends of the sorted runs that tile the start of the buffer, each run at most about half its predecessor. */
  private readonly runs: number[] = [];
  private scratch = new Float64Array(0);

  constructor(initialCapacity = 1024) {
    if (!Number.isInteger(initialCapacity) || initialCapacity < 1) {
      throw new RangeError(`initial capacity must be a positive integer, got ${initialCapacity}`);
    }
    this.data = new Float64Array(initialCapacity);
  }

  get length(): number {
    return this.size;
  }

  push(value: number): void {
    if (this.size === this.data.length) this.grow(this.size + 1);
    this.data[this.size++] = value;
  }

  pushAll(values: ArrayLike<number>): void {
    const need = this.size + values.length;
    if (need > this.data.length) this.grow(need);
    for (let i = 0; i < values.length; i++) this.data[this.size + i] = values[i]!;
    this.size = need;
  }

  /** The filled part, sharing memory with the buffer (valid until the next push). */
  view(): Float64Array {
    return this.data.subarray(0, this.size);
  }

  /**
   * Sorts the values added since the last call into a run once there are at least `minTail` of them, and merges
   * runs of similar length, so the buffer is always a few sorted runs (a binary counter of them) plus a short tail.
   */
  presort(minTail = 1 << 19): void {
    const sortedEnd = this.runs.at(-1) ?? 0;
    if (this.size - sortedEnd < Math.max(1, minTail)) return;
    sortFloat64(this.data.subarray(sortedEnd, this.size));
    this.runs.push(this.size);
    while (this.runs.length >= 2) {
      const end = this.runs.at(-1)!;
      const mid = this.runs.at(-2)!;
      const start = this.runs.at(-3) ?? 0;
      if (mid - start > 2 * (end - mid)) break;
      this.mergeLast();
    }
  }

  /** The values in ascending order (the built-in sort's order), sharing memory with the buffer. */
  sorted(): Float64Array {
    this.presort(1);
    while (this.runs.length >= 2) this.mergeLast();
    return this.view();
  }

  /** Merges the last two runs into one. */
  private mergeLast(): void {
    const end = this.runs.pop()!;
    const mid = this.runs.pop()!;
    const start = this.runs.at(-1) ?? 0;
    if (this.scratch.length < mid - start) this.scratch = new Float64Array(mid - start);
    const d = this.data;
    const left = this.scratch;
    left.set(d.subarray(start, mid));
    let i = 0;
    let j = mid;
    let k = start;
    const leftEnd = mid - start;
    while (i < leftEnd && j < end) d[k++] = d[j]! < left[i]! ? d[j++]! : left[i++]!;
    while (i < leftEnd) d[k++] = left[i++]!;
    this.runs.push(end);
  }

  private grow(min: number): void {
    const next = new Float64Array(Math.max(min, this.data.length * 2));
    next.set(this.data.subarray(0, this.size));
    this.data = next;
  }
}

/** AIPerf's statistics of one distribution, in the order its JSON export lists them. */
export interface DistributionStats {
  avg: number;
  p1: number;
  p5: number;
  p10: number;
  p25: number;
  p50: number;
  p75: number;
  p90: number;
  p95: number;
  p99: number;
  min: number;
  max: number;
  std: number;
}

/** AIPerf's `STAT_KEYS`: the column order of its CSV export. */
export const STAT_KEYS = [
  "avg",
  "min",
  "max",
  "p1",
  "p5",
  "p10",
  "p25",
  "p50",
  "p75",
  "p90",
  "p95",
  "p99",
  "std",
] as const satisfies readonly (keyof DistributionStats)[];

/**
 * Statistics as AIPerf computes them: numpy-linear percentiles, arithmetic mean and population standard deviation.
 * Sorts `values` in place, and sums in sorted order, so the result depends only on the multiset of values and not
 * on the order records completed in. Returns null for no values.
 */
export function distributionStats(values: Float64Array): DistributionStats | null {
  const n = values.length;
  if (n === 0) return null;
  sortFloat64(values);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += values[i]!;
  const avg = sum / n;
  let sq = 0;
  for (let i = 0; i < n; i++) sq += (values[i]! - avg) ** 2;
  const p = (q: number) => percentileOfSorted(values, q);
  return {
    avg,
    p1: p(1),
    p5: p(5),
    p10: p(10),
    p25: p(25),
    p50: p(50),
    p75: p(75),
    p90: p(90),
    p95: p(95),
    p99: p(99),
    min: values[0]!,
    max: values[n - 1]!,
    std: Math.sqrt(sq / n),
  };
}

/** Every statistic divided by `divisor` (a unit conversion: the spread scales like the values). */
export function scaleStats(s: DistributionStats, divisor: number): DistributionStats {
  return {
    avg: s.avg / divisor,
    p1: s.p1 / divisor,
    p5: s.p5 / divisor,
    p10: s.p10 / divisor,
    p25: s.p25 / divisor,
    p50: s.p50 / divisor,
    p75: s.p75 / divisor,
    p90: s.p90 / divisor,
    p95: s.p95 / divisor,
    p99: s.p99 / divisor,
    min: s.min / divisor,
    max: s.max / divisor,
    std: s.std / divisor,
  };
}
