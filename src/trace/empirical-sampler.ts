import type { Rng } from "../random.ts";

/**
 * Draws from the empirical distribution of observed values: the distinct values sorted ascending, each with
 * probability proportional to how often it was observed (the inverse-CDF sampler of Dynamo's data generator).
 */
export class EmpiricalSampler {
  readonly values: Float64Array;
  private readonly cdf: Float64Array;

  constructor(observations: Iterable<number>) {
    const counts = new Map<number, number>();
    for (const v of observations) counts.set(v, (counts.get(v) ?? 0) + 1);
    if (counts.size === 0) throw new RangeError("an empirical distribution needs at least one observation");
    this.values = Float64Array.from(counts.keys()).sort();
    this.cdf = new Float64Array(this.values.length);
    let total = 0;
    for (const c of counts.values()) total += c;
    let acc = 0;
    for (let i = 0; i < this.values.length; i++) {
      acc += counts.get(this.values[i]!)!;
      this.cdf[i] = acc / total;
    }
  }

  sample(rng: Rng): number {
    return this.values[searchCdf(this.cdf, rng.next())]!;
  }
}

/**
 * Index of the first CDF entry above u, for u in [0, 1). (numpy's `searchsorted` differs only when u equals an
 * entry exactly, where it could pick an outcome of zero weight.)
 */
export function searchCdf(cdf: ArrayLike<number>, u: number): number {
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cdf[mid]! > u) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Python's `round()`: halves go to the even neighbour, so multipliers scale lengths exactly as upstream does. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
