import { percentileOfSorted } from "../metrics/summary.ts";
import type { HistogramSample, MetricFamily } from "./server-metrics-families.ts";
import { ESTIMATE_QUANTILES, estimatePercentiles, learnBuckets } from "./server-metrics-percentiles.ts";
import { endpointDisplay, inferUnit } from "./server-metrics-units.ts";

/**
 * AIPerf's aggregated server-metrics exports, `server_metrics_export.json` and `server_metrics_export.csv`, computed
 * from the scrapes of a run: per endpoint and series, gauges as statistics of the sampled values, counters as their
 * increase and rate over the profiling phase, histograms as bucket, sum and count increases with estimated
 * percentiles. The increase runs from the last scrape before the profiling phase (the reference) to the last one in
 * it, so warmup traffic is left out. Pure: the caller supplies the scrapes, times and configuration.
 */

export const SERVER_METRICS_JSON = "server_metrics_export.json";
export const SERVER_METRICS_CSV = "server_metrics_export.csv";

/** One scrape of one endpoint: its families, or none when it failed. */
export interface Scrape {
  endpointUrl: string;
  timestampNs: number;
  latencyNs?: number;
  families?: Record<string, MetricFamily>;
}

export interface SummaryInput {
  /** The endpoints the run was asked to scrape. */
  configured: readonly string[];
  scrapes: readonly Scrape[];
  /** The profiling phase, wall-clock ns (warmup before it). */
  startNs: number;
  endNs: number;
  /** `summary.start_time` / `end_time`, formatted by the caller (naive local ISO, as AIPerf's). */
  startTime: string;
  endTime: string;
  inputConfig: Readonly<Record<string, unknown>>;
  benchmarkId?: string;
}

type MetricType = "gauge" | "counter" | "histogram";
type Stats = Record<string, number>;

export interface SeriesSummary {
  endpoint_url: string;
  labels?: Record<string, string>;
  stats: Stats;
  /** Increase per bucket bound, lowest bound first (a Map: an object would put integer-like bounds first). */
  buckets?: Map<string, number>;
}

export interface MetricSummary {
  type: MetricType;
  description: string;
  unit?: string;
  series: SeriesSummary[];
}

export interface EndpointInfo {
  total_fetches: number;
  first_fetch_ns: number;
  last_fetch_ns: number;
  avg_fetch_latency_ms: number;
  unique_updates: number;
  first_update_ns: number;
  last_update_ns: number;
  duration_seconds: number;
  avg_update_interval_ms: number;
  median_update_interval_ms?: number;
}

export interface ServerMetricsExport {
  schema_version: "1.0";
  benchmark_id?: string;
  summary: {
    endpoints_configured: string[];
    endpoints_successful: string[];
    start_time: string;
    end_time: string;
    endpoint_info?: Record<string, EndpointInfo>;
  };
  metrics: Record<string, MetricSummary>;
  input_config: Readonly<Record<string, unknown>>;
}

const GAUGE_QUANTILES = [1, 5, 10, 25, 50, 75, 90, 95, 99] as const;

/** Python's code-point string order (what `sorted()` does with str keys). */
const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** `repr()` of a Python str, for sort keys AIPerf builds from `str(labels)`. */
function pyRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    if (ch === "\\") out += "\\\\";
    else if (ch === quote) out += `\\${ch}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else out += ch;
  }
  return out + quote;
}

/** `str(dict)` of labels, or "" when there are none (AIPerf's tie-break in both exports). */
export function labelsKey(labels: Record<string, string> | undefined): string {
  const entries = Object.entries(labels ?? {});
  if (entries.length === 0) return "";
  return `{${entries.map(([k, v]) => `${pyRepr(k)}: ${pyRepr(v)}`).join(", ")}}`;
}

interface Point<T> {
  ts: number;
  v: T;
}

interface SeriesStore {
  type: MetricType;
  help: string;
  labels: Record<string, string>;
  scalars: Point<number>[];
  hist: Point<HistogramSample>[];
}

/** Index of the last point before `startNs` (the delta's reference), or -1. */
function referenceIndex(points: readonly { ts: number }[], startNs: number): number {
  let i = -1;
  while (i + 1 < points.length && points[i + 1]!.ts < startNs) i++;
  return i;
}

const inWindow = <T>(points: readonly Point<T>[], startNs: number, endNs: number) =>
  points.filter((p) => p.ts >= startNs && p.ts <= endNs);

function gaugeStats(points: readonly Point<number>[], startNs: number, endNs: number): Stats | null {
  const values = inWindow(points, startNs, endNs).map((p) => p.v);
  if (values.length === 0) return null;
  const n = values.length;
  const avg = values.reduce((a, b) => a + b, 0) / n;
  // Sample standard deviation (ddof=1), 0 for a single sample, as AIPerf's gauge statistics.
  const std = n > 1 ? Math.sqrt(values.reduce((a, b) => a + (b - avg) ** 2, 0) / (n - 1)) : 0;
  const sorted = [...values].sort((a, b) => a - b);
  const stats: Stats = { avg, min: sorted[0]!, max: sorted[n - 1]!, std };
  for (const q of GAUGE_QUANTILES) stats[`p${q}`] = percentileOfSorted(sorted, q);
  return stats;
}

function counterStats(points: readonly Point<number>[], startNs: number, endNs: number): Stats | null {
  const window = inWindow(points, startNs, endNs);
  if (window.length === 0) return null;
  const ref = referenceIndex(points, startNs);
  const base = ref >= 0 ? points[ref]! : window[0]!;
  const last = window[window.length - 1]!;
  // A server restart resets a counter: its increase is then counted as none rather than negative.
  const total = Math.max(last.v - base.v, 0);
  const seconds = last.ts > base.ts ? (last.ts - base.ts) / 1e9 : 0;
  return { total, rate: seconds > 0 ? total / seconds : 0 };
}

function histogramStats(
  points: readonly Point<HistogramSample>[],
  startNs: number,
  endNs: number,
): { stats: Stats; buckets?: Map<string, number> } | null {
  if (points.length === 0) return null;
  const ref = referenceIndex(points, startNs);
  let final = points.length - 1;
  while (final > 0 && points[final]!.ts > endNs) final--;
  const start = Math.max(ref, 0);
  const a = points[start]!;
  const b = points[final]!;
  const sumDelta = b.v.sum - a.v.sum;
  const countDelta = Math.trunc(b.v.count - a.v.count);
  // The series' bounds are fixed by its first sample, sorted (a later sample's extra bounds are ignored, a missing
  // one counts 0), as AIPerf's histogram storage keeps them.
  const les = [...points[0]!.v.buckets.keys()].sort(
    (x, y) => (x === "+Inf" ? Infinity : Number(x)) - (y === "+Inf" ? Infinity : Number(y)),
  );
  let buckets: Map<string, number> | undefined = new Map();
  for (const le of les) {
    const d = (b.v.buckets.get(le) ?? 0) - (a.v.buckets.get(le) ?? 0);
    if (d < 0) {
      // A reset bucket makes every delta meaningless: AIPerf then leaves the buckets out.
      buckets = undefined;
      break;
    }
    buckets.set(le, Math.trunc(d));
  }
  if (countDelta === 0) return { stats: { count: 0 }, ...(buckets ? { buckets } : {}) };
  const seconds = b.ts > a.ts ? (b.ts - a.ts) / 1e9 : 0;
  const stats: Stats = { count: countDelta, sum: sumDelta, avg: sumDelta / countDelta };
  if (seconds > 0) {
    stats.count_rate = countDelta / seconds;
    stats.sum_rate = sumDelta / seconds;
  }
  if (buckets && buckets.size > 0) {
    const tail = points.slice(start);
    const learned = learnBuckets(
      tail.map((p) => p.v.sum),
      tail.map((p) => p.v.count),
      les,
      tail.map((p) => les.map((le) => p.v.buckets.get(le) ?? 0)),
    );
    const est = estimatePercentiles(buckets, learned, sumDelta, countDelta);
    if (est)
      ESTIMATE_QUANTILES.forEach((q, i) => {
        stats[`p${q}_estimate`] = est[i]!;
      });
  }
  return { stats, ...(buckets ? { buckets } : {}) };
}

function endpointInfo(ok: readonly Scrape[], unique: readonly number[]): EndpointInfo {
  const latencies = ok.flatMap((s) => (s.latencyNs === undefined ? [] : [s.latencyNs]));
  const firstUpdate = unique.length > 0 ? Math.min(...unique) : 0;
  const lastUpdate = unique.length > 0 ? Math.max(...unique) : 0;
  const duration = unique.length > 0 ? (lastUpdate - firstUpdate) / 1e9 : 0;
  const sortedUnique = [...unique].sort((x, y) => x - y);
  const intervals = sortedUnique.slice(1).map((t, i) => t - sortedUnique[i]!);
  const info: EndpointInfo = {
    total_fetches: ok.length,
    first_fetch_ns: Math.min(...ok.map((s) => s.timestampNs)),
    last_fetch_ns: Math.max(...ok.map((s) => s.timestampNs)),
    avg_fetch_latency_ms:
      latencies.length > 0 ? latencies.reduce((x, y) => x + y, 0) / latencies.length / 1e6 : 0,
    unique_updates: unique.length,
    first_update_ns: firstUpdate,
    last_update_ns: lastUpdate,
    duration_seconds: duration,
    avg_update_interval_ms: unique.length > 1 ? (duration * 1000) / (unique.length - 1) : 0,
  };
  if (intervals.length > 0) {
    intervals.sort((x, y) => x - y);
    const mid = intervals.length >> 1;
    const median = intervals.length % 2 === 1 ? intervals[mid]! : (intervals[mid - 1]! + intervals[mid]!) / 2;
    info.median_update_interval_ms = median / 1e6;
  }
  return info;
}

/** The aggregated export, or null when no endpoint answered (AIPerf then writes neither file). */
export function summarizeServerMetrics(input: SummaryInput): ServerMetricsExport | null {
  const byEndpoint = new Map<string, Scrape[]>();
  for (const s of input.scrapes) {
    if (!s.families || Object.keys(s.families).length === 0) continue;
    let list = byEndpoint.get(s.endpointUrl);
    if (!list) {
      list = [];
      byEndpoint.set(s.endpointUrl, list);
    }
    list.push(s);
  }
  if (byEndpoint.size === 0) return null;
  const metrics = new Map<string, MetricSummary>();
  const info: Record<string, EndpointInfo> = {};
  for (const [url, list] of byEndpoint) {
    const ok = [...list].sort((x, y) => x.timestampNs - y.timestampNs);
    const unique: number[] = [];
    let previous: string | undefined;
    const stores = new Map<string, SeriesStore>();
    const order: string[] = [];
    for (const s of ok) {
      // A scrape identical to the one before is a fetch, not an update (AIPerf compares response bodies).
      const text = JSON.stringify(s.families, (_k, v) => (v instanceof Map ? [...v] : v));
      if (text !== previous) unique.push(s.timestampNs);
      previous = text;
      for (const [name, fam] of Object.entries(s.families!)) {
        for (const sample of fam.samples) {
          const key = `${name}\u0000${JSON.stringify(sample.labels)}`;
          let store = stores.get(key);
          if (!store) {
            store = {
              type: fam.type === "unknown" ? "gauge" : fam.type,
              help: fam.help,
              labels: sample.labels,
              scalars: [],
              hist: [],
            };
            stores.set(key, store);
            order.push(key);
          }
          if ("value" in sample) store.scalars.push({ ts: s.timestampNs, v: sample.value });
          else store.hist.push({ ts: s.timestampNs, v: sample });
        }
      }
    }
    const windowEnd = Math.max(input.endNs, unique.length > 0 ? Math.max(...unique) : 0);
    for (const key of order) {
      const store = stores.get(key)!;
      const name = key.slice(0, key.indexOf("\u0000"));
      let series: SeriesSummary | null = null;
      const labels = Object.keys(store.labels).length > 0 ? { labels: store.labels } : {};
      if (store.type === "histogram") {
        const h = histogramStats(store.hist, input.startNs, windowEnd);
        if (h)
          series = {
            endpoint_url: url,
            ...labels,
            stats: h.stats,
            ...(h.buckets ? { buckets: h.buckets } : {}),
          };
      } else {
        const stats =
          store.type === "counter"
            ? counterStats(store.scalars, input.startNs, windowEnd)
            : gaugeStats(store.scalars, input.startNs, windowEnd);
        if (stats) series = { endpoint_url: url, ...labels, stats };
      }
      if (!series) continue;
      let metric = metrics.get(name);
      if (!metric) {
        const unit = inferUnit(name, store.help);
        metric = { type: store.type, description: store.help, ...(unit ? { unit } : {}), series: [] };
        metrics.set(name, metric);
      }
      metric.series.push(series);
    }
    info[url] = endpointInfo(ok, unique);
  }
  const sortedMetrics: Record<string, MetricSummary> = {};
  for (const name of [...metrics.keys()].sort(byCodePoint)) {
    const m = metrics.get(name)!;
    m.series.sort(
      (x, y) =>
        byCodePoint(x.endpoint_url, y.endpoint_url) || byCodePoint(labelsKey(x.labels), labelsKey(y.labels)),
    );
    sortedMetrics[name] = m;
  }
  const endpointInfoSorted = Object.fromEntries(
    Object.keys(info)
      .sort(byCodePoint)
      .map((u) => [u, info[u]!]),
  );
  return {
    schema_version: "1.0",
    ...(input.benchmarkId ? { benchmark_id: input.benchmarkId } : {}),
    summary: {
      endpoints_configured: [...input.configured],
      endpoints_successful: input.configured.filter((u) => byEndpoint.has(u)),
      start_time: input.startTime,
      end_time: input.endTime,
      endpoint_info: endpointInfoSorted,
    },
    metrics: sortedMetrics,
    input_config: input.inputConfig,
  };
}

/** JSON.stringify(value, null, 2), but a Map becomes an object whose keys keep the Map's order. */
function toJson(value: unknown, depth: number): string {
  const pad = "  ".repeat(depth + 1);
  const end = "  ".repeat(depth);
  const object = (entries: [string, unknown][]) => {
    const kept = entries.filter(([, v]) => v !== undefined);
    if (kept.length === 0) return "{}";
    return `{\n${kept.map(([k, v]) => `${pad}${JSON.stringify(k)}: ${toJson(v, depth + 1)}`).join(",\n")}\n${end}}`;
  };
  if (value instanceof Map) return object([...value].map(([k, v]) => [String(k), v]));
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    return `[\n${value.map((v) => pad + toJson(v, depth + 1)).join(",\n")}\n${end}]`;
  }
  if (value !== null && typeof value === "object") return object(Object.entries(value));
  return JSON.stringify(value) ?? "null";
}

/** The text of `server_metrics_export.json` (indented by 2, as AIPerf writes it). */
export function renderServerMetricsJson(doc: ServerMetricsExport): string {
  return `${toJson(doc, 0)}\n`;
}

const CSV_STATS: Record<MetricType, readonly string[]> = {
  gauge: ["avg", "min", "max", "std", "p1", "p5", "p10", "p25", "p50", "p75", "p90", "p95", "p99"],
  counter: ["total", "rate", "rate_avg", "rate_min", "rate_max", "rate_std"],
  histogram: [
    "count",
    "count_rate",
    "sum",
    "sum_rate",
    "avg",
    ...ESTIMATE_QUANTILES.map((q) => `p${q}_estimate`),
  ],
};
/** Stats AIPerf types as int, which its CSV prints without decimals (every other number gets four). */
const INT_STATS = new Set(["count"]);

const csvCell = (s: string) => (/[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);
const csvRow = (cells: readonly string[]) => `${cells.map(csvCell).join(",")}\r\n`;
const fixed4 = (x: number | undefined) => (x === undefined ? "" : x.toFixed(4));

interface CsvItem {
  endpoint: string;
  name: string;
  type: MetricType;
  unit: string;
  description: string;
  series: SeriesSummary;
  info: boolean;
}

/**
 * The label columns of one section, ordered to keep the table dense: labels that occur together form a family
 * (union-find over each series' sorted label names); families go in order of their smallest label, and inside one,
 * labels of a single series come before those several series share.
 */
function labelColumns(items: readonly CsvItem[]): string[] {
  const sets = items
    .filter((m) => !m.info && m.series.labels && Object.keys(m.series.labels).length > 0)
    .map((m) => new Set(Object.keys(m.series.labels!)));
  const all = new Set(sets.flatMap((s) => [...s]));
  if (all.size === 0) return [];
  const parent = new Map<string, string>();
  const find = (x: string): string => {
    if (!parent.has(x)) parent.set(x, x);
    const p = parent.get(x)!;
    return p === x ? x : find(p);
  };
  for (const s of sets) {
    const names = [...s].sort(byCodePoint);
    for (let i = 1; i < names.length; i++) parent.set(find(names[i]!), find(names[i - 1]!));
  }
  const families = new Map<string, string[]>();
  for (const l of all) {
    const root = find(l);
    families.set(root, [...(families.get(root) ?? []), l]);
  }
  const shared = new Set([...all].filter((l) => sets.filter((s) => s.has(l)).length > 1));
  const out: string[] = [];
  const ordered = [...families.values()].sort((x, y) =>
    byCodePoint([...x].sort(byCodePoint)[0]!, [...y].sort(byCodePoint)[0]!),
  );
  for (const fam of ordered) {
    out.push(...fam.filter((l) => !shared.has(l)).sort(byCodePoint));
    out.push(...fam.filter((l) => shared.has(l)).sort(byCodePoint));
  }
  return out;
}

function section(type: MetricType, items: readonly CsvItem[]): string {
  const stats = CSV_STATS[type];
  const columns = labelColumns(items);
  const header = ["Endpoint", "Type", "Metric", "Unit", ...stats, ...columns, "Description"];
  if (type === "histogram") header.push("buckets");
  const keyed = items.map((m) => {
    const labels = m.series.labels ?? {};
    const pattern = columns.map((c) => (c in labels ? "1" : "0")).join("");
    return { m, key: [pattern, m.name, m.endpoint, labelsKey(m.series.labels)] };
  });
  keyed.sort((x, y) => {
    for (let i = 0; i < 4; i++) {
      const c = byCodePoint(x.key[i]!, y.key[i]!);
      if (c !== 0) return c;
    }
    return 0;
  });
  let out = csvRow(header);
  for (const { m } of keyed) {
    const labels = m.series.labels ?? {};
    const row = [m.endpoint, type, m.name, m.unit];
    for (const s of stats) {
      const v = m.series.stats[s];
      row.push(v === undefined ? "" : INT_STATS.has(s) ? String(Math.trunc(v)) : fixed4(v));
    }
    for (const c of columns) row.push(m.info ? "" : (labels[c] ?? ""));
    row.push(m.description);
    if (type === "histogram")
      row.push([...(m.series.buckets ?? [])].map(([le, n]) => `${le}=${Math.trunc(n)}`).join(";"));
    out += csvRow(row);
  }
  return out;
}

/**
 * The text of `server_metrics_export.csv`: a commented header, then one section per type (gauges, counters,
 * histograms; a blank row between) with each series' statistics and its labels spread over columns, then the
 * `_info` metrics turned into one row per label.
 */
export function renderServerMetricsCsv(doc: ServerMetricsExport, aiperfVersion = "unknown"): string {
  const items: CsvItem[] = [];
  for (const [name, m] of Object.entries(doc.metrics))
    for (const series of m.series)
      items.push({
        endpoint: endpointDisplay(series.endpoint_url),
        name,
        type: m.type,
        unit: m.unit ?? "",
        description: m.description,
        series,
        info: name.endsWith("_info"),
      });
  let out =
    "# AIPerf Server Metrics Export (CSV)\n" +
    `# aiperf_version: ${aiperfVersion}\n` +
    "# schema_version: 1.0\n" +
    `# benchmark_id: ${doc.benchmark_id ?? "None"}\n` +
    "# Note: Same benchmark_id and version appear in JSON and Parquet exports\n" +
    "#\n";
  const infos = items.filter((m) => m.type === "gauge" && m.info);
  let first = true;
  for (const type of ["gauge", "counter", "histogram"] as const) {
    const these = items.filter((m) => m.type === type && !(type === "gauge" && m.info));
    if (these.length === 0) continue;
    if (!first) out += "\r\n";
    out += section(type, these);
    first = false;
  }
  if (infos.length > 0) {
    if (!first) out += "\r\n";
    out += csvRow(["Endpoint", "Metric", "Key", "Value", "Description"]);
    infos.sort((x, y) => byCodePoint(x.name, y.name) || byCodePoint(x.endpoint, y.endpoint));
    for (const m of infos)
      for (const k of Object.keys(m.series.labels ?? {}).sort(byCodePoint))
        out += csvRow([m.endpoint, m.name, k, m.series.labels![k]!, m.description]);
  }
  return out;
}
