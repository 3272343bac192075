/**
 * Interpolation over AIC's measured grids. Inside a grid values are blended piecewise-linearly in raw coordinates
 * along each axis, as AIC itself does (SOURCE.md §2.1, §2.4), so every collected point is reproduced exactly.
 * Outside it the callers extrapolate explicitly ("util-hold", SOURCE.md §2.1): the utilization measured at the
 * nearest grid point is kept and the latency follows an analytic roofline, `ms(q) = ms(anchor) · sol(q) / sol(anchor)`.
 */

/** Index i of the segment [xs[i], xs[i+1]] holding x, clamped to the first/last segment. */
export function segment(xs: readonly number[], x: number): number {
  let lo = 0;
  let hi = xs.length - 1;
  if (hi <= 0) return 0;
  if (x <= xs[0]!) return 0;
  if (x >= xs[hi]!) return hi - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (xs[mid]! <= x) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** Weight of the upper end of segment i at x (0 at xs[i], 1 at xs[i+1]). */
export function segmentWeight(xs: readonly number[], i: number, x: number): number {
  if (xs.length < 2) return 0;
  const a = xs[i]!;
  const b = xs[i + 1]!;
  return (x - a) / (b - a);
}

/** Piecewise-linear interpolation; x must lie within [xs[0], xs[last]]. */
export function lerp(xs: readonly number[], ys: readonly number[], x: number): number {
  if (xs.length === 1) return ys[0]!;
  const i = segment(xs, x);
  const w = segmentWeight(xs, i, x);
  return ys[i]! + w * (ys[i + 1]! - ys[i]!);
}

/**
 * A measured 1-D curve read at x: below the first point the first value is held (a kernel is not modelled as
 * faster than at its smallest collected size), inside it is interpolated, beyond the last point the last
 * point's utilization is held against `sol` (linear in x when no roofline is given).
 */
export function curveAt(
  xs: readonly number[],
  ys: readonly number[],
  x: number,
  sol: (x: number) => number = (v) => v,
): number {
  const last = xs.length - 1;
  if (x <= xs[0]!) return ys[0]!;
  if (x <= xs[last]!) return lerp(xs, ys, x);
  return (ys[last]! * sol(x)) / sol(xs[last]!);
}
