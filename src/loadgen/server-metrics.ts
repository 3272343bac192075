import { appendFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ServelabError } from "../errors.ts";

export const SERVER_METRICS_JSONL = "server_metrics_export.jsonl";

/** How often each endpoint is scraped while the run sends; once more at its end. */
const SCRAPE_EVERY_MS = 5000;
const SCRAPE_TIMEOUT_MS = 4000;
/** A scrape body beyond this is cut off (a `/metrics` page is kilobytes). */
const MAX_SCRAPE_BYTES = 16 * 1024 * 1024;

/** `name{labels} value [timestamp]` lines of Prometheus' text format, as series → value; comments skipped. */
export function parsePrometheusText(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    // The value follows the series, which may hold spaces inside its quoted label values.
    const close = line.lastIndexOf("}");
    const rest = close >= 0 ? line.slice(close + 1).trim() : line.slice(line.indexOf(" ") + 1).trim();
    const series = close >= 0 ? line.slice(0, close + 1) : line.slice(0, line.indexOf(" "));
    const value = Number(rest.split(/\s+/)[0]);
    if (series !== "" && (Number.isFinite(value) || /^[+-]?(Inf|NaN)$/i.test(rest.split(/\s+/)[0] ?? "")))
      out[series] = value;
  }
  return out;
}

/** `--server-metrics URL…`: checked before the run starts. */
export function checkServerMetricsUrls(urls: readonly string[]): string[] {
  return urls.map((u) => {
    let parsed: URL;
    try {
      parsed = new URL(u.includes("://") ? u : `http://${u}`);
    } catch {
      throw new ServelabError("USAGE", `--server-metrics '${u}' is not a URL`);
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:")
      throw new ServelabError("USAGE", `--server-metrics '${u}' must be an http:// or https:// URL`);
    return parsed.href;
  });
}

/**
 * Scrapes Prometheus endpoints while a run sends (AIPerf's `--server-metrics`), one line per scrape in
 * `server_metrics_export.jsonl`: `{endpoint_url, timestamp_ns, metrics: {series: value}}`, or `error` in place of
 * `metrics` when a scrape failed. A failing endpoint never stops the run.
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
          return { endpoint_url: url, timestamp_ns: at, metrics: parsePrometheusText(text) };
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
