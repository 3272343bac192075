/**
 * The A/B report's charts: ECharts option objects built from each arm's measurements, and their server-side SVG
 * rendering. Options hold plain data only (no callbacks), so the HTML report can embed them as JSON and hand them
 * to ECharts in the browser for the interactive version; the static SVG comes from the very same object.
 */

import { createRequire } from "node:module";
import type {
  BarSeriesOption,
  EChartsOption,
  LineSeriesOption,
  XAXisComponentOption,
  YAXisComponentOption,
} from "echarts";
import { METRICS, type RecordMetricTag } from "../metrics/aiperf-metrics.ts";
import { percentileOfSorted } from "../metrics/summary.ts";
import { formatNumber } from "./compare.ts";

/**
 * ECharts' single-file CommonJS build, loaded on the first render: it loads in about a fifth of the time of the
 * package's ES-module tree, and commands that draw nothing never load it.
 */
let echartsModule: typeof import("echarts") | undefined;
const echartsBundle = (): typeof import("echarts") =>
  (echartsModule ??= createRequire(import.meta.url)("echarts") as typeof import("echarts"));

export type NumberArray = Float64Array | readonly number[];

/** One sample of a server's scheduler state, `t_s` seconds into the run (the simulator's timeline). */
export interface ChartTimelineSample {
  t_s: number;
  waiting: number;
  running: number;
  kv_usage: number;
}

/** Load of one routing target (`worker/dp_rank`) over a run. */
export interface ChartTargetStat {
  target: string;
  requests: number;
  /** Fraction of prompt tokens served from the prefix cache, 0–1. */
  hit_rate: number;
  /** A decode rank receives its KV from prefill: it has requests but no prefix-cache hit rate. */
  role?: string;
}

/** A point estimate with an optional confidence interval. */
export interface ChartEstimate {
  value: number;
  lo?: number | undefined;
  hi?: number | undefined;
}

/** What the charts need of one arm. Shaped so a report's `ArmArtifacts` can be passed as is, plus the extras. */
export interface ArmChartData {
  name: string;
  /** Per-request values in the metric's display unit (ms for times); non-finite values are ignored. */
  values: Readonly<Partial<Record<RecordMetricTag, NumberArray>>>;
  /** Send time of each request (seconds since the arm's first send), paired index by index with `ttftMs`. */
  sendTimesS: NumberArray;
  ttftMs: NumberArray;
  timeline?: readonly ChartTimelineSample[] | undefined;
  targets?: readonly ChartTargetStat[] | undefined;
  /** Good requests per second. */
  goodput?: ChartEstimate | undefined;
  /** Fraction of requests meeting every SLO, 0–1. */
  sloAttainment?: ChartEstimate | undefined;
  /** Requests per second the schedule offered, marked on the goodput panel (goodput cannot exceed it). */
  offeredRate?: number | undefined;
}

export type AxisScale = "auto" | "log" | "linear";

/** Colour-blind-safe (Tableau 10); arm i gets colour i in every chart so a reader can match them across charts. */
export const ARM_COLORS = [
  "#4e79a7",
  "#f28e2b",
  "#59a14f",
  "#e15759",
  "#b07aa1",
  "#76b7b2",
  "#edc948",
  "#ff9da7",
  "#9c755f",
  "#bab0ac",
] as const;

export function armColor(index: number): string {
  return ARM_COLORS[index % ARM_COLORS.length]!;
}

const TEXT_COLOR = "#333";
/** Subtitle text: 12 px, about 7 px a character in DejaVu Sans; a line is 16 px. */
const SUBTITLE_CHAR_PX = 7;
const SUBTITLE_LINE_PX = 16;

/**
 * A title with its subtitle wrapped to the chart's width (at " · " separators, else at spaces), so that a long list
 * of arms is never cut off at the edges; `extraTop` is the height the lines past the first take, which the plot
 * areas must leave free.
 */
export function titleLayout(text: string, subtext: string | undefined, chartWidth = DEFAULT_CHART_WIDTH) {
  if (subtext === undefined) return { title: { text, left: "center" }, extraTop: 0 };
  const max = Math.floor((chartWidth - 40) / SUBTITLE_CHAR_PX);
  const parts = subtext.includes(" · ") ? subtext.split(" · ") : subtext.split(" ");
  const sep = subtext.includes(" · ") ? " · " : " ";
  const lines: string[] = [];
  for (const part of parts) {
    const last = lines[lines.length - 1];
    if (last !== undefined && last.length + sep.length + part.length <= max)
      lines[lines.length - 1] = last + sep + part;
    else lines.push(part);
  }
  return {
    title: {
      text,
      subtext: lines.join("\n"),
      left: "center",
      subtextStyle: { lineHeight: SUBTITLE_LINE_PX },
    },
    extraTop: (lines.length - 1) * SUBTITLE_LINE_PX,
  };
}

/** Legend text: 12 px; its average glyph in DejaVu Sans (the PNG's font) is about 7 px wide, Arial's less. */
const LEGEND_CHAR_PX = 7.2;
const LEGEND_ICON_PX = 30;
const LEGEND_GAP_PX = 14;
const LEGEND_ROW_PX = 26;
/** Names longer than this are cut with an ellipsis (the tooltip and the tables still give them whole). */
const LEGEND_MAX_CHARS = 40;

/**
 * A legend along the bottom, and the height it takes. Server-side, ECharts lays text out with Arial's widths,
 * while the PNG (and many a browser showing the SVG) draws it in DejaVu Sans, up to about an eighth wider: every
 * entry gets a fixed text width, measured at DejaVu's, so both lay out alike. Entries that do not fit one row wrap;
 * `extra` is the height the rows past the first take, which the plot areas must leave free.
 */
export function legendLayout(names: readonly string[], chartWidth = DEFAULT_CHART_WIDTH) {
  const longest = Math.min(
    LEGEND_MAX_CHARS,
    names.reduce((m, s) => Math.max(m, s.length), 0),
  );
  const textWidth = Math.ceil(longest * LEGEND_CHAR_PX);
  const item = LEGEND_ICON_PX + textWidth + LEGEND_GAP_PX;
  const perRow = Math.max(1, Math.floor((chartWidth - 40) / item));
  const rows = Math.max(1, Math.ceil(names.length / perRow));
  return {
    legend: {
      bottom: 8,
      left: "center",
      width: chartWidth - 40,
      itemGap: LEGEND_GAP_PX,
      textStyle: { width: textWidth, overflow: "truncate" as const },
      data: [...names],
    },
    extra: (rows - 1) * LEGEND_ROW_PX,
  };
}
/**
 * Stacked panels share one x scale, so their plot areas must line up exactly: ECharts' default shrinks each grid
 * on its own to fit its labels. The margins below leave room for labels up to about 7 characters.
 */
const FIXED_BOUNDS = { outerBoundsMode: "none" } as const;
const GUIDE_COLOR = "#999";
const SLO_COLOR = "#a11";

// ---------------------------------------------------------------------------------------------------------------
// Numeric helpers

function sortedFinite(values: ArrayLike<number> | undefined): Float64Array {
  if (values === undefined) return new Float64Array(0);
  const out = new Float64Array(values.length);
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isFinite(v)) out[n++] = v;
  }
  return out.subarray(0, n).sort();
}

/**
 * Six significant digits: far below a pixel on any chart, and it keeps the embedded JSON (and the SVG's path data)
 * a fraction of the size full doubles would take.
 */
function round6(v: number): number {
  return v === 0 ? 0 : Number(v.toPrecision(6));
}

/** 1, 2 or 5 times a power of ten, at least `raw`: window widths a reader can take in at a glance. */
function niceStep(raw: number): number {
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const pow = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * pow >= raw * (1 - 1e-12)) return m * pow;
  return 10 * pow;
}

/** Orders `w2/dp10` after `w2/dp9`: digit runs compare as numbers. Locale-free, so every machine agrees. */
export function naturalCompare(a: string, b: string): number {
  const re = /(\d+)|(\D+)/g;
  const pa = a.match(re) ?? [];
  const pb = b.match(re) ?? [];
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i]!;
    const y = pb[i]!;
    if (x === y) continue;
    const dx = /^\d/.test(x);
    const dy = /^\d/.test(y);
    if (dx && dy) {
      const d = Number(x) - Number(y);
      if (d !== 0) return d;
      // Same number, different zero padding: shorter first, for a total order.
      return x.length - y.length;
    }
    return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}

/**
 * Whether values are better read on a log axis: all positive and the arms together spanning well over an order of
 * magnitude. The low end is each arm's 1st percentile rather than its minimum, so a single unusually fast request
 * does not flip the axis; the high end is the maximum, since the tail is what the reader is looking for.
 */
export function prefersLogScale(sortedArms: readonly ArrayLike<number>[]): boolean {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const s of sortedArms) {
    if (s.length === 0) continue;
    if (!(s[0]! > 0)) return false;
    lo = Math.min(lo, percentileOfSorted(s, 1));
    hi = Math.max(hi, s[s.length - 1]!);
  }
  return Number.isFinite(lo) && hi / lo >= LOG_SCALE_RATIO;
}

const LOG_SCALE_RATIO = 30;

function resolveScale(scale: AxisScale, sortedArms: readonly ArrayLike<number>[]): "log" | "linear" {
  const positive = sortedArms.every((s) => s.length === 0 || s[0]! > 0);
  // A log axis cannot place zero or negative values; asking for one then gets the linear axis instead of a chart
  // that silently drops requests.
  if (scale === "log") return positive ? "log" : "linear";
  if (scale === "linear") return "linear";
  return prefersLogScale(sortedArms) ? "log" : "linear";
}

// ---------------------------------------------------------------------------------------------------------------
// CDF

/** Percentiles whose CDF points are always kept, so the curve crosses the p50/p90/p99 guides where the data does. */
const ANCHOR_PERCENTILES = [1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9] as const;

export interface CdfDownsampleOptions {
  /** Most points returned; 500 by default, at least 16. */
  maxPoints?: number;
  /** Space the kept points evenly in log10(value) instead of value (for a log axis; needs positive values). */
  log?: boolean;
}

/**
 * Points `[value, fraction]` of the empirical CDF of ascending `sorted` values, the i-th (0-based) at
 * `(sorted[i], (i + 1) / n)`, thinned to at most `maxPoints`. Every kept point is an actual sample, and
 * consecutive kept points are never more than about 1/250 of the fraction range or of the value range apart, so
 * the drawn curve stays within a pixel or two of the full one. The first and last samples and the anchor
 * percentiles are always kept, and around a jump in value both sides of the jump are kept so the gap is drawn
 * where it is. Input of at most `maxPoints` values is returned whole.
 */
export function downsampleCdf(
  sorted: ArrayLike<number>,
  options: CdfDownsampleOptions = {},
): Array<[number, number]> {
  const maxPoints = options.maxPoints ?? 500;
  if (!Number.isInteger(maxPoints) || maxPoints < 16) {
    throw new RangeError(`maxPoints must be an integer of at least 16, got ${maxPoints}`);
  }
  const n = sorted.length;
  for (let i = 1; i < n; i++) {
    if (!(sorted[i]! >= sorted[i - 1]!)) throw new RangeError("downsampleCdf needs ascending finite values");
  }
  const point = (i: number): [number, number] => [sorted[i]!, (i + 1) / n];
  if (n <= maxPoints) return Array.from({ length: n }, (_, i) => point(i));

  const useLog = options.log === true && sorted[0]! > 0;
  const pos = (v: number): number => (useLog ? Math.log10(v) : v);
  const keep = new Uint8Array(n);
  keep[0] = 1;
  keep[n - 1] = 1;
  for (const p of ANCHOR_PERCENTILES) keep[Math.max(0, Math.ceil((p / 100) * n) - 1)] = 1;
  // Budget: rank-triggered points at most kRank, value-triggered ones at most kValue each plus the sample before
  // the jump, and the fixed points above; together no more than maxPoints.
  const free = maxPoints - 2 - ANCHOR_PERCENTILES.length;
  const kRank = Math.floor(free / 2);
  const kValue = Math.floor((free - kRank) / 2);
  const rankStep = kRank > 0 ? n / kRank : Number.POSITIVE_INFINITY;
  const span = pos(sorted[n - 1]!) - pos(sorted[0]!);
  const valueStep = kValue > 0 && span > 0 ? span / kValue : Number.POSITIVE_INFINITY;
  let last = 0;
  for (let i = 1; i < n; i++) {
    if (i - last >= rankStep) {
      keep[i] = 1;
    } else if (pos(sorted[i]!) - pos(sorted[last]!) >= valueStep) {
      keep[i] = 1;
      keep[i - 1] = 1;
    }
    if (keep[i] === 1) last = i;
  }
  const out: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) if (keep[i] === 1) out.push(point(i));
  return out;
}

export interface CdfChartOptions {
  title?: string;
  /** "auto" (the default) picks a log axis when the values span well over an order of magnitude. */
  xScale?: AxisScale;
  /** Points per arm; 500 by default. */
  maxPoints?: number;
  /** A goodput SLO on this metric: marked as a vertical line at its threshold. */
  slo?: { threshold: number; largerIsBetter: boolean } | undefined;
}

/** Horizontal guides at the percentiles people quote. */
const CDF_GUIDES = [
  [0.5, "p50"],
  [0.9, "p90"],
  [0.99, "p99"],
] as const;

/**
 * The CDF of one per-request metric, one line per arm: x is the value (in the metric's display unit), y the
 * fraction of that arm's requests at or below it. Arms without values for the metric get an empty series, so
 * legend and colours stay aligned across charts.
 */
export function cdfChartOption(
  arms: readonly ArmChartData[],
  metric: RecordMetricTag,
  options: CdfChartOptions = {},
): EChartsOption {
  const info = METRICS[metric];
  const sorted = arms.map((a) => sortedFinite(a.values[metric]));
  const scale = resolveScale(options.xScale ?? "auto", sorted);
  const series: LineSeriesOption[] = arms.map((arm, i) => {
    const s = sorted[i]!;
    const pts = downsampleCdf(s, { maxPoints: options.maxPoints ?? 500, log: scale === "log" });
    // The empirical CDF rises from 0 at the smallest value; with step "end" each sample is a vertical jump.
    const data: Array<[number, number]> = pts.length > 0 ? [[round6(s[0]!), 0]] : [];
    for (const [x, y] of pts) data.push([round6(x), round6(y)]);
    return {
      type: "line",
      name: arm.name,
      data,
      step: "end",
      color: armColor(i),
      lineStyle: { width: 2 },
      showSymbol: false,
      emphasis: { focus: "series" },
    };
  });
  const first = series[0];
  if (first !== undefined) {
    first.markLine = {
      silent: true,
      symbol: "none",
      animation: false,
      lineStyle: { type: "dashed", color: GUIDE_COLOR, width: 1 },
      data: [
        ...CDF_GUIDES.map(([y, label]) => ({
          yAxis: y,
          label: { formatter: label, position: "insideStartTop" as const, color: GUIDE_COLOR },
        })),
        ...(options.slo
          ? [
              {
                xAxis: options.slo.threshold,
                lineStyle: { type: "solid" as const, color: SLO_COLOR, width: 1.5 },
                label: {
                  formatter: `SLO ${options.slo.largerIsBetter ? "≥" : "≤"} ${formatNumber(options.slo.threshold)} ${info.unit}`,
                  position: "insideEndTop" as const,
                  color: SLO_COLOR,
                },
              },
            ]
          : []),
      ],
    };
  }
  const axisName = `${info.header} (${info.unit})${scale === "log" ? ", log scale" : ""}`;
  const xAxis: XAXisComponentOption =
    scale === "log"
      ? {
          type: "log",
          logBase: 10,
          name: axisName,
          minorTick: { show: true },
          minorSplitLine: { show: true, lineStyle: { color: "#f0f0f0" } },
        }
      : { type: "value", name: axisName, scale: false };
  const legendOf = legendLayout(arms.map((a) => a.name));
  const titled = titleLayout(
    options.title ?? `${info.header}: CDF`,
    `requests: ${arms.map((a, i) => `${a.name} ${sorted[i]!.length}`).join(" · ")}`,
  );
  return {
    color: [...ARM_COLORS],
    title: titled.title,
    legend: legendOf.legend,
    tooltip: { trigger: "axis" },
    grid: { left: 70, right: 40, top: 80 + titled.extraTop, bottom: 90 + legendOf.extra },
    xAxis: { ...xAxis, nameLocation: "middle", nameGap: 30 } as XAXisComponentOption,
    yAxis: {
      type: "value",
      min: 0,
      max: 1,
      interval: 0.1,
      name: "fraction of requests",
      nameLocation: "middle",
      nameGap: 45,
    },
    series,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Time series

export interface TimeSeriesChartOptions {
  title?: string;
  /** Width of the TTFT windows in seconds; by default a round number giving about 100 windows over the run. */
  windowS?: number;
  yScale?: AxisScale;
}

/** Queue timelines longer than this are thinned to a min/max envelope. */
const MAX_TIMELINE_POINTS = 1600;

/**
 * Thins `(x, y)` samples (ascending x) by cutting x into `bins` equal bins and keeping, per bin, its first, lowest,
 * highest and last sample in their original order: spikes (a queue building up for a moment) survive, which an
 * average or a stride would smooth away.
 */
export function envelopeDownsample(
  xs: ArrayLike<number>,
  ys: ArrayLike<number>,
  bins: number,
): Array<[number, number]> {
  const n = Math.min(xs.length, ys.length);
  if (n <= bins * 4) return Array.from({ length: n }, (_, i) => [xs[i]!, ys[i]!]);
  const x0 = xs[0]!;
  const width = (xs[n - 1]! - x0) / bins || 1;
  const keep = new Uint8Array(n);
  let start = 0;
  while (start < n) {
    const bin = Math.min(bins - 1, Math.floor((xs[start]! - x0) / width));
    let end = start;
    let lo = start;
    let hi = start;
    while (end + 1 < n && Math.min(bins - 1, Math.floor((xs[end + 1]! - x0) / width)) === bin) {
      end++;
      if (ys[end]! < ys[lo]!) lo = end;
      if (ys[end]! > ys[hi]!) hi = end;
    }
    keep[start] = 1;
    keep[lo] = 1;
    keep[hi] = 1;
    keep[end] = 1;
    start = end + 1;
  }
  const out: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) if (keep[i] === 1) out.push([xs[i]!, ys[i]!]);
  return out;
}

interface WindowStats {
  /** Window centre, seconds since start. */
  t: number;
  p50: number;
  p90: number;
}

/** TTFT percentiles per window of send time; windows without a request are left out. */
function windowedTtft(arm: ArmChartData, windowS: number): WindowStats[] {
  if (arm.sendTimesS.length !== arm.ttftMs.length) {
    throw new RangeError(
      `arm ${JSON.stringify(arm.name)}: sendTimesS has ${arm.sendTimesS.length} entries but ttftMs ${arm.ttftMs.length}`,
    );
  }
  const byWindow = new Map<number, number[]>();
  for (let i = 0; i < arm.sendTimesS.length; i++) {
    const t = arm.sendTimesS[i]!;
    const v = arm.ttftMs[i]!;
    if (!Number.isFinite(t) || !Number.isFinite(v)) continue;
    const k = Math.floor(t / windowS);
    let bucket = byWindow.get(k);
    if (bucket === undefined) {
      bucket = [];
      byWindow.set(k, bucket);
    }
    bucket.push(v);
  }
  return [...byWindow.keys()]
    .sort((a, b) => a - b)
    .map((k) => {
      const s = Float64Array.from(byWindow.get(k)!).sort();
      return { t: (k + 0.5) * windowS, p50: percentileOfSorted(s, 50), p90: percentileOfSorted(s, 90) };
    });
}

/** Line data with a break (null) wherever consecutive windows are not adjacent: no requests were sent there. */
function gappedLine(
  windows: readonly WindowStats[],
  pick: (w: WindowStats) => number,
  windowS: number,
): Array<[number, number | null]> {
  const out: Array<[number, number | null]> = [];
  for (let i = 0; i < windows.length; i++) {
    const w = windows[i]!;
    const prev = windows[i - 1];
    if (prev !== undefined && w.t - prev.t > windowS * 1.5) out.push([round6((prev.t + w.t) / 2), null]);
    out.push([round6(w.t), round6(pick(w))]);
  }
  return out;
}

/**
 * TTFT over the run, per arm: the median (solid) and 90th percentile (dashed) of the requests sent in each window
 * of trace time, so a queue building up shows as a rising line instead of a cloud of points. Below it, when any
 * arm has a scheduler timeline, the number of waiting requests over the same time axis.
 */
export function timeSeriesChartOption(
  arms: readonly ArmChartData[],
  options: TimeSeriesChartOptions = {},
): EChartsOption {
  let end = 0;
  for (const a of arms) {
    for (let i = 0; i < a.sendTimesS.length; i++) {
      const t = a.sendTimesS[i]!;
      if (Number.isFinite(t)) end = Math.max(end, t);
    }
    for (const s of a.timeline ?? []) if (Number.isFinite(s.t_s)) end = Math.max(end, s.t_s);
  }
  if (options.windowS !== undefined && !(options.windowS > 0)) {
    throw new RangeError(`windowS must be positive, got ${options.windowS}`);
  }
  const windowS = options.windowS ?? niceStep(end / 100);
  const xMax = Math.max(windowS, Math.ceil(end / windowS - 1e-9) * windowS);
  const windows = arms.map((a) => windowedTtft(a, windowS));
  const ttftSorted = windows.map((ws) =>
    Float64Array.from(ws.flatMap((w) => [w.p50, w.p90]).filter(Number.isFinite)).sort(),
  );
  const yScale = resolveScale(options.yScale ?? "auto", ttftSorted);
  const hasQueue = arms.some((a) => (a.timeline?.length ?? 0) > 0);

  const series: LineSeriesOption[] = [];
  arms.forEach((arm, i) => {
    const color = armColor(i);
    series.push({
      type: "line",
      name: arm.name,
      data: gappedLine(windows[i]!, (w) => w.p50, windowS),
      color,
      lineStyle: { width: 2 },
      showSymbol: windows[i]!.length <= 1,
      xAxisIndex: 0,
      yAxisIndex: 0,
    });
    series.push({
      type: "line",
      name: `${arm.name} p90`,
      data: gappedLine(windows[i]!, (w) => w.p90, windowS),
      color,
      lineStyle: { width: 1.25, type: "dashed" },
      showSymbol: windows[i]!.length <= 1,
      xAxisIndex: 0,
      yAxisIndex: 0,
    });
  });
  if (hasQueue) {
    arms.forEach((arm, i) => {
      const tl = (arm.timeline ?? []).filter((s) => Number.isFinite(s.t_s) && Number.isFinite(s.waiting));
      const thin = envelopeDownsample(
        tl.map((s) => s.t_s),
        tl.map((s) => s.waiting),
        MAX_TIMELINE_POINTS / 4,
      );
      series.push({
        // The same name as the arm's TTFT line: one legend entry toggles the arm in both panels.
        type: "line",
        name: arm.name,
        data: thin.map(([t, w]) => [round6(t), round6(w)]),
        color: armColor(i),
        lineStyle: { width: 1.5 },
        showSymbol: thin.length <= 1,
        xAxisIndex: 1,
        yAxisIndex: 1,
      });
    });
  }

  const timeAxis = (gridIndex: number, named: boolean): XAXisComponentOption => ({
    type: "value",
    gridIndex,
    min: 0,
    max: round6(xMax),
    ...(named ? { name: "seconds since start", nameLocation: "middle", nameGap: 28 } : {}),
  });
  const ttftAxis: YAXisComponentOption = {
    type: yScale === "log" ? "log" : "value",
    gridIndex: 0,
    name: `TTFT (ms)${yScale === "log" ? ", log scale" : ""}`,
    nameLocation: "middle",
    nameGap: 60,
  };
  const legendNames = arms.flatMap((a) => [a.name, `${a.name} p90`]);
  const legendOf = legendLayout(legendNames);
  return {
    color: [...ARM_COLORS],
    title: {
      text: options.title ?? "TTFT over the run",
      subtext: `median (solid) and p90 (dashed) of requests sent in each ${round6(windowS)} s window`,
      left: "center",
    },
    legend: legendOf.legend,
    tooltip: { trigger: "axis" },
    axisPointer: { link: [{ xAxisIndex: "all" }] },
    grid: hasQueue
      ? [
          { ...FIXED_BOUNDS, left: 85, right: 40, top: 80, bottom: "47%" },
          { ...FIXED_BOUNDS, left: 85, right: 40, top: "60%", bottom: 90 + legendOf.extra },
        ]
      : [{ left: 85, right: 40, top: 80, bottom: 90 + legendOf.extra }],
    xAxis: hasQueue ? [timeAxis(0, false), timeAxis(1, true)] : [timeAxis(0, true)],
    yAxis: hasQueue
      ? [
          ttftAxis,
          {
            type: "value",
            gridIndex: 1,
            name: "waiting requests",
            nameLocation: "middle",
            nameGap: 60,
            minInterval: 1,
          },
        ]
      : [ttftAxis],
    series,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Per-target load

export interface TargetChartOptions {
  title?: string;
}

/** Ratio of the busiest target's requests to the mean: 1 is a perfectly even spread. */
function imbalance(targets: readonly ChartTargetStat[]): number {
  if (targets.length === 0) return Number.NaN;
  let sum = 0;
  let max = 0;
  for (const t of targets) {
    sum += t.requests;
    max = Math.max(max, t.requests);
  }
  return sum > 0 ? max / (sum / targets.length) : Number.NaN;
}

/**
 * Requests (top) and prefix-cache hit rate (bottom) per routing target, bars grouped by arm. Targets are the union
 * over arms in natural order (`w0/dp2` before `w0/dp10`), a target an arm never used showing no bar. Labels turn
 * vertical and shrink as targets multiply, so 64 targets still get one readable label each.
 */
export function targetChartOption(
  arms: readonly ArmChartData[],
  options: TargetChartOptions = {},
): EChartsOption {
  const withTargets = arms.map((a, i) => ({ arm: a, color: armColor(i) })).filter((a) => a.arm.targets);
  const names = [...new Set(withTargets.flatMap((a) => a.arm.targets!.map((t) => t.target)))].sort(
    naturalCompare,
  );
  const many = names.length > 12;
  const fontSize = names.length > 48 ? 9 : names.length > 24 ? 10 : 12;
  const longest = names.reduce((m, s) => Math.max(m, s.length), 0);
  // Room under the lower panel for vertical labels: about 0.6 em per character.
  const labelSpace = many ? Math.ceil(longest * fontSize * 0.62) + 8 : fontSize + 10;
  const series: BarSeriesOption[] = [];
  for (const { arm, color } of withTargets) {
    const byName = new Map(arm.targets!.map((t) => [t.target, t]));
    const common = { type: "bar" as const, name: arm.name, color, barMaxWidth: 28 };
    /** One grid's bars: a target's value, or a gap where it has none. */
    const bars = (grid: number, value: (t: ChartTargetStat | undefined) => number | undefined) => ({
      ...common,
      xAxisIndex: grid,
      yAxisIndex: grid,
      data: names.map((n) => {
        const v = value(byName.get(n));
        return v === undefined || !Number.isFinite(v) ? null : v;
      }),
    });
    series.push(
      bars(0, (t) => t?.requests),
      bars(1, (t) =>
        t?.hit_rate === undefined || t.role === "decode" ? undefined : round6(t.hit_rate * 100),
      ),
    );
  }
  const spread = withTargets
    .map(({ arm }) => {
      // Prefill and decode ranks carry different loads by design: each pool's balance is its own.
      const pools = [...new Set(arm.targets!.map((t) => t.role ?? ""))];
      return pools.length === 1
        ? `${arm.name} ${formatNumber(imbalance(arm.targets!))}`
        : `${arm.name} ${pools.map((p) => `${p} ${formatNumber(imbalance(arm.targets!.filter((t) => (t.role ?? "") === p)))}`).join(", ")}`;
    })
    .join(" · ");
  const categoryAxis = (gridIndex: number, labelled: boolean): XAXisComponentOption => ({
    type: "category",
    gridIndex,
    data: names,
    axisTick: { alignWithLabel: true },
    axisLabel: labelled
      ? { interval: names.length <= 96 ? 0 : "auto", rotate: many ? 90 : 0, fontSize }
      : { show: false },
    ...(labelled && !many ? { name: "target", nameLocation: "middle", nameGap: labelSpace + 8 } : {}),
  });
  const legendOf = legendLayout(withTargets.map((a) => a.arm.name));
  const titled = titleLayout(
    options.title ?? "Load and prefix-cache hit rate per target",
    withTargets.length > 0 ? `busiest target / mean requests: ${spread}` : "no per-target data",
  );
  return {
    color: [...ARM_COLORS],
    title: titled.title,
    legend: legendOf.legend,
    tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
    grid: [
      { ...FIXED_BOUNDS, left: 85, right: 30, top: 80 + titled.extraTop, bottom: "55%" },
      {
        ...FIXED_BOUNDS,
        left: 85,
        right: 30,
        top: "52%",
        bottom: labelSpace + (many ? 50 : 70) + legendOf.extra,
      },
    ],
    xAxis: [categoryAxis(0, false), categoryAxis(1, true)],
    yAxis: [
      { type: "value", gridIndex: 0, name: "requests", nameLocation: "middle", nameGap: 60, minInterval: 1 },
      {
        type: "value",
        gridIndex: 1,
        min: 0,
        max: 100,
        name: "hit rate (%)",
        nameLocation: "middle",
        nameGap: 60,
      },
    ],
    series,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Goodput

export interface GoodputChartOptions {
  title?: string;
  /** Shown under the title, e.g. the SLOs and the interval's confidence level. */
  subtitle?: string;
}

function finiteOrNull(v: number | undefined): number | null {
  return v !== undefined && Number.isFinite(v) ? v : null;
}

/**
 * One panel's series: a bar per arm coloured as the arm, and, for arms with an interval, a vertical error bar
 * drawn as a two-point line with flat caps. (ECharts has no error-bar series, and a custom series would need a
 * render callback, which cannot travel in the JSON the HTML embeds.) The value is printed above the bar, or above
 * the interval's cap when there is one, so the two never overlap.
 */
function estimateSeries(
  arms: readonly ArmChartData[],
  pick: (a: ArmChartData) => ChartEstimate | undefined,
  scale: number,
  unit: string,
  axisIndex: number,
): Array<BarSeriesOption | LineSeriesOption> {
  const label = (v: number) => `${formatNumber(v)}${unit}`;
  const bar: BarSeriesOption = {
    type: "bar",
    name: axisIndex === 0 ? "goodput" : "SLO attainment",
    xAxisIndex: axisIndex,
    yAxisIndex: axisIndex,
    barMaxWidth: 60,
    data: arms.map((a, i) => {
      const e = pick(a);
      const v = finiteOrNull(e?.value);
      const hasCi = finiteOrNull(e?.lo) !== null && finiteOrNull(e?.hi) !== null;
      return {
        value: v === null ? null : round6(v * scale),
        itemStyle: { color: armColor(i) },
        label: { show: v !== null && !hasCi, position: "top", formatter: v === null ? "" : label(v * scale) },
      };
    }),
  };
  const out: Array<BarSeriesOption | LineSeriesOption> = [bar];
  for (const a of arms) {
    const e = pick(a);
    const v = finiteOrNull(e?.value);
    const lo = finiteOrNull(e?.lo);
    const hi = finiteOrNull(e?.hi);
    if (lo === null || hi === null) continue;
    out.push({
      type: "line",
      name: `${a.name} interval`,
      xAxisIndex: axisIndex,
      yAxisIndex: axisIndex,
      symbol: "rect",
      symbolSize: [16, 2],
      color: TEXT_COLOR,
      lineStyle: { color: TEXT_COLOR, width: 1.5 },
      z: 3,
      data: [
        [a.name, round6(lo * scale)],
        {
          value: [a.name, round6(hi * scale)],
          label: {
            show: v !== null,
            position: "top",
            formatter: v === null ? "" : label(v * scale),
            color: TEXT_COLOR,
          },
        },
      ],
    });
  }
  return out;
}

/** Two panels side by side, leaving `bottom` pixels under them for axes and legend. */
export function sideBySideGrids(bottom: number, left = 70) {
  return [
    { left, right: "54%", top: 90, bottom },
    { left: "58%", right: 30, top: 90, bottom },
  ];
}

/** Goodput (req/s) on the left panel, SLO attainment (%) on the right. */
export const GOODPUT_ATTAINMENT_AXES: YAXisComponentOption[] = [
  { type: "value", gridIndex: 0, min: 0, name: "goodput (req/s)", nameLocation: "middle", nameGap: 45 },
  {
    type: "value",
    gridIndex: 1,
    min: 0,
    max: 100,
    name: "SLO attainment (%)",
    nameLocation: "middle",
    nameGap: 40,
  },
];

/** A dashed line on the goodput panel at the highest offered request rate: the ceiling goodput can reach. */
function withOfferedLoad(
  series: Array<BarSeriesOption | LineSeriesOption>,
  arms: readonly ArmChartData[],
): Array<BarSeriesOption | LineSeriesOption> {
  const offered = Math.max(...arms.map((a) => a.offeredRate ?? Number.NaN).filter(Number.isFinite));
  const bar = series[0];
  if (!Number.isFinite(offered) || !bar) return series;
  bar.markLine = {
    silent: true,
    symbol: "none",
    animation: false,
    lineStyle: { type: "dashed", color: GUIDE_COLOR, width: 1 },
    data: [
      {
        yAxis: round6(offered),
        label: {
          formatter: `offered ${formatNumber(offered)} req/s`,
          position: "insideEndTop",
          color: GUIDE_COLOR,
        },
      },
    ],
  };
  return series;
}

/**
 * Goodput (good requests per second) and SLO attainment (% of requests meeting every SLO) per arm, side by side,
 * with the confidence intervals given. An arm without a figure keeps its slot, empty.
 */
export function goodputChartOption(
  arms: readonly ArmChartData[],
  options: GoodputChartOptions = {},
): EChartsOption {
  const names = arms.map((a) => a.name);
  const categoryAxis = (gridIndex: number): XAXisComponentOption => ({
    type: "category",
    gridIndex,
    data: names,
    axisLabel: { interval: 0, rotate: names.length > 4 ? 30 : 0 },
  });
  return {
    color: [...ARM_COLORS],
    title: {
      text: options.title ?? "Goodput and SLO attainment",
      ...(options.subtitle !== undefined ? { subtext: options.subtitle } : {}),
      left: "center",
    },
    tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
    grid: sideBySideGrids(60),
    xAxis: [categoryAxis(0), categoryAxis(1)],
    yAxis: GOODPUT_ATTAINMENT_AXES,
    series: [
      ...withOfferedLoad(
        estimateSeries(arms, (a) => a.goodput, 1, " req/s", 0),
        arms,
      ),
      ...estimateSeries(arms, (a) => a.sloAttainment, 100, " %", 1),
    ],
  };
}

// ---------------------------------------------------------------------------------------------------------------
// SVG

export interface SvgRenderOptions {
  /** Pixels; 960 by 480 by default. */
  width?: number;
  height?: number;
  /**
   * Prefix of the SVG's ids and CSS classes. Inline SVGs share one id and style namespace in an HTML page, so
   * every chart on a page needs its own; letters, digits, `_` and `-`, starting with a letter.
   */
  idPrefix?: string;
}

export const DEFAULT_CHART_WIDTH = 960;
export const DEFAULT_CHART_HEIGHT = 480;

/**
 * ECharts' SVG renderer numbers ids and CSS classes from process-wide counters (`zr3-c0`, `zr3-cls-17`), so the
 * same chart renders differently depending on what was rendered before it. Renames them, in order of first
 * appearance, under `prefix`. Only attribute values and the selectors of the embedded style sheet are touched:
 * chart text is XML-escaped, so it cannot contain a `"` and is never matched.
 */
function normalizeSvgIds(svg: string, prefix: string): string {
  const zr = /(?:id|class)="(zr\d+)-/.exec(svg)?.[1];
  if (zr === undefined) return svg;
  const classes = new Map<string, string>();
  const rename = (token: string): string => {
    const cls = /^-cls-(\d+)$/.exec(token);
    if (cls === null) return `${prefix}${token}`;
    let name = classes.get(token);
    if (name === undefined) {
      name = `${prefix}-s${classes.size}`;
      classes.set(token, name);
    }
    return name;
  };
  const token = `${zr}(-[A-Za-z]+-?\\d+)`;
  return svg
    .replace(
      new RegExp(`((?:id|class|clip-path|fill|stroke|mask|filter|href)="(?:url\\(#|#)?)${token}`, "g"),
      (_, lead: string, t: string) => `${lead}${rename(t)}`,
    )
    .replace(new RegExp(`^\\.${token}(?=[:\\s{])`, "gm"), (_, t: string) => `.${rename(t)}`);
}

/**
 * Renders an option to a standalone SVG document of a fixed size, animation off, on a white background unless
 * the option sets one. The output depends only on the arguments: the same option and size give the same bytes
 * whatever was rendered before. The option is not modified.
 */
export function renderChartSvg(option: EChartsOption, options: SvgRenderOptions = {}): string {
  const width = options.width ?? DEFAULT_CHART_WIDTH;
  const height = options.height ?? DEFAULT_CHART_HEIGHT;
  const prefix = options.idPrefix ?? "chart";
  for (const [what, v] of [
    ["width", width],
    ["height", height],
  ] as const) {
    if (!Number.isInteger(v) || v <= 0) throw new RangeError(`${what} must be a positive integer, got ${v}`);
  }
  if (!/^[A-Za-z][\w-]*$/.test(prefix)) {
    throw new RangeError(
      `idPrefix must be a letter then letters, digits, _ or -, got ${JSON.stringify(prefix)}`,
    );
  }
  const chart = echartsBundle().init(null, null, { renderer: "svg", ssr: true, width, height });
  try {
    // ECharts normalizes options in place (legacy forms, defaults); a deep copy keeps the caller's object intact.
    chart.setOption({ backgroundColor: "#fff", ...structuredClone(option), animation: false });
    return normalizeSvgIds(chart.renderToSVGString(), prefix);
  } finally {
    // Also stops the instance's animation loop, which would otherwise keep the process alive.
    chart.dispose();
  }
}
