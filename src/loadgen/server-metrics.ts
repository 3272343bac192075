import { randomUUID } from "node:crypto";
import { appendFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic-write.ts";
import { parseHttpUrl } from "../io/http-url.ts";
import { naiveLocalIsoTimestamp } from "../metrics/exporters.ts";
import { parseMetricFamilies } from "./server-metrics-families.ts";
import {
  renderServerMetricsCsv,
  renderServerMetricsJson,
  type Scrape,
  SERVER_METRICS_CSV,
  SERVER_METRICS_JSON,
  summarizeServerMetrics,
} from "./server-metrics-summary.ts";

export const SERVER_METRICS_JSONL = "server_metrics_export.jsonl";

/** How often each endpoint is scraped while the run sends; once more at its end. */
const SCRAPE_EVERY_MS = 5000;
const SCRAPE_TIMEOUT_MS = 4000;
/** A scrape body beyond this is cut off (a `/metrics` page is kilobytes). */
const MAX_SCRAPE_BYTES = 16 * 1024 * 1024;

/** One sample line of Prometheus' text format: its metric name, labels and value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LABEL = /([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function parseSample(line: string): Sample | null {
  const brace = line.indexOf("{");
  const close = line.lastIndexOf("}");
  const name = (brace >= 0 ? line.slice(0, brace) : line.slice(0, line.search(/\s/))).trim();
  const rest = (brace >= 0 && close > brace ? line.slice(close + 1) : line.slice(name.length)).trim();
  const valueText = rest.split(/\s+/)[0] ?? "";
  const value = /^[+-]?Inf$/i.test(valueText)
    ? valueText.startsWith("-")
      ? Number.NEGATIVE_INFINITY
      : Number.POSITIVE_INFINITY
    : Number(valueText);
  if (name === "" || (!Number.isFinite(value) && !/^[+-]?(Inf|NaN)$/i.test(valueText))) return null;
  const labels: Record<string, string> = {};
  if (brace >= 0 && close > brace)
    for (const m of line.slice(brace + 1, close).matchAll(LABEL))
      labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
  return { name, labels, value };
}

/** A metric's series as AIPerf's server-metrics JSONL writes them. */
type SeriesEntry =
  | { labels?: Record<string, string>; value: number }
  | { labels?: Record<string, string>; histogram: Record<string, number>; sum: number; count: number };

const withLabels = (labels: Record<string, string>) => (Object.keys(labels).length > 0 ? { labels } : {});

/**
 * Prometheus' text format grouped as AIPerf's `server_metrics_export.jsonl` groups it: metric name → series, each
 * `{labels, value}`, and a histogram's `_bucket`, `_sum` and `_count` lines folded into one
 * `{labels, histogram: {le: count}, sum, count}` per label set.
 */
export function parsePrometheusText(text: string): Record<string, SeriesEntry[]> {
  const samples: Sample[] = [];
  const histograms = new Set<string>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("# TYPE ")) {
      const [, , name, type] = line.split(/\s+/);
      if (type === "histogram" && name) histograms.add(name);
      continue;
    }
    if (line === "" || line.startsWith("#")) continue;
    const s = parseSample(line);
    if (s) samples.push(s);
  }
  const out: Record<string, SeriesEntry[]> = {};
  const seriesOf = (name: string): SeriesEntry[] => {
    let list = out[name];
    if (!list) {
      list = [];
      out[name] = list;
    }
    return list;
  };
  const folded = new Map<
    string,
    { labels: Record<string, string>; histogram: Record<string, number>; sum: number; count: number }
  >();
  for (const s of samples) {
    const base = [...histograms].find(
      (h) => s.name === `${h}_bucket` || s.name === `${h}_sum` || s.name === `${h}_count`,
    );
    if (base === undefined) {
      seriesOf(s.name).push({ ...withLabels(s.labels), value: s.value });
      continue;
    }
    const { le, ...rest } = s.labels;
    const key = `${base}\u0000${JSON.stringify(rest)}`;
    let h = folded.get(key);
    if (!h) {
      h = { labels: rest, histogram: {}, sum: 0, count: 0 };
      folded.set(key, h);
      seriesOf(base).push(h as SeriesEntry);
    }
    if (s.name.endsWith("_bucket") && le !== undefined) h.histogram[le] = s.value;
    else if (s.name.endsWith("_sum")) h.sum = s.value;
    else h.count = s.value;
  }
  for (const entries of Object.values(out))
    for (const e of entries)
      if ("labels" in e && e.labels && Object.keys(e.labels).length === 0) delete e.labels;
  return out;
}

/** A flat view for callers that want one number per series: `name{k="v",…}` → value. */
export function flattenSeries(metrics: Record<string, SeriesEntry[]>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, entries] of Object.entries(metrics))
    for (const e of entries) {
      const l = e.labels
        ? `{${Object.entries(e.labels)
            .map(([k, v]) => `${k}="${v}"`)
            .join(",")}}`
        : "";
      if ("value" in e) out[`${name}${l}`] = e.value;
      else {
        out[`${name}_sum${l}`] = e.sum;
        out[`${name}_count${l}`] = e.count;
      }
    }
  return out;
}

/** `--server-metrics URL…`: checked before the run starts. */
export function checkServerMetricsUrls(urls: readonly string[]): string[] {
  return urls.map((u) => parseHttpUrl(u, "--server-metrics").href);
}

/** What the scraper hands back at the end of a run. */
export interface ServerMetricsScraper {
  /** The profiling phase starts now: the last scrape before it is the reference its increases count from. */
  markProfilingStart(): void;
  /**
   * Scrapes once more, then writes AIPerf's aggregated `server_metrics_export.json` and `.csv` (atomically) when any
   * endpoint answered; returns their paths.
   */
  stop(inputConfig?: Readonly<Record<string, unknown>>): Promise<{ json?: string; csv?: string }>;
}

/**
 * Scrapes Prometheus endpoints while a run sends (AIPerf's `--server-metrics`), one line per scrape in
 * `server_metrics_export.jsonl` in AIPerf's layout: `{endpoint_url, timestamp_ns, endpoint_latency_ns, metrics}` (see
 * parsePrometheusText), or `error` in place of `metrics` when a scrape failed. A failing endpoint never stops the run.
 * At the end the scrapes are aggregated into AIPerf's `server_metrics_export.json` and `.csv` (see
 * summarizeServerMetrics); whatever `--profile-export-level` says, as AIPerf's own exports do.
 */
export async function startServerMetrics(
  urls: readonly string[],
  dir: string,
  wallNs: () => number,
): Promise<ServerMetricsScraper> {
  if (urls.length === 0) return { markProfilingStart: () => {}, stop: async () => ({}) };
  const file = join(dir, SERVER_METRICS_JSONL);
  await writeFile(file, "");
  const benchmarkId = randomUUID();
  const scrapes: Scrape[] = [];
  const startedNs = wallNs();
  let profilingStartNs = startedNs;
  let chain = Promise.resolve();
  const scrapeAll = () => {
    for (const url of urls) {
      const at = wallNs();
      const line = fetch(url, { signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) })
        .then(async (res) => {
          if (!res.ok) throw new Error(`HTTP ${res.status}`);
          const text = await res.text();
          if (text.length > MAX_SCRAPE_BYTES) throw new Error(`body over ${MAX_SCRAPE_BYTES} bytes`);
          const latency = Math.round(wallNs() - at);
          scrapes.push({
            endpointUrl: url,
            timestampNs: at,
            latencyNs: latency,
            families: parseMetricFamilies(text),
          });
          return {
            endpoint_url: url,
            timestamp_ns: at,
            endpoint_latency_ns: latency,
            metrics: parsePrometheusText(text),
          };
        })
        .catch((e: Error) => ({ endpoint_url: url, timestamp_ns: at, error: e.message }));
      chain = chain.then(async () => appendFile(file, `${JSON.stringify(await line)}\n`)).catch(() => {});
    }
  };
  scrapeAll();
  const timer = setInterval(scrapeAll, SCRAPE_EVERY_MS);
  timer.unref();
  return {
    markProfilingStart: () => {
      // A scrape right at the boundary is the reference the run's increases count from; the periodic ones may be
      // seconds away from it (AIPerf scrapes every third of a second, so its reference is always close).
      scrapeAll();
      profilingStartNs = wallNs();
    },
    stop: async (inputConfig = {}) => {
      clearInterval(timer);
      scrapeAll();
      await chain;
      const endNs = wallNs();
      const doc = summarizeServerMetrics({
        configured: urls,
        scrapes,
        startNs: profilingStartNs,
        endNs,
        startTime: naiveLocalIsoTimestamp(new Date(profilingStartNs / 1e6)),
        endTime: naiveLocalIsoTimestamp(new Date(endNs / 1e6)),
        inputConfig,
        benchmarkId,
      });
      if (!doc) return {};
      const json = join(dir, SERVER_METRICS_JSON);
      const csv = join(dir, SERVER_METRICS_CSV);
      await writeFileAtomic(json, [renderServerMetricsJson(doc)]);
      await writeFileAtomic(csv, [renderServerMetricsCsv(doc)]);
      return { json, csv };
    },
  };
}
