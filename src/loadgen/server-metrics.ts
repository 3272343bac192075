import { appendFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseHttpUrl } from "../io/http-url.ts";

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

/**
 * Scrapes Prometheus endpoints while a run sends (AIPerf's `--server-metrics`), one line per scrape in
 * `server_metrics_export.jsonl` in AIPerf's layout: `{endpoint_url, timestamp_ns, endpoint_latency_ns, metrics}` (see
 * parsePrometheusText), or `error` in place of `metrics` when a scrape failed. A failing endpoint never stops the run.
 */
export async function startServerMetrics(
  urls: readonly string[],
  dir: string,
  wallNs: () => number,
): Promise<{ stop(): Promise<void> }> {
  if (urls.length === 0) return { stop: async () => {} };
  const file = join(dir, SERVER_METRICS_JSONL);
  await writeFile(file, "");
  let chain = Promise.resolve();
  const scrapeAll = () => {
    for (const url of urls) {
      const at = wallNs();
      const line = fetch(url, { signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) })
        .then(async (res) => {
          if (!res.ok) throw new Error(`HTTP ${res.status}`);
          const text = await res.text();
          if (text.length > MAX_SCRAPE_BYTES) throw new Error(`body over ${MAX_SCRAPE_BYTES} bytes`);
          return {
            endpoint_url: url,
            timestamp_ns: at,
            endpoint_latency_ns: Math.round(wallNs() - at),
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
    stop: async () => {
      clearInterval(timer);
      scrapeAll();
      await chain;
    },
  };
}
