import { randomUUID } from "node:crypto";
import { appendFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { ServelabError } from "../errors.ts";
import { writeFileAtomic } from "../io/atomic-write.ts";
import { parseHttpUrl } from "../io/http-url.ts";
import { naiveLocalIsoTimestamp } from "../metrics/exporters.ts";
import { type MetricFamily, parseMetricFamilies } from "./server-metrics-families.ts";
import { slimRecordLine } from "./server-metrics-jsonl.ts";
import {
  renderServerMetricsCsv,
  renderServerMetricsJson,
  SERVER_METRICS_CSV,
  SERVER_METRICS_JSON,
  ServerMetricsAccumulator,
} from "./server-metrics-summary.ts";

export const SERVER_METRICS_JSONL = "server_metrics_export.jsonl";

/**
 * AIPerf's scrape interval (`AIPERF_SERVER_METRICS_COLLECTION_INTERVAL`, 0.333 s): the accumulator keeps numbers,
 * not pages, so a long run at this rate stays small; only the JSONL, when written, grows with it.
 */
export const COLLECTION_INTERVAL_MS = 333;
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

/** A metric's series by sample name (see parsePrometheusText). */
type SeriesEntry =
  | { labels?: Record<string, string>; value: number }
  | { labels?: Record<string, string>; buckets: Record<string, number>; sum: number; count: number };

const withLabels = (labels: Record<string, string>) => (Object.keys(labels).length > 0 ? { labels } : {});

/**
 * Prometheus' text format as a reader of servelab's own workers wants it: metric name as written → series, each
 * `{labels, value}`, a histogram's `_bucket`, `_sum` and `_count` lines folded into one `{labels, buckets: {le:
 * count}, sum, count}` per label set. Names stay as the endpoint wrote them (a counter keeps its `_total`, a family's
 * `_created` lines are their own metric). Not AIPerf's JSONL layout: that is `slimRecordLine` over
 * `parseMetricFamilies`, which names families as prometheus_client does.
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
    { labels: Record<string, string>; buckets: Record<string, number>; sum: number; count: number }
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
      h = { labels: rest, buckets: {}, sum: 0, count: 0 };
      folded.set(key, h);
      seriesOf(base).push(h as SeriesEntry);
    }
    if (s.name.endsWith("_bucket") && le !== undefined) h.buckets[le] = s.value;
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

/**
 * A metrics endpoint as AIPerf writes it (`normalize_metrics_endpoint_url`, `aiperf/common/metric_utils.py`): `http://`
 * put before a URL without `http://` or `https://`, trailing slashes cut from the path, and `/metrics` added unless
 * the path already ends in it; the query and fragment are kept. `http://host:8000` and `host:8000/` are both
 * `http://host:8000/metrics`; `http://host/v1` is `http://host/v1/metrics`.
 */
export function normalizeMetricsEndpointUrl(url: string): string {
  if (url.trim() === "") throw new ServelabError("USAGE", "a server-metrics URL cannot be empty");
  const full = url.startsWith("http://") || url.startsWith("https://") ? url : `http://${url}`;
  // urlsplit: scheme://netloc, then the path up to "?" or "#", then the query and fragment.
  const m = /^(https?:\/\/[^/?#]*)([^?#]*)(?:\?([^#]*))?(?:#(.*))?$/.exec(full)!;
  let path = m[2]!.replace(/\/+$/, "");
  if (!path.endsWith("/metrics")) path = `${path}/metrics`;
  // urlunsplit leaves out an empty query or fragment with its separator.
  return `${m[1]}${path}${m[3] ? `?${m[3]}` : ""}${m[4] ? `#${m[4]}` : ""}`;
}

/**
 * `--server-metrics URL…` (or bare `host:port`s), normalised as AIPerf does (see normalizeMetricsEndpointUrl), each
 * checked to be an http(s) URL; `error[USAGE]` naming the flag otherwise.
 */
export function checkServerMetricsUrls(urls: readonly string[]): string[] {
  return urls.map((u) => {
    const normalized = normalizeMetricsEndpointUrl(u);
    parseHttpUrl(normalized, "--server-metrics");
    return normalized;
  });
}

/**
 * The endpoints AIPerf scrapes (`ServerMetricsManager`, `aiperf/server_metrics/manager.py`): unless disabled
 * (`--no-server-metrics`), `<URL>/metrics` of every inference `--url`, then every `--server-metrics` URL, each
 * normalised (see normalizeMetricsEndpointUrl) and each kept once, in that order. AIPerf's Kubernetes discovery (only
 * in a cluster) is not done here.
 */
export function serverMetricsEndpoints(o: {
  inferenceUrls: readonly string[];
  extraUrls?: readonly string[];
  enabled?: boolean;
}): string[] {
  if (o.enabled === false) return [];
  const out: string[] = [];
  for (const u of [
    ...o.inferenceUrls.map(normalizeMetricsEndpointUrl),
    ...checkServerMetricsUrls(o.extraUrls ?? []),
  ])
    if (!out.includes(u)) out.push(u);
  return out;
}

/** AIPerf's `AIPERF_SERVER_METRICS_REACHABILITY_TIMEOUT` default, seconds: each probe request's limit. */
export const REACHABILITY_TIMEOUT_MS = 10_000;

/**
 * AIPerf's reachability test of a metrics endpoint (`is_url_reachable`, `aiperf/common/mixins/
 * base_metrics_collector_mixin.py`): a HEAD, not following redirects, answered 200; else a GET answered 200; any
 * connection error or timeout (`timeoutMs` per request) is unreachable.
 */
export async function isMetricsEndpointReachable(
  url: string,
  timeoutMs = REACHABILITY_TIMEOUT_MS,
): Promise<boolean> {
  const attempt = async (method: "HEAD" | "GET", redirect: "manual" | "follow") => {
    const res = await fetch(url, { method, redirect, signal: AbortSignal.timeout(timeoutMs) });
    // Not read: only the status matters, and a GET's body is dropped unread.
    await res.body?.cancel().catch(() => {});
    return res.status === 200;
  };
  try {
    if (await attempt("HEAD", "manual")) return true;
    return await attempt("GET", "follow");
  } catch {
    return false;
  }
}

/** The endpoints that answered the reachability test, the rest, and what AIPerf logs about them. */
export interface ReachableEndpoints {
  reachable: string[];
  unreachable: string[];
  /** AIPerf's lines: an info one, and a warning naming the unreachable endpoints when some answered. */
  messages: { level: "info" | "warning"; text: string }[];
}

/**
 * Tests each endpoint in turn as AIPerf does before its baseline scrape; an unreachable one is left out with a
 * warning, never an error. When none is reachable the run scrapes nothing and writes no server-metrics file (AIPerf:
 * "Server metrics disabled - no Prometheus endpoints reachable").
 */
export async function reachableServerMetricsEndpoints(
  urls: readonly string[],
  probe: (url: string) => Promise<boolean> = (u) => isMetricsEndpointReachable(u),
): Promise<ReachableEndpoints> {
  const reachable: string[] = [];
  const unreachable: string[] = [];
  for (const u of urls) ((await probe(u).catch(() => false)) ? reachable : unreachable).push(u);
  const messages: ReachableEndpoints["messages"] = [];
  if (urls.length > 0 && reachable.length === 0)
    messages.push({ level: "info", text: "Server metrics disabled - no Prometheus endpoints reachable" });
  else if (urls.length > 0) {
    messages.push({
      level: "info",
      text: `Server metrics enabled - ${reachable.length}/${urls.length} endpoint(s) reachable.`,
    });
    if (unreachable.length > 0)
      messages.push({ level: "warning", text: `Unreachable endpoints: ${unreachable.join(", ")}` });
  }
  return { reachable, unreachable, messages };
}

/** The server-metrics files a run may write (AIPerf's `--server-metrics-formats`, less parquet). */
export type ServerMetricsFormat = "json" | "csv" | "jsonl";

export interface ServerMetricsOptions {
  /** Between scrapes, ms: AIPerf's `AIPERF_SERVER_METRICS_COLLECTION_INTERVAL`, 333 ms by default. */
  intervalMs?: number;
  /**
   * What to write. AIPerf writes json and csv (and parquet) unless told otherwise, jsonl only when asked; servelab
   * writes the jsonl too unless the caller says which.
   */
  formats?: readonly ServerMetricsFormat[];
  /** Test the endpoints first and scrape only those that answer (see reachableServerMetricsEndpoints). */
  checkReachability?: boolean;
  /** Each request's limit, ms (AIPerf's reachability timeout). */
  timeoutMs?: number;
  /** Where AIPerf's messages about the endpoints go. */
  log?: (level: "info" | "warning", text: string) => void;
}

/**
 * AIPerf's environment knobs for the scraper: `AIPERF_SERVER_METRICS_COLLECTION_INTERVAL` (seconds, 0.001–300,
 * default 0.333) and `AIPERF_SERVER_METRICS_REACHABILITY_TIMEOUT` (whole seconds, 1–300, default 10);
 * `error[USAGE]` for a value out of range. (AIPerf has no switch in the environment to turn scraping off: that is
 * `--no-server-metrics`.)
 */
export function serverMetricsOptionsFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): Pick<ServerMetricsOptions, "intervalMs" | "timeoutMs"> {
  const out: Pick<ServerMetricsOptions, "intervalMs" | "timeoutMs"> = {};
  const interval = env.AIPERF_SERVER_METRICS_COLLECTION_INTERVAL;
  if (interval !== undefined && interval.trim() !== "") {
    const s = Number(interval);
    if (!(s >= 0.001 && s <= 300))
      throw new ServelabError(
        "USAGE",
        `AIPERF_SERVER_METRICS_COLLECTION_INTERVAL '${interval}' is not a number of seconds from 0.001 to 300`,
      );
    out.intervalMs = s * 1000;
  }
  const timeout = env.AIPERF_SERVER_METRICS_REACHABILITY_TIMEOUT;
  if (timeout !== undefined && timeout.trim() !== "") {
    const s = Number(timeout);
    if (!(Number.isInteger(s) && s >= 1 && s <= 300))
      throw new ServelabError(
        "USAGE",
        `AIPERF_SERVER_METRICS_REACHABILITY_TIMEOUT '${timeout}' is not a whole number of seconds from 1 to 300`,
      );
    out.timeoutMs = s * 1000;
  }
  return out;
}

/** What the scraper hands back at the end of a run. */
export interface ServerMetricsScraper {
  /** The endpoints being scraped (after the reachability test, when asked for). */
  readonly endpoints: readonly string[];
  /**
   * The profiling phase starts: scrapes every endpoint and resolves once those scrapes are in, the last of them the
   * reference the phase's increases count from (warmup traffic left out). Never rejects.
   */
  markProfilingStart(): Promise<void>;
  /**
   * Scrapes once more, then writes AIPerf's aggregated `server_metrics_export.json` and `.csv` (atomically) when any
   * endpoint answered; returns their paths.
   */
  stop(inputConfig?: Readonly<Record<string, unknown>>): Promise<{ json?: string; csv?: string }>;
}

/**
 * Scrapes Prometheus endpoints while a run sends, as AIPerf's server-metrics collector does: once at the start, every
 * `intervalMs`, at the profiling start and at the end. A scrape's time is when its answer's first byte came. A page
 * that is the same text as the endpoint's previous one counts as a fetch, not an update, and gets no JSONL line; a
 * failed or empty scrape is no record at all (a failing endpoint never stops the run). `server_metrics_export.jsonl`
 * gets one `slimRecordLine` per other scrape, created with its first line. At the end the scrapes are aggregated into
 * `server_metrics_export.json` and `.csv` (see ServerMetricsAccumulator), whatever `--profile-export-level` says, as
 * AIPerf's own exports do.
 */
export async function startServerMetrics(
  urls: readonly string[],
  dir: string,
  wallNs: () => number,
  options: ServerMetricsOptions = {},
): Promise<ServerMetricsScraper> {
  const formats = new Set(options.formats ?? ["json", "csv", "jsonl"]);
  const timeoutMs = options.timeoutMs ?? REACHABILITY_TIMEOUT_MS;
  let endpoints = [...urls];
  if (options.checkReachability && endpoints.length > 0) {
    const r = await reachableServerMetricsEndpoints(endpoints, (u) =>
      isMetricsEndpointReachable(u, timeoutMs),
    );
    for (const m of r.messages) options.log?.(m.level, m.text);
    endpoints = r.reachable;
  }
  if (endpoints.length === 0)
    return { endpoints, markProfilingStart: async () => {}, stop: async () => ({}) };
  const file = join(dir, SERVER_METRICS_JSONL);
  // AIPerf clears the file of an earlier run and creates it only with its first line.
  await rm(file, { force: true });
  const benchmarkId = randomUUID();
  const acc = new ServerMetricsAccumulator();
  const lastText = new Map<string, { text: string; families: Record<string, MetricFamily> }>();
  const startedNs = wallNs();
  let profilingStartNs = startedNs;
  let chain = Promise.resolve();
  const inflight = new Set<Promise<void>>();
  const scrapeOne = async (url: string) => {
    const sentNs = wallNs();
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    const firstByteNs = Math.round(wallNs());
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      throw new Error(`HTTP ${res.status}`);
    }
    const text = await res.text();
    if (text.length > MAX_SCRAPE_BYTES) throw new Error(`body over ${MAX_SCRAPE_BYTES} bytes`);
    const latencyNs = Math.round(wallNs() - sentNs);
    const previous = lastText.get(url);
    const duplicate = previous !== undefined && previous.text === text;
    const families = duplicate ? previous.families : parseMetricFamilies(text);
    lastText.set(url, { text, families });
    // An empty page is no record (AIPerf drops empty snapshots).
    if (Object.keys(families).length === 0) return;
    acc.add({ endpointUrl: url, timestampNs: firstByteNs, latencyNs, families, duplicate });
    if (duplicate || !formats.has("jsonl")) return;
    const line = slimRecordLine({
      endpointUrl: url,
      timestampNs: firstByteNs,
      families,
      latencyNs,
      requestSentNs: Math.round(sentNs),
      firstByteNs,
    });
    chain = chain.then(() => appendFile(file, `${line}\n`)).catch(() => {});
  };
  /** One scrape of every endpoint; resolves when those are in (never rejects). */
  const scrapeAll = () =>
    Promise.all(
      endpoints.map((url) => {
        const p: Promise<void> = scrapeOne(url)
          .catch(() => {})
          .finally(() => inflight.delete(p));
        inflight.add(p);
        return p;
      }),
    );
  const settle = async () => {
    while (inflight.size > 0) await Promise.all([...inflight]);
    await chain;
  };
  void scrapeAll();
  const timer = setInterval(() => void scrapeAll(), options.intervalMs ?? COLLECTION_INTERVAL_MS);
  timer.unref();
  return {
    endpoints,
    markProfilingStart: async () => {
      // The boundary scrape is the reference the run's increases count from: the phase starts once it is in.
      await scrapeAll();
      profilingStartNs = wallNs();
    },
    stop: async (inputConfig = {}) => {
      clearInterval(timer);
      const endNs = wallNs();
      void scrapeAll();
      await settle();
      const doc = acc.summarize({
        configured: endpoints,
        startNs: profilingStartNs,
        endNs,
        startTime: naiveLocalIsoTimestamp(new Date(profilingStartNs / 1e6)),
        endTime: naiveLocalIsoTimestamp(new Date(endNs / 1e6)),
        inputConfig,
        benchmarkId,
      });
      if (!doc) return {};
      const out: { json?: string; csv?: string } = {};
      if (formats.has("json")) {
        out.json = join(dir, SERVER_METRICS_JSON);
        await writeFileAtomic(out.json, [renderServerMetricsJson(doc)]);
      }
      if (formats.has("csv")) {
        out.csv = join(dir, SERVER_METRICS_CSV);
        await writeFileAtomic(out.csv, [renderServerMetricsCsv(doc)]);
      }
      return out;
    },
  };
}
