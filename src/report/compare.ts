/**
 * A/B comparison of serving arms (say, aggregated round-robin against disaggregated KV routing) on AIPerf's
 * per-request metrics: per-arm statistics, bootstrap confidence intervals for differences and ratios, a rank test
 * for a distribution shift, goodput and prefix-cache hit rate with intervals, overload detection, and verdicts as
 * data. Pure: no I/O, no clock; every resample is drawn from `createRng(seed, label)`.
 */
import { computeRecordMetrics, METRICS, type MetricUnit } from "../metrics/aiperf-metrics.ts";
import { type GoodputSlo, meetsSlos } from "../metrics/goodput.ts";
import type { RequestRecord } from "../metrics/record.ts";
import { distributionStats } from "../metrics/stats.ts";
import { createRng } from "../random.ts";
import {
  type BootstrapDraws,
  bootstrapMeanAndPercentiles,
  bootstrapRatioOfSums,
  type Estimate,
  mannKendall,
  mannWhitneyU,
  median,
  moverDifference,
  percentileInterval,
  scaleEstimate,
  theilSenSlope,
  wilsonInterval,
} from "./stats.ts";

/** The per-request metrics an A/B comparison covers. */
export const COMPARE_METRIC_TAGS = [
  "time_to_first_token",
  "time_to_second_token",
  "inter_token_latency",
  "request_latency",
  "output_token_throughput_per_user",
] as const;

export type CompareMetricTag = (typeof COMPARE_METRIC_TAGS)[number];

export const COMPARE_STATISTICS = ["avg", "p50", "p90", "p99"] as const;

export type CompareStatistic = (typeof COMPARE_STATISTICS)[number];

/** Short names for verdict texts. */
export const METRIC_LABELS: { readonly [K in CompareMetricTag]: string } = {
  time_to_first_token: "TTFT",
  time_to_second_token: "TTST",
  inter_token_latency: "ITL",
  request_latency: "request latency",
  output_token_throughput_per_user: "output token throughput per user",
};

const STATISTIC_LABELS: { readonly [K in CompareStatistic]: string } = {
  avg: "mean",
  p50: "p50",
  p90: "p90",
  p99: "p99",
};

const NS_PER_S = 1e9;

/** One sample of the server's queue: how many requests were waiting `t_s` seconds into the run. */
export interface QueueSample {
  t_s: number;
  waiting: number;
}

/** One arm of an experiment: its records and, where the server exposed one, its queue-length timeline. */
export interface ArmInput {
  name: string;
  records: readonly RequestRecord[];
  queue?: readonly QueueSample[] | undefined;
  /**
   * Benchmark duration in seconds, when the caller knows it better (a duration-bounded run); otherwise AIPerf's:
   * first start to last response of the successful requests.
   */
  durationS?: number | undefined;
  /** This arm's own goodput SLOs, where the arms were measured against different ones; default the options'. */
  slos?: readonly GoodputSlo[] | undefined;
}

export interface BootstrapOptions {
  seed: number;
  /** Bootstrap resamples per arm; 2,000 by default. */
  resamples?: number | undefined;
  /** Two-sided confidence level of every interval; 0.95 by default. */
  confidence?: number | undefined;
}

export interface CompareOptions extends BootstrapOptions {
  /** Significance level for calling a distribution shift in verdicts; 0.05 by default. */
  alpha?: number | undefined;
  /** Goodput SLOs; without any, goodput is not computed (as in AIPerf). */
  slos?: readonly GoodputSlo[] | undefined;
  overload?: OverloadOptions | undefined;
  /**
   * Bootstrap draws kept for reuse by later comparisons with the same options: an arm (the same input object)
   * drawn in the same role over the same metrics draws the same resamples, so a report comparing one arm several
   * times draws it once per role.
   */
  drawCache?: WeakMap<ArmInput, Map<string, StatisticDraws[]>> | undefined;
}

const DEFAULT_RESAMPLES = 2000;
const DEFAULT_CONFIDENCE = 0.95;
const DEFAULT_ALPHA = 0.05;

/** A metric's statistics in one arm, in its display unit. */
export interface ArmMetricSummary {
  unit: MetricUnit;
  count: number;
  avg: number;
  p50: number;
  p90: number;
  p99: number;
}

export interface GoodputResult {
  /** Every record of the arm, failures included: a failed request meets no SLO. */
  requestCount: number;
  goodCount: number;
  durationS: number;
  /** Fraction of requests meeting every SLO, with a Wilson interval. */
  attainment: Estimate;
  /**
   * Good requests per second. Its interval is the attainment's scaled by requests / duration: the duration is
   * taken as fixed by the schedule, the only randomness being which requests meet their SLOs.
   */
  goodputPerS: Estimate;
}

export interface PrefixCacheResult {
  /** Records that report cached tokens; only these count. */
  records: number;
  cachedTokens: number;
  promptTokens: number;
  /** Σ cached / Σ prompt tokens, with a percentile-bootstrap interval over requests. */
  hitRate: Estimate;
}

export interface ArmReport {
  name: string;
  requestCount: number;
  /** Successful requests (AIPerf's validity rule); only they have metrics. */
  validCount: number;
  durationS: number | null;
  /** Null where no request of the arm has the metric (TTFT of a non-streamed run...). */
  metrics: { [K in CompareMetricTag]: ArmMetricSummary | null };
  /** Null without SLOs, requests or a positive duration. */
  goodput: GoodputResult | null;
  /** Null when no record reports cached tokens, or they have no prompt tokens. */
  prefixCache: PrefixCacheResult | null;
  overload: OverloadResult;
}

/** A statistic in both arms: candidate − baseline and candidate / baseline with bootstrap intervals. */
export interface StatisticComparison {
  baseline: number;
  candidate: number;
  /** Bounds are ±∞ only when no resample held the metric in both arms (a handful of values and bad luck). */
  difference: Estimate;
  /** Null when the baseline statistic is 0 in the sample, or in a resample where the candidate's is not. */
  ratio: Estimate | null;
}

/** Mann–Whitney U test of candidate against baseline. */
export interface DistributionShift {
  /** Pairs (baseline, candidate) with the baseline value larger, a tie counting half. */
  u: number;
  z: number;
  /** Two-sided p-value. */
  p: number;
  /** P(candidate < baseline) + ½·P(tie) for a random pair of requests: above 0.5, the candidate tends lower. */
  probabilityCandidateLower: number;
}

export interface MetricComparison {
  metric: CompareMetricTag;
  unit: MetricUnit;
  largerIsBetter: boolean;
  confidence: number;
  resamples: number;
  baselineCount: number;
  candidateCount: number;
  statistics: { [K in CompareStatistic]: StatisticComparison };
  shift: DistributionShift;
}

function settings(options: BootstrapOptions): { seed: number; resamples: number; confidence: number } {
  const resamples = options.resamples ?? DEFAULT_RESAMPLES;
  const confidence = options.confidence ?? DEFAULT_CONFIDENCE;
  if (!Number.isSafeInteger(options.seed))
    throw new RangeError(`seed must be a safe integer, got ${options.seed}`);
  if (!Number.isInteger(resamples) || resamples < 1) {
    throw new RangeError(`resamples must be a positive integer, got ${resamples}`);
  }
  if (!(confidence > 0 && confidence < 1))
    throw new RangeError(`confidence must be in (0, 1), got ${confidence}`);
  return { seed: options.seed, resamples, confidence };
}

const PERCENTILES = [50, 90, 99] as const;

function sortedValues(values: ArrayLike<number>, what: string): Float64Array {
  const out = Float64Array.from(values);
  for (let i = 0; i < out.length; i++) {
    if (!Number.isFinite(out[i]!)) throw new RangeError(`${what}[${i}] must be finite, got ${out[i]}`);
  }
  return out.sort();
}

type StatisticDraws = { [K in CompareStatistic]: Float64Array };

function asStatisticDraws(d: BootstrapDraws): StatisticDraws {
  return { avg: d.mean, p50: d.percentiles[0]!, p90: d.percentiles[1]!, p99: d.percentiles[2]! };
}

/** Per-resample avg, p50, p90 and p99 of each column of one arm (columns over the same requests). */
function statisticDraws(
  columns: readonly Float64Array[],
  resamples: number,
  seed: number,
  label: string,
): StatisticDraws[] {
  return bootstrapMeanAndPercentiles(columns, PERCENTILES, resamples, createRng(seed, label)).map(
    asStatisticDraws,
  );
}

/**
 * Compares one metric between two arms, from its per-request values in display units. For each statistic the
 * intervals are percentile-bootstrap intervals: requests are resampled with replacement within each arm,
 * independently (streams `compare/<metric>/baseline` and `/candidate` of the seed), and the statistic's difference
 * and ratio are taken per pair of resamples. Throws RangeError for an empty arm or a non-finite value.
 */
export function compareMetric(
  metric: CompareMetricTag,
  baseline: ArrayLike<number>,
  candidate: ArrayLike<number>,
  options: BootstrapOptions,
): MetricComparison {
  const { seed, resamples, confidence } = settings(options);
  const a = sortedValues(baseline, "baseline");
  const b = sortedValues(candidate, "candidate");
  if (a.length === 0 || b.length === 0) throw new RangeError(`${metric}: both arms need at least one value`);
  const [da] = statisticDraws([a], resamples, seed, `compare/${metric}/baseline`);
  const [db] = statisticDraws([b], resamples, seed, `compare/${metric}/candidate`);
  return comparison(metric, a, b, da!, db!, resamples, confidence);
}

/** The comparison of one metric from both arms' sorted values and bootstrap draws. */
function comparison(
  metric: CompareMetricTag,
  a: Float64Array,
  b: Float64Array,
  da: StatisticDraws,
  db: StatisticDraws,
  resamples: number,
  confidence: number,
): MetricComparison {
  const sa = summaryOf(metric, a);
  const sb = summaryOf(metric, b);
  const statistics = {} as { [K in CompareStatistic]: StatisticComparison };
  for (const stat of COMPARE_STATISTICS) {
    const xa = da[stat];
    const xb = db[stat];
    const diff = new Float64Array(resamples);
    const ratio = new Float64Array(resamples);
    for (let r = 0; r < resamples; r++) {
      diff[r] = xb[r]! - xa[r]!;
      ratio[r] = xb[r]! / xa[r]!;
    }
    // Null only if no resample held the metric in both arms, which takes a handful of values and bad luck.
    const diffCi = percentileInterval(diff, confidence) ?? UNBOUNDED;
    const ratioCi = sa[stat] === 0 ? null : percentileInterval(ratio, confidence);
    statistics[stat] = {
      baseline: sa[stat],
      candidate: sb[stat],
      difference: { estimate: sb[stat] - sa[stat], ...diffCi },
      ratio: ratioCi === null ? null : { estimate: sb[stat] / sa[stat], ...ratioCi },
    };
  }
  const mw = mannWhitneyU(a, b);
  return {
    metric,
    unit: METRICS[metric].unit,
    largerIsBetter: METRICS[metric].largerIsBetter,
    confidence,
    resamples,
    baselineCount: a.length,
    candidateCount: b.length,
    statistics,
    shift: { u: mw.ux, z: mw.z, p: mw.p, probabilityCandidateLower: mw.probabilityYLessThanX },
  };
}

const UNBOUNDED = { lo: Number.NEGATIVE_INFINITY, hi: Number.POSITIVE_INFINITY };

function summaryOf(metric: CompareMetricTag, values: Float64Array): ArmMetricSummary {
  // AIPerf's own statistics routine, so these figures equal the arm's exported summary.
  const s = distributionStats(Float64Array.from(values))!;
  return { unit: METRICS[metric].unit, count: values.length, avg: s.avg, p50: s.p50, p90: s.p90, p99: s.p99 };
}

// ---------------------------------------------------------------------------------------------------------------
// Arms

/** An arm's records digested once: metric values in display units and what goodput, cache and overload need. */
interface PreparedArm {
  name: string;
  requestCount: number;
  validCount: number;
  durationS: number | null;
  /** Per metric, one value per successful request in record order, NaN where the request lacks the metric. */
  columns: { [K in CompareMetricTag]: Float64Array };
  /** Per metric, the values present, ascending. */
  values: { [K in CompareMetricTag]: Float64Array };
  goodCount: number | null;
  cachedTokens: number[];
  promptTokens: number[];
  timings: RequestTiming[];
  queue: readonly QueueSample[] | undefined;
}

function prepareArm(arm: ArmInput, slos: readonly GoodputSlo[]): PreparedArm {
  const lists = Object.fromEntries(COMPARE_METRIC_TAGS.map((t) => [t, [] as number[]])) as {
    [K in CompareMetricTag]: number[];
  };
  let valid = 0;
  let good = 0;
  let minStart = Number.POSITIVE_INFINITY;
  let maxEnd = Number.NEGATIVE_INFINITY;
  const cachedTokens: number[] = [];
  const promptTokens: number[] = [];
  const ttfts: { startNs: number; ttftNs: number }[] = [];
  for (const record of arm.records) {
    const m = computeRecordMetrics(record);
    if (record.cachedTokens !== undefined) {
      // A server's usage figure: a garbled one would skew the hit rate silently.
      if (!Number.isInteger(record.cachedTokens) || record.cachedTokens < 0) {
        throw new RangeError(
          `request record ${JSON.stringify(record.requestId)}: cachedTokens must be a non-negative integer, ` +
            `got ${record.cachedTokens}`,
        );
      }
      cachedTokens.push(record.cachedTokens);
      promptTokens.push(record.inputTokens);
    }
    if (m.error) continue;
    valid++;
    minStart = Math.min(minStart, record.startNs);
    maxEnd = Math.max(maxEnd, m.endNs!);
    for (const tag of COMPARE_METRIC_TAGS) {
      const v = m.values[tag];
      lists[tag].push(v === undefined ? Number.NaN : v / METRICS[tag].divisor);
    }
    if (slos.length > 0 && meetsSlos(m.values, slos)) good++;
    const ttft = m.values.time_to_first_token;
    if (ttft !== undefined) ttfts.push({ startNs: record.startNs, ttftNs: ttft });
  }
  let durationS = valid > 0 ? (maxEnd - minStart) / NS_PER_S : null;
  if (arm.durationS !== undefined) {
    if (!(Number.isFinite(arm.durationS) && arm.durationS > 0)) {
      throw new RangeError(
        `arm ${JSON.stringify(arm.name)}: durationS must be positive, got ${arm.durationS}`,
      );
    }
    durationS = arm.durationS;
  }
  const columns = Object.fromEntries(COMPARE_METRIC_TAGS.map((t) => [t, Float64Array.from(lists[t])])) as {
    [K in CompareMetricTag]: Float64Array;
  };
  const values = Object.fromEntries(
    COMPARE_METRIC_TAGS.map((t) => [t, columns[t].filter((v) => !Number.isNaN(v)).sort()]),
  ) as { [K in CompareMetricTag]: Float64Array };
  return {
    name: arm.name,
    requestCount: arm.records.length,
    validCount: valid,
    durationS,
    columns,
    values,
    goodCount: slos.length > 0 ? good : null,
    cachedTokens,
    promptTokens,
    timings: ttfts.map((r) => ({ sendS: (r.startNs - minStart) / NS_PER_S, ttftMs: r.ttftNs / 1e6 })),
    queue: arm.queue,
  };
}

function goodputOf(arm: PreparedArm, confidence: number): GoodputResult | null {
  if (arm.goodCount === null || arm.requestCount === 0 || arm.durationS === null || !(arm.durationS > 0)) {
    return null;
  }
  const attainment = wilsonInterval(arm.goodCount, arm.requestCount, confidence);
  return {
    requestCount: arm.requestCount,
    goodCount: arm.goodCount,
    durationS: arm.durationS,
    attainment,
    goodputPerS: scaleEstimate(attainment, arm.requestCount / arm.durationS),
  };
}

function prefixCacheOf(arm: PreparedArm, seed: number, resamples: number, confidence: number) {
  let cached = 0;
  let prompt = 0;
  for (let i = 0; i < arm.cachedTokens.length; i++) {
    cached += arm.cachedTokens[i]!;
    prompt += arm.promptTokens[i]!;
  }
  if (prompt === 0) return null;
  const draws = bootstrapRatioOfSums(
    arm.cachedTokens,
    arm.promptTokens,
    resamples,
    createRng(seed, `compare/prefix-cache/${arm.name}`),
  );
  // Null only when every resample drew nothing but prompt-less records: a sample too tiny to bound the rate.
  const ci = percentileInterval(draws, confidence) ?? { lo: 0, hi: 1 };
  return {
    records: arm.cachedTokens.length,
    cachedTokens: cached,
    promptTokens: prompt,
    hitRate: { estimate: cached / prompt, ...ci },
  } satisfies PrefixCacheResult;
}

function reportOf(arm: PreparedArm, options: CompareOptions): ArmReport {
  const { seed, resamples, confidence } = settings(options);
  const metrics = Object.fromEntries(
    COMPARE_METRIC_TAGS.map((t) => [t, arm.values[t].length > 0 ? summaryOf(t, arm.values[t]) : null]),
  ) as { [K in CompareMetricTag]: ArmMetricSummary | null };
  return {
    name: arm.name,
    requestCount: arm.requestCount,
    validCount: arm.validCount,
    durationS: arm.durationS,
    metrics,
    goodput: goodputOf(arm, confidence),
    prefixCache: prefixCacheOf(arm, seed, resamples, confidence),
    overload: detectOverload(arm.timings, arm.queue, options.overload),
  };
}

/**
 * One arm on its own: metric statistics, goodput against `options.slos`, prefix-cache hit rate and overload.
 * Throws RangeError for a malformed record or option.
 */
export function summarizeArm(arm: ArmInput, options: CompareOptions): ArmReport {
  return reportOf(prepareArm(arm, arm.slos ?? options.slos ?? []), options);
}

export interface GoodputComparison {
  /** Candidate − baseline SLO attainment: Newcombe's hybrid score interval. */
  attainmentDifference: Estimate;
  /** Candidate − baseline goodput in requests/s, by the same construction (MOVER) from the scaled intervals. */
  goodputDifference: Estimate;
}

export interface ArmComparison {
  baseline: ArmReport;
  candidate: ArmReport;
  settings: { seed: number; resamples: number; confidence: number; alpha: number };
  /** Every compared metric both arms have values for, in `COMPARE_METRIC_TAGS` order. */
  metrics: MetricComparison[];
  goodput: GoodputComparison | null;
  /** Candidate − baseline prefix-cache hit rate (MOVER from the two bootstrap intervals). */
  prefixCacheDifference: Estimate | null;
  /** One per compared metric and statistic. */
  verdicts: Verdict[];
}

/**
 * Compares a candidate arm against a baseline: everything `summarizeArm` gives for each, plus, per metric, the
 * bootstrap intervals of the differences and ratios of avg, p50, p90 and p99, the Mann–Whitney test, goodput and
 * cache-hit differences, and verdicts. For more arms, compare each candidate against the same baseline.
 *
 * The bootstrap resamples each arm's successful requests with replacement, independently per arm (streams
 * `compare/baseline` and `compare/candidate` of the seed); a metric's statistics in a resample are taken over
 * the resampled requests that have the metric. So `compareMetric` on the same values gives the same point
 * estimates and p-values, but (other streams) slightly different interval bounds.
 */
export function compareArms(baseline: ArmInput, candidate: ArmInput, options: CompareOptions): ArmComparison {
  const { seed, resamples, confidence } = settings(options);
  const alpha = options.alpha ?? DEFAULT_ALPHA;
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must be in (0, 1), got ${alpha}`);
  const slos = options.slos ?? [];
  const pa = prepareArm(baseline, baseline.slos ?? slos);
  const pb = prepareArm(candidate, candidate.slos ?? slos);
  const ra = reportOf(pa, options);
  const rb = reportOf(pb, options);
  const tags = COMPARE_METRIC_TAGS.filter((t) => pa.values[t].length > 0 && pb.values[t].length > 0);
  // One resample of an arm's requests serves every metric: drawing is most of a bootstrap's cost.
  const drawsOf = (arm: ArmInput, prepared: PreparedArm, label: string) => {
    const key = `${label} ${seed} ${resamples} ${tags.join(",")}`;
    let kept = options.drawCache?.get(arm);
    const hit = kept?.get(key);
    if (hit) return hit;
    const draws = statisticDraws(
      tags.map((t) => prepared.columns[t]),
      resamples,
      seed,
      label,
    );
    if (options.drawCache) {
      if (!kept) {
        kept = new Map();
        options.drawCache.set(arm, kept);
      }
      kept.set(key, draws);
    }
    return draws;
  };
  const da = drawsOf(baseline, pa, "compare/baseline");
  const db = drawsOf(candidate, pb, "compare/candidate");
  const metrics = tags.map((t, i) =>
    comparison(t, pa.values[t], pb.values[t], da[i]!, db[i]!, resamples, confidence),
  );
  const names = { baseline: baseline.name, candidate: candidate.name };
  const verdicts = metrics.flatMap((m) => COMPARE_STATISTICS.map((s) => verdict(m, s, names, { alpha })));
  return {
    baseline: ra,
    candidate: rb,
    settings: { seed, resamples, confidence, alpha },
    metrics,
    goodput:
      ra.goodput && rb.goodput
        ? {
            attainmentDifference: moverDifference(ra.goodput.attainment, rb.goodput.attainment),
            goodputDifference: moverDifference(ra.goodput.goodputPerS, rb.goodput.goodputPerS),
          }
        : null,
    prefixCacheDifference:
      ra.prefixCache && rb.prefixCache
        ? moverDifference(ra.prefixCache.hitRate, rb.prefixCache.hitRate)
        : null,
    verdicts,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Overload

/** When a request was sent (seconds into the run) and its TTFT (ms). */
export interface RequestTiming {
  sendS: number;
  ttftMs: number;
}

/**
 * The overload rule. Points (requests in send order, or queue samples in time order) are cut into `windows`
 * consecutive windows of equal count (fewer when there are not `minPerWindow` points per window), and each
 * window is summarized by its median value at its median time. A signal keeps growing when
 *  1. the window medians rise monotonically: one-sided Mann–Kendall p < `trendAlpha`,
 *  2. their Theil–Sen slope is positive, and
 *  3. the last window's median is at least `growthFactor` × the first's (for the queue, × max(first, 1), since an
 *     idle queue's median is 0).
 * The arm is overloaded when TTFT or the queue keeps growing. Medians of windows make the rule indifferent to
 * single stalls and bursts, the trend test to one odd window; the growth factor keeps a statistically clear but
 * harmless drift (TTFT creeping up 10 % as caches warm) from counting. A stable system has no trend whatever its
 * noise: its window medians wander in no fixed direction.
 */
export interface OverloadOptions {
  /** Target number of windows; 10 by default. */
  windows?: number | undefined;
  /** Fewest points per window; 10 by default. */
  minPerWindow?: number | undefined;
  /** Fewest windows to judge from; 6 by default (with fewer, even a perfect trend cannot reach p < 0.01). */
  minWindows?: number | undefined;
  /** 2 by default. */
  growthFactor?: number | undefined;
  /** 0.01 by default. */
  trendAlpha?: number | undefined;
}

export interface TrendEvidence {
  signal: "time_to_first_token" | "queue_waiting";
  unit: "ms" | "requests";
  /** Median time of each window, minutes since the first point. */
  windowTimesMin: number[];
  windowMedians: number[];
  first: number;
  last: number;
  /** last / first (for the queue, last / max(first, 1)). */
  growth: number;
  /** Theil–Sen slope of the window medians, in `unit` per minute. */
  slopePerMin: number;
  /** One-sided Mann–Kendall p-value for an increasing trend of the window medians. */
  trendP: number;
  growing: boolean;
}

export interface OverloadResult {
  overloaded: boolean;
  /** One line saying why, with the figures. */
  reason: string;
  /** Null when there were too few requests with a TTFT to judge. */
  ttft: TrendEvidence | null;
  /** Null without a queue timeline, or with too few samples in it. */
  queue: TrendEvidence | null;
}

function overloadSettings(o: OverloadOptions = {}) {
  const s = {
    windows: o.windows ?? 10,
    minPerWindow: o.minPerWindow ?? 10,
    minWindows: o.minWindows ?? 6,
    growthFactor: o.growthFactor ?? 2,
    trendAlpha: o.trendAlpha ?? 0.01,
  };
  for (const k of ["windows", "minPerWindow", "minWindows"] as const) {
    if (!Number.isInteger(s[k]) || s[k] < 2)
      throw new RangeError(`overload ${k} must be an integer ≥ 2, got ${s[k]}`);
  }
  if (s.minWindows > s.windows) {
    throw new RangeError(`overload minWindows (${s.minWindows}) exceeds windows (${s.windows})`);
  }
  if (!(s.growthFactor >= 1))
    throw new RangeError(`overload growthFactor must be ≥ 1, got ${s.growthFactor}`);
  if (!(s.trendAlpha > 0 && s.trendAlpha < 1)) {
    throw new RangeError(`overload trendAlpha must be in (0, 1), got ${s.trendAlpha}`);
  }
  return s;
}

type OverloadSettings = ReturnType<typeof overloadSettings>;

/** Window evidence for points sorted by time, or null when there are too few of them. */
function trend(
  signal: TrendEvidence["signal"],
  times: Float64Array,
  values: Float64Array,
  s: OverloadSettings,
): TrendEvidence | null {
  const n = times.length;
  const windows = Math.min(s.windows, Math.floor(n / s.minPerWindow));
  if (windows < s.minWindows) return null;
  const t0 = times[0]!;
  const windowTimesMin: number[] = [];
  const windowMedians: number[] = [];
  for (let w = 0; w < windows; w++) {
    const from = Math.floor((w * n) / windows);
    const to = Math.floor(((w + 1) * n) / windows);
    windowTimesMin.push((median(times.subarray(from, to)) - t0) / 60);
    windowMedians.push(median(values.subarray(from, to)));
  }
  const first = windowMedians[0]!;
  const last = windowMedians[windows - 1]!;
  const isQueue = signal === "queue_waiting";
  const base = isQueue ? Math.max(first, 1) : first;
  const growth = base > 0 ? last / base : last > 0 ? Number.POSITIVE_INFINITY : 1;
  const slopePerMin = theilSenSlope(windowTimesMin, windowMedians);
  const trendP = mannKendall(windowMedians).pIncreasing;
  return {
    signal,
    unit: isQueue ? "requests" : "ms",
    windowTimesMin,
    windowMedians,
    first,
    last,
    growth,
    slopePerMin,
    trendP,
    growing: trendP < s.trendAlpha && slopePerMin > 0 && growth >= s.growthFactor,
  };
}

/** Points ordered by time; equal times keep their input order, so the result does not depend on sort stability. */
function byTime<T>(points: readonly T[], time: (p: T) => number): T[] {
  return points
    .map((p, i) => ({ p, i }))
    .sort((a, b) => time(a.p) - time(b.p) || a.i - b.i)
    .map((x) => x.p);
}

/**
 * Whether an arm was overloaded: TTFT (or the queue) kept growing over the run, by the rule of `OverloadOptions`.
 * `requests` are the successful streamed requests; a queue timeline, where the server exposed one, is judged too.
 * Throws RangeError for a non-finite time or value.
 */
export function detectOverload(
  requests: readonly RequestTiming[],
  queue?: readonly QueueSample[] | undefined,
  options?: OverloadOptions | undefined,
): OverloadResult {
  const s = overloadSettings(options);
  for (const [i, r] of requests.entries()) {
    if (!Number.isFinite(r.sendS) || !Number.isFinite(r.ttftMs)) {
      throw new RangeError(`request timing ${i} must be finite, got sendS ${r.sendS}, ttftMs ${r.ttftMs}`);
    }
  }
  for (const [i, q] of (queue ?? []).entries()) {
    if (!Number.isFinite(q.t_s) || !Number.isFinite(q.waiting)) {
      throw new RangeError(`queue sample ${i} must be finite, got t_s ${q.t_s}, waiting ${q.waiting}`);
    }
  }
  const reqs = byTime(requests, (r) => r.sendS);
  const ttft = trend(
    "time_to_first_token",
    Float64Array.from(reqs, (r) => r.sendS),
    Float64Array.from(reqs, (r) => r.ttftMs),
    s,
  );
  let queueEvidence: TrendEvidence | null = null;
  if (queue !== undefined) {
    const qs = byTime(queue, (q) => q.t_s);
    queueEvidence = trend(
      "queue_waiting",
      Float64Array.from(qs, (q) => q.t_s),
      Float64Array.from(qs, (q) => q.waiting),
      s,
    );
  }
  const overloaded = (ttft?.growing ?? false) || (queueEvidence?.growing ?? false);
  return {
    overloaded,
    reason: overloadReason(ttft, queueEvidence, requests.length, s),
    ttft,
    queue: queueEvidence,
  };
}

/** The figures behind the judgement of a signal: `window median 106 → 559 ms (5.25×), +30.2 ms/min, trend p = …`. */
function trendFigures(e: TrendEvidence): string {
  const unit = e.unit === "ms" ? " ms" : " waiting";
  const growth = Number.isFinite(e.growth) ? `${formatNumber(e.growth)}×` : "from 0";
  const slope = `${formatSigned(e.slopePerMin)} ${e.unit}/min`;
  return (
    `window median ${formatNumber(e.first)} → ${formatNumber(e.last)}${unit} (${growth}), ` +
    `${slope}, trend ${formatP(e.trendP)}`
  );
}

function signalName(e: TrendEvidence): string {
  return e.signal === "time_to_first_token" ? "TTFT" : "queue";
}

function overloadReason(
  ttft: TrendEvidence | null,
  queue: TrendEvidence | null,
  requests: number,
  s: OverloadSettings,
): string {
  const growing = [ttft, queue].filter((e): e is TrendEvidence => e?.growing === true);
  if (growing.length > 0) {
    return `overloaded: ${growing.map((e) => `${signalName(e)} keeps growing, ${trendFigures(e)}`).join("; ")}`;
  }
  const judged = [ttft, queue].filter((e): e is TrendEvidence => e !== null);
  if (judged.length === 0) {
    const need = s.minWindows * s.minPerWindow;
    return `not judged: ${requests} requests with a TTFT and no usable queue timeline (need ${need})`;
  }
  return `no sustained growth: ${judged.map((e) => `${signalName(e)} ${trendFigures(e)}`).join("; ")}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Verdicts

export type VerdictDirection = "improvement" | "regression" | "no-difference";

export interface Verdict {
  metric: CompareMetricTag;
  statistic: CompareStatistic;
  direction: VerdictDirection;
  /** One sentence for a report. */
  text: string;
}

/**
 * Renders one statistic of a comparison as a verdict. The call is made on the ratio's interval (the difference's
 * when there is no ratio): a change is called only when the interval excludes no change, and it is an
 * improvement when it goes the metric's good way (down for latencies, up for throughput). The Mann–Whitney
 * p-value is appended as a separate judgement on the whole distribution, significant below `alpha` (0.05).
 */
export function verdict(
  comparison: MetricComparison,
  statistic: CompareStatistic,
  names: { baseline: string; candidate: string },
  options: { alpha?: number | undefined } = {},
): Verdict {
  const alpha = options.alpha ?? DEFAULT_ALPHA;
  const stat = comparison.statistics[statistic];
  const what = `${METRIC_LABELS[comparison.metric]} ${STATISTIC_LABELS[statistic]}`;
  // 95, 99, 99.9: the level as written, not padded to a fixed number of decimals.
  const level = `${Number((comparison.confidence * 100).toFixed(2))} % CI`;
  const { baseline: a, candidate: b } = names;
  let change: number;
  let body: string;
  if (stat.ratio) {
    const r = stat.ratio;
    if (r.lo <= 1 && r.hi >= 1) {
      change = 0;
      body =
        `no significant difference in ${what} between ${b} and ${a} ` +
        `(ratio ${formatNumber(r.estimate)}, ${level} ${formatNumber(r.lo)}–${formatNumber(r.hi)})`;
    } else if (r.hi < 1) {
      change = -1;
      body =
        `${b} cuts ${what} by ${formatPercent(1 - r.estimate)} ` +
        `(${level} ${formatPercent(1 - r.hi, false)}–${formatPercent(1 - r.lo)}) vs ${a}`;
    } else {
      change = 1;
      body =
        `${b} raises ${what} by ${formatPercent(r.estimate - 1)} ` +
        `(${level} ${formatPercent(r.lo - 1, false)}–${formatPercent(r.hi - 1)}) vs ${a}`;
    }
  } else {
    const d = stat.difference;
    const unit = ` ${comparison.unit}`;
    if (d.lo <= 0 && d.hi >= 0) {
      change = 0;
      body =
        `no significant difference in ${what} between ${b} and ${a} ` +
        `(${formatSigned(d.estimate)}${unit}, ${level} ${formatSigned(d.lo)}–${formatSigned(d.hi)}${unit})`;
    } else if (d.hi < 0) {
      change = -1;
      body =
        `${b} cuts ${what} by ${formatNumber(-d.estimate)}${unit} ` +
        `(${level} ${formatNumber(-d.hi)}–${formatNumber(-d.lo)}${unit}) vs ${a}`;
    } else {
      change = 1;
      body =
        `${b} raises ${what} by ${formatNumber(d.estimate)}${unit} ` +
        `(${level} ${formatNumber(d.lo)}–${formatNumber(d.hi)}${unit}) vs ${a}`;
    }
  }
  const p = comparison.shift.p;
  const good = comparison.largerIsBetter ? change > 0 : change < 0;
  const direction: VerdictDirection = change === 0 ? "no-difference" : good ? "improvement" : "regression";
  // Said as better or worse, so that a latency that falls never reads as a loss; and the whole-distribution test
  // is phrased against the statistic's own call, so that the two never seem to contradict each other.
  const judged = change === 0 ? body : `${body} — ${good ? "better" : "worse"}`;
  const shifted = p < alpha;
  const shift =
    change === 0
      ? shifted
        ? `although the distributions as a whole differ (${formatP(p)})`
        : `nor do the distributions as a whole (${formatP(p)})`
      : shifted
        ? `the distributions as a whole differ too (${formatP(p)})`
        : `a change in this statistic only: the distributions as a whole do not differ significantly (${formatP(p)})`;
  return { metric: comparison.metric, statistic, direction, text: `${judged}; ${shift}` };
}

// ---------------------------------------------------------------------------------------------------------------
// Formatting (fixed-point only: locale-dependent formatting would make reports differ between machines)

/** Three significant figures or so: 1234, 123, 12.3, 1.23, 0.12. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  const s = a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
  // Rounding can leave "-0", "-0.0"...: a sign on nothing.
  return /^-0(\.0*)?$/.test(s) ? s.slice(1) : s;
}

function formatSigned(v: number): string {
  const s = formatNumber(v);
  return v > 0 && s !== "0" && !/^0\.0*$/.test(s) ? `+${s}` : s;
}

/** A fraction as a percentage: whole percents from 10 %, one decimal below. */
function formatPercent(fraction: number, withUnit = true): string {
  const pct = fraction * 100;
  const s = Math.abs(pct) >= 10 ? pct.toFixed(0) : pct.toFixed(1);
  return withUnit ? `${s} %` : s;
}

/** `p < 0.001` or `p = 0.012` (two significant figures). */
export function formatP(p: number): string {
  if (p < 0.001) return "p < 0.001";
  return `p = ${p.toPrecision(2)}`;
}
