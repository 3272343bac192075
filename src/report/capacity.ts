import type { Estimate } from "./stats.ts";

/** SLO attainment at or above which an arm still serves its load (the knee's threshold). */
export const KNEE_ATTAINMENT = 0.9;

/** TTFT and ITL percentiles, ms; null where the run has none (a non-streamed one). */
export interface LatencyFigures {
  ttftP50: number | null;
  ttftP99: number | null;
  itlP50: number | null;
  itlP99: number | null;
}

/** One arm at one load on one trace, as measured. */
export interface CapacityRun extends LatencyFigures {
  arm: string;
  load: number;
  traceSeed: number | undefined;
  /** Arrival rate the trace offered, req/s. */
  offeredRate: number;
  /** NaN when unknown (a live endpoint that is not a recipe arm). */
  gpus: number;
  /** Good requests per second, and SLO attainment (fraction) with its interval; null without SLOs. */
  goodput: number | null;
  attainment: Estimate | null;
  /** Output tokens per second, all requests. */
  outputTokensPerS: number;
  /** Output tokens per second of one request while it decodes (1000 / ITL avg). */
  tokensPerSPerUser: number | null;
  overloaded: boolean;
}

/** One arm at one load, over the trace seeds. */
export interface CapacityPoint extends LatencyFigures {
  load: number;
  offeredRate: number;
  goodput: number | null;
  /** With one trace: the Wilson interval of its requests; with several: a t interval over the traces' values. */
  attainment: Estimate | null;
  /** Null when the arm's GPU count is unknown. */
  goodputPerGpu: number | null;
  outputTokensPerSPerGpu: number | null;
  tokensPerSPerUser: number | null;
  /** How many of the traces had the arm overloaded, of how many. */
  overloaded: number;
  traces: number;
}

/**
 * Where SLO attainment falls below the threshold: `within` the swept range (rate interpolated linearly between the
 * last point at or above it and the first below), `below` the lowest offered rate (already under at the first
 * point), or `above` the highest (never under: the knee is at least that rate).
 */
export interface KneePoint {
  status: "within" | "below" | "above";
  /** The knee's rate; for `above` the highest rate swept, for `below` null. */
  rate: number | null;
}

export interface Knee extends KneePoint {
  /** The knee of the interval's lower and upper attainment curves. */
  lo: KneePoint;
  hi: KneePoint;
}

export interface CapacityCurve {
  arm: string;
  gpus: number;
  /** By increasing load. */
  points: CapacityPoint[];
  /** Null without SLOs. */
  knee: Knee | null;
}

/** The knee of one attainment curve: the highest offered rate at which attainment stays ≥ `threshold`. */
export function kneeOf(
  curve: readonly { rate: number; attainment: number }[],
  threshold = KNEE_ATTAINMENT,
): KneePoint {
  const pts = [...curve].sort((a, b) => a.rate - b.rate);
  if (pts.length === 0) return { status: "below", rate: null };
  if (pts[0]!.attainment < threshold) return { status: "below", rate: null };
  for (let i = 1; i < pts.length; i++) {
    const b = pts[i]!;
    if (b.attainment >= threshold) continue;
    const a = pts[i - 1]!;
    const f = (a.attainment - threshold) / (a.attainment - b.attainment);
    return { status: "within", rate: a.rate + f * (b.rate - a.rate) };
  }
  return { status: "above", rate: pts[pts.length - 1]!.rate };
}

/** Two-sided 95 % Student t quantiles for 1..30 degrees of freedom; beyond, the normal's. */
const T975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131,
  2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/** Mean of per-trace values with a 95 % t interval (the traces as independent replicates), clamped to [lo, hi]. */
export function acrossTraces(
  values: readonly number[],
  clamp: [number, number] = [-Infinity, Infinity],
): Estimate {
  const n = values.length;
  const mean = values.reduce((a, v) => a + v, 0) / n;
  if (n < 2) return { estimate: mean, lo: mean, hi: mean };
  const sd = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1));
  const half = (T975[n - 2] ?? 1.96) * (sd / Math.sqrt(n));
  return {
    estimate: mean,
    lo: Math.max(clamp[0], mean - half),
    hi: Math.min(clamp[1], mean + half),
  };
}

const meanOf = (values: readonly (number | null)[]): number | null => {
  const v = values.filter((x): x is number => x !== null && Number.isFinite(x));
  return v.length === 0 ? null : v.reduce((a, x) => a + x, 0) / v.length;
};

/** Runs grouped into one curve per arm (arms in the order first seen), each point over its traces, with its knee. */
export function capacityCurves(runs: readonly CapacityRun[]): CapacityCurve[] {
  const arms = [...new Set(runs.map((r) => r.arm))];
  return arms.map((arm) => {
    const mine = runs.filter((r) => r.arm === arm);
    const loads = [...new Set(mine.map((r) => r.load))].sort((a, b) => a - b);
    const gpus = mine[0]!.gpus;
    const points = loads.map((load): CapacityPoint => {
      const at = mine.filter((r) => r.load === load);
      const attainments = at.map((r) => r.attainment);
      const attainment = attainments.some((a) => a === null)
        ? null
        : at.length === 1
          ? attainments[0]!
          : acrossTraces(
              attainments.map((a) => a!.estimate),
              [0, 1],
            );
      const goodput = meanOf(at.map((r) => r.goodput));
      return {
        load,
        offeredRate: meanOf(at.map((r) => r.offeredRate)) ?? 0,
        goodput,
        attainment,
        ttftP50: meanOf(at.map((r) => r.ttftP50)),
        ttftP99: meanOf(at.map((r) => r.ttftP99)),
        itlP50: meanOf(at.map((r) => r.itlP50)),
        itlP99: meanOf(at.map((r) => r.itlP99)),
        goodputPerGpu: goodput === null || !(gpus > 0) ? null : goodput / gpus,
        outputTokensPerSPerGpu: gpus > 0 ? (meanOf(at.map((r) => r.outputTokensPerS)) ?? 0) / gpus : null,
        tokensPerSPerUser: meanOf(at.map((r) => r.tokensPerSPerUser)),
        overloaded: at.filter((r) => r.overloaded).length,
        traces: at.length,
      };
    });
    const curveOf = (pick: (e: Estimate) => number) =>
      points.map((p) => ({ rate: p.offeredRate, attainment: pick(p.attainment!) }));
    const knee: Knee | null = points.every((p) => p.attainment !== null)
      ? {
          ...kneeOf(curveOf((e) => e.estimate)),
          lo: kneeOf(curveOf((e) => e.lo)),
          hi: kneeOf(curveOf((e) => e.hi)),
        }
      : null;
    return { arm, gpus, points, knee };
  });
}

/** "2.31 req/s", "≥ 3.00 req/s" (never fell under), "< 0.95 req/s" (under from the first point). */
export function kneeText(k: KneePoint, lowestRate: number, format: (v: number) => string): string {
  if (k.status === "below") return `< ${format(lowestRate)} req/s`;
  if (k.status === "above") return `≥ ${format(k.rate!)} req/s`;
  return `${format(k.rate!)} req/s`;
}
