import { percentileOfSorted } from "../metrics/summary.ts";
import type { MetricFamily } from "./server-metrics-families.ts";
import { ESTIMATE_QUANTILES, estimatePercentiles, learnBuckets } from "./server-metrics-percentiles.ts";
import { pyFloatJson, pyIntJson } from "./server-metrics-pyfloat.ts";
import { endpointDisplay, inferUnit } from "./server-metrics-units.ts";

/**
 * AIPerf's aggregated server-metrics exports, `server_metrics_export.json` and `server_metrics_export.csv`, computed
 * from the scrapes of a run: per endpoint and series, gauges as statistics of the sampled values, counters as their
 * increase and rate over the profiling phase, histograms as bucket, sum and count increases with estimated
 * percentiles. The increase runs from the last scrape before the profiling phase (the reference) to the last one in
 * it, so warmup traffic is left out. Pure: the caller supplies the scrapes, times and configuration. Written from
 * AIPerf's `ServerMetricsExportData` (`aiperf/common/models/server_metrics_models.py`) and its accumulator and
 * exporters under `aiperf/server_metrics/`.
 */

export const SERVER_METRICS_JSON = "server_metrics_export.json";
export const SERVER_METRICS_CSV = "server_metrics_export.csv";

/** One scrape of one endpoint: its families, or none when it failed. */
export interface Scrape {
  endpointUrl: string;
  /** AIPerf's record `timestamp_ns`: when the answer's first byte came, wall-clock ns. */
  timestampNs: number;
  latencyNs?: number;
  families?: Record<string, MetricFamily>;
  /**
   * The page was the same text as this endpoint's previous one (AIPerf's `is_duplicate`): a fetch, not an update.
   * When not given, the families are compared with those of the endpoint's previous scrape.
   */
  duplicate?: boolean;
}

/** What the export needs besides the scrapes. */
export interface SummaryOptions {
  /** The endpoints the run was asked to scrape (they order the summary's endpoint lists). */
  configured: readonly string[];
  /** The profiling phase, wall-clock ns (warmup before it). */
  startNs: number;
  endNs: number;
  /** `summary.start_time` / `end_time`, formatted by the caller (naive local ISO, as AIPerf's). */
  startTime: string;
  endTime: string;
  inputConfig: Readonly<Record<string, unknown>>;
  benchmarkId?: string;
}

export interface SummaryInput extends SummaryOptions {
  scrapes: readonly Scrape[];
}

/** AIPerf's `PrometheusMetricType` values in the export: an untyped family stays `unknown` (gauge statistics). */
export type MetricType = "gauge" | "counter" | "histogram" | "unknown";
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
  aiperf_version?: string;
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

/** A histogram snapshot in its series' fixed bucket order (AIPerf's `HistogramTimeSeries` row). */
interface HistogramRow {
  sum: number;
  count: number;
  counts: Float64Array;
}

interface SeriesStore {
  type: MetricType;
  help: string;
  labels: Record<string, string>;
  scalars: Point<number>[];
  hist: Point<HistogramRow>[];
  /** A histogram's bounds: its first sample's, sorted by value with +Inf last; later extra bounds are ignored. */
  les?: string[];
}

/** Inserts keeping timestamps sorted (scrapes nearly always arrive in order). */
function insertSorted<T>(points: Point<T>[], p: Point<T>): void {
  let i = points.length;
  while (i > 0 && points[i - 1]!.ts > p.ts) i--;
  if (i === points.length) points.push(p);
  else points.splice(i, 0, p);
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
  points: readonly Point<HistogramRow>[],
  les: readonly string[],
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
  let buckets: Map<string, number> | undefined = new Map();
  for (let i = 0; i < les.length; i++) {
    const d = b.v.counts[i]! - a.v.counts[i]!;
    if (d < 0) {
      // A reset bucket makes every delta meaningless: AIPerf then leaves the buckets out.
      buckets = undefined;
      break;
    }
    buckets.set(les[i]!, Math.trunc(d));
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
      tail.map((p) => [...p.v.counts]),
    );
    const est = estimatePercentiles(buckets, learned, sumDelta, countDelta);
    if (est)
      ESTIMATE_QUANTILES.forEach((q, i) => {
        stats[`p${q}_estimate`] = est[i]!;
      });
  }
  return { stats, ...(buckets ? { buckets } : {}) };
}

const leValue = (le: string) => (le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le));

/** One endpoint's scrapes as AIPerf's `ServerMetricsTimeSeries` keeps them. */
class EndpointStore {
  readonly stores = new Map<string, SeriesStore>();
  totalFetches = 0;
  firstFetchNs = 0;
  lastFetchNs = 0;
  latencies: number[] = [];
  unique: number[] = [];
  /** The families of the previous scrape, for scrapes that do not say whether they repeat it. */
  previous: string | undefined;

  add(s: Scrape & { families: Record<string, MetricFamily> }): void {
    const ts = s.timestampNs;
    if (this.totalFetches === 0 || ts < this.firstFetchNs) this.firstFetchNs = ts;
    if (this.totalFetches === 0 || ts > this.lastFetchNs) this.lastFetchNs = ts;
    this.totalFetches++;
    if (s.latencyNs !== undefined) this.latencies.push(s.latencyNs);
    let duplicate = s.duplicate;
    if (duplicate === undefined) {
      const text = JSON.stringify(s.families, (_k, v) => (v instanceof Map ? [...v] : v));
      duplicate = text === this.previous;
      this.previous = text;
    }
    if (!duplicate) this.unique.push(ts);
    // Every scrape's samples are kept, a repeated one's too (AIPerf stores them for its statistics).
    for (const [name, fam] of Object.entries(s.families)) {
      for (const sample of fam.samples) {
        const key = `${name}\u0000${JSON.stringify(sample.labels)}`;
        let store = this.stores.get(key);
        if (!store) {
          store = { type: fam.type, help: fam.help, labels: sample.labels, scalars: [], hist: [] };
          this.stores.set(key, store);
        }
        if ("value" in sample) {
          if (store.type !== "histogram") insertSorted(store.scalars, { ts, v: sample.value });
          continue;
        }
        if (store.type !== "histogram") continue;
        store.les ??= [...sample.buckets.keys()].sort((x, y) => leValue(x) - leValue(y));
        const counts = Float64Array.from(store.les, (le) => sample.buckets.get(le) ?? 0);
        insertSorted(store.hist, { ts, v: { sum: sample.sum ?? 0, count: sample.count ?? 0, counts } });
      }
    }
  }

  info(): EndpointInfo {
    const unique = [...this.unique].sort((x, y) => x - y);
    const firstUpdate = unique.length > 0 ? unique[0]! : 0;
    const lastUpdate = unique.length > 0 ? unique[unique.length - 1]! : 0;
    const duration = unique.length > 0 ? (lastUpdate - firstUpdate) / 1e9 : 0;
    const info: EndpointInfo = {
      total_fetches: this.totalFetches,
      first_fetch_ns: this.firstFetchNs,
      last_fetch_ns: this.lastFetchNs,
      avg_fetch_latency_ms:
        this.latencies.length > 0
          ? this.latencies.reduce((x, y) => x + y, 0) / this.latencies.length / 1e6
          : 0,
      unique_updates: unique.length,
      first_update_ns: firstUpdate,
      last_update_ns: lastUpdate,
      duration_seconds: duration,
      avg_update_interval_ms: unique.length > 1 ? (duration * 1000) / (unique.length - 1) : 0,
    };
    const intervals = unique
      .slice(1)
      .map((t, i) => t - unique[i]!)
      .sort((x, y) => x - y);
    if (intervals.length > 0) {
      const mid = intervals.length >> 1;
      const median =
        intervals.length % 2 === 1 ? intervals[mid]! : (intervals[mid - 1]! + intervals[mid]!) / 2;
      info.median_update_interval_ms = median / 1e6;
    }
    return info;
  }
}

/**
 * The run's scrapes as they arrive, kept as AIPerf's accumulator keeps them: per endpoint and series, the sampled
 * values (a histogram's as rows in its fixed bucket order), so a long run at AIPerf's 333 ms interval holds numbers,
 * not pages. `summarize` computes the aggregated export from them.
 */
export class ServerMetricsAccumulator {
  private readonly endpoints = new Map<string, EndpointStore>();

  /** A scrape without families (failed, or an empty page) is no record: AIPerf delivers none for it. */
  add(s: Scrape): void {
    if (!s.families || Object.keys(s.families).length === 0) return;
    let e = this.endpoints.get(s.endpointUrl);
    if (!e) {
      e = new EndpointStore();
      this.endpoints.set(s.endpointUrl, e);
    }
    e.add(s as Scrape & { families: Record<string, MetricFamily> });
  }

  /** The aggregated export, or null when no endpoint answered (AIPerf then writes neither file). */
  summarize(o: SummaryOptions): ServerMetricsExport | null {
    if (this.endpoints.size === 0) return null;
    const metrics = new Map<string, MetricSummary>();
    const info: Record<string, EndpointInfo> = {};
    for (const [url, e] of this.endpoints) {
      const endpointInfo = e.info();
      // Per endpoint, as AIPerf: the window runs to the profiling end or the endpoint's last update, if later.
      const windowEnd = Math.max(o.endNs, endpointInfo.last_update_ns);
      for (const [key, store] of e.stores) {
        const name = key.slice(0, key.indexOf("\u0000"));
        let series: SeriesSummary | null = null;
        const labels = Object.keys(store.labels).length > 0 ? { labels: store.labels } : {};
        if (store.type === "histogram") {
          const h = histogramStats(store.hist, store.les ?? [], o.startNs, windowEnd);
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
              ? counterStats(store.scalars, o.startNs, windowEnd)
              : gaugeStats(store.scalars, o.startNs, windowEnd);
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
      info[url] = endpointInfo;
    }
    const sortedMetrics: Record<string, MetricSummary> = {};
    for (const name of [...metrics.keys()].sort(byCodePoint)) {
      const m = metrics.get(name)!;
      m.series.sort(
        (x, y) =>
          byCodePoint(x.endpoint_url, y.endpoint_url) ||
          byCodePoint(labelsKey(x.labels), labelsKey(y.labels)),
      );
      sortedMetrics[name] = m;
    }
    const endpointInfoSorted = Object.fromEntries(
      Object.keys(info)
        .sort(byCodePoint)
        .map((u) => [u, info[u]!]),
    );
    // AIPerf fills both lists with the endpoints its accumulator holds records of (the reachable ones that answered),
    // not with the endpoints it was given; here in the order they were given.
    const answered = [
      ...o.configured.filter((u) => this.endpoints.has(u)),
      ...[...this.endpoints.keys()].filter((u) => !o.configured.includes(u)),
    ];
    return {
      schema_version: "1.0",
      ...(o.benchmarkId ? { benchmark_id: o.benchmarkId } : {}),
      summary: {
        endpoints_configured: answered,
        endpoints_successful: [...answered],
        start_time: o.startTime,
        end_time: o.endTime,
        endpoint_info: endpointInfoSorted,
      },
      metrics: sortedMetrics,
      input_config: o.inputConfig,
    };
  }
}

/** The aggregated export of a finished run's scrapes, or null when no endpoint answered. */
export function summarizeServerMetrics(input: SummaryInput): ServerMetricsExport | null {
  const acc = new ServerMetricsAccumulator();
  const byEndpoint = new Map<string, Scrape[]>();
  for (const s of input.scrapes) byEndpoint.set(s.endpointUrl, [...(byEndpoint.get(s.endpointUrl) ?? []), s]);
  // Each endpoint's in time order, so that "same as the previous" compares neighbours.
  for (const list of byEndpoint.values())
    for (const s of [...list].sort((x, y) => x.timestampNs - y.timestampNs)) acc.add(s);
  return acc.summarize(input);
}

/** `ServerMetricsEndpointInfo`'s int fields; its others are floats. */
const INT_INFO = new Set([
  "total_fetches",
  "first_fetch_ns",
  "last_fetch_ns",
  "unique_updates",
  "first_update_ns",
  "last_update_ns",
]);

/**
 * How AIPerf's models type the number at `path`: bucket counts, a histogram's `stats.count` and the endpoint-info
 * counts and timestamps are ints, every other statistic a float; `input_config` is the caller's, written as given.
 */
function numberText(x: number, path: readonly string[]): string {
  if (path[0] === "input_config") return JSON.stringify(x);
  const key = path[path.length - 1]!;
  const parent = path[path.length - 2];
  const isInt =
    parent === "buckets" ||
    (parent === "stats" && key === "count") ||
    (path[0] === "summary" && path[1] === "endpoint_info" && INT_INFO.has(key));
  return isInt ? pyIntJson(x) : pyFloatJson(x, "orjson");
}

/**
 * orjson's `OPT_INDENT_2` layout (JSON.stringify(value, null, 2)'s), a Map an object whose keys keep the Map's order,
 * numbers as Python writes AIPerf's int and float fields.
 */
function toJson(value: unknown, path: string[]): string {
  const depth = path.length;
  const pad = "  ".repeat(depth + 1);
  const end = "  ".repeat(depth);
  const object = (entries: [string, unknown][]) => {
    const kept = entries.filter(([, v]) => v !== undefined);
    if (kept.length === 0) return "{}";
    return `{\n${kept.map(([k, v]) => `${pad}${JSON.stringify(k)}: ${toJson(v, [...path, k])}`).join(",\n")}\n${end}}`;
  };
  if (value instanceof Map) return object([...value].map(([k, v]) => [String(k), v]));
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    return `[\n${value.map((v, i) => pad + toJson(v, [...path, String(i)])).join(",\n")}\n${end}]`;
  }
  if (value !== null && typeof value === "object") return object(Object.entries(value));
  if (typeof value === "number") return numberText(value, path);
  return JSON.stringify(value) ?? "null";
}

/** The text of `server_metrics_export.json`: indented by 2 and without a final newline, as AIPerf writes it. */
export function renderServerMetricsJson(doc: ServerMetricsExport): string {
  return toJson(doc, []);
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
  // AIPerf's CSV gives untyped families their own section, with the gauge columns.
  unknown: ["avg", "min", "max", "std", "p1", "p5", "p10", "p25", "p50", "p75", "p90", "p95", "p99"],
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
 * histograms, untyped families; a blank row between) with each series' statistics and its labels spread over columns,
 * then the `_info` gauges turned into one row per label.
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
  for (const type of ["gauge", "counter", "histogram", "unknown"] as const) {
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
