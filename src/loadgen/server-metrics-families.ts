/**
 * Prometheus' text format read into metric families the way AIPerf's server-metrics collector reads it
 * (`aiperf/server_metrics/data_collector.py`, through `prometheus_client.parser.text_string_to_metric_families`): a
 * counter's family drops the `_total` of its name (the parser's OpenMetrics naming, so `vllm:request_success_total`
 * is the family `vllm:request_success`), an untyped family, or one without a `# TYPE`, is `unknown`, a histogram's
 * `_bucket`, `_sum` and `_count` lines fold into one sample per label set with its buckets in the order the endpoint
 * wrote them, labels are sorted by name, the last sample of a label set wins, non-finite values are dropped (a
 * histogram with one loses its whole label set), and summaries and the `_created` / `_uptime` bookkeeping families
 * are skipped.
 */

export type FamilyType = "counter" | "gauge" | "histogram" | "unknown";

export interface ScalarSample {
  labels: Record<string, string>;
  value: number;
}

export interface HistogramSample {
  labels: Record<string, string>;
  /**
   * Cumulative count per upper bound (`le`), in the order the endpoint wrote them (a Map: an object would put
   * integer-like bounds such as "1" first).
   */
  buckets: Map<string, number>;
  /** Absent when the endpoint wrote no `_sum` (`_count`) line for the label set. */
  sum?: number;
  count?: number;
}

export type MetricFamily =
  | { type: "counter" | "gauge" | "unknown"; help: string; samples: ScalarSample[] }
  | { type: "histogram"; help: string; samples: HistogramSample[] };

const LABEL = /([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"/g;
const unescapeLabel = (s: string) => s.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
const unescapeHelp = (s: string) => s.replace(/\\([\\n])/g, (_, c: string) => (c === "n" ? "\n" : "\\"));

interface Line {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseValue(text: string): number | null {
  if (/^[+]?Inf$/i.test(text)) return Number.POSITIVE_INFINITY;
  if (/^-Inf$/i.test(text)) return Number.NEGATIVE_INFINITY;
  if (/^NaN$/i.test(text)) return Number.NaN;
  if (text === "" || !/^[+-]?(\d|\.\d)/.test(text)) return null;
  const v = Number(text);
  return Number.isNaN(v) ? null : v;
}

function parseLine(line: string): Line | null {
  const brace = line.indexOf("{");
  const space = line.search(/\s/);
  const nameEnd = brace >= 0 && (space < 0 || brace < space) ? brace : space;
  if (nameEnd <= 0) return null;
  const name = line.slice(0, nameEnd);
  let rest = line.slice(nameEnd);
  const labels: Record<string, string> = {};
  if (rest.startsWith("{")) {
    const close = rest.lastIndexOf("}");
    if (close < 0) return null;
    for (const m of rest.slice(1, close).matchAll(LABEL)) labels[m[1]!] = unescapeLabel(m[2]!);
    rest = rest.slice(close + 1);
  }
  const value = parseValue(rest.trim().split(/\s+/)[0] ?? "");
  return value === null ? null : { name, labels, value };
}

const SUFFIXES: Record<string, readonly string[]> = {
  counter: [""],
  gauge: [""],
  histogram: ["_bucket", "_sum", "_count"],
  summary: ["", "_sum", "_count"],
};

const ALL_SUFFIXES = ["", "_bucket", "_sum", "_count"];

const sortedLabels = (labels: Record<string, string>, drop?: string) =>
  Object.fromEntries(
    Object.entries(labels)
      .filter(([k]) => k !== drop)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );

/** prometheus_client's family types: "untyped", and a type it has no rule for, are "unknown". */
function declaredType(text: string): string {
  const t = text.trim().toLowerCase();
  return t === "counter" || t === "gauge" || t === "histogram" || t === "summary" ? t : "unknown";
}

const skippedFamily = (name: string) =>
  name.endsWith("_created") || name.endsWith("_uptime") || name.includes("_uptime_");

/** The families of one scrape, keyed by family name, in the order they first appear. */
export function parseMetricFamilies(text: string): Record<string, MetricFamily> {
  const declared = new Map<string, string>();
  const help = new Map<string, string>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    const meta = /^#\s*(TYPE|HELP)\s+(\S+)(?:\s+(.*))?$/.exec(line);
    if (!meta) continue;
    if (meta[1] === "TYPE") declared.set(meta[2]!, declaredType(meta[3] ?? ""));
    else help.set(meta[2]!, unescapeHelp(meta[3] ?? ""));
  }
  /** A sample line's family: a declared one whose allowed names include it, else an untyped one of its own. */
  const familyOf = (sample: string): { name: string; type: string } => {
    for (const suffix of ALL_SUFFIXES) {
      if (!sample.endsWith(suffix)) continue;
      const base = sample.slice(0, sample.length - suffix.length);
      const type = declared.get(base);
      if (type !== undefined && (SUFFIXES[type] ?? [""]).includes(suffix)) return { name: base, type };
    }
    return { name: sample, type: "unknown" };
  };
  type Acc =
    | {
        type: "scalar";
        kind: "counter" | "gauge" | "unknown";
        help: string;
        byLabels: Map<string, ScalarSample>;
      }
    | {
        type: "histogram";
        help: string;
        byLabels: Map<string, HistogramSample>;
        tainted: Set<string>;
      };
  const families = new Map<string, Acc>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const s = parseLine(line);
    if (!s) continue;
    const { name: declaredName, type } = familyOf(s.name);
    if (type === "summary") continue;
    if (s.name.endsWith("_created") && type !== "unknown") continue;
    const name =
      type === "counter" && declaredName.endsWith("_total") ? declaredName.slice(0, -6) : declaredName;
    if (skippedFamily(name)) continue;
    let fam = families.get(name);
    if (!fam) {
      const h = help.get(declaredName) ?? "";
      fam =
        type === "histogram"
          ? { type: "histogram", help: h, byLabels: new Map(), tainted: new Set() }
          : { type: "scalar", kind: type as "counter" | "gauge" | "unknown", help: h, byLabels: new Map() };
      families.set(name, fam);
    }
    if (fam.type === "scalar") {
      if (!Number.isFinite(s.value)) continue;
      const labels = sortedLabels(s.labels);
      fam.byLabels.set(JSON.stringify(labels), { labels, value: s.value });
      continue;
    }
    const labels = sortedLabels(s.labels, "le");
    const key = JSON.stringify(labels);
    if (!Number.isFinite(s.value)) {
      fam.tainted.add(key);
      continue;
    }
    let h = fam.byLabels.get(key);
    if (!h) {
      h = { labels, buckets: new Map() };
      fam.byLabels.set(key, h);
    }
    if (s.name.endsWith("_bucket")) h.buckets.set(s.labels.le ?? "+Inf", s.value);
    else if (s.name.endsWith("_sum")) h.sum = s.value;
    else h.count = s.value;
  }
  const out: Record<string, MetricFamily> = {};
  for (const [name, fam] of families) {
    if (fam.type === "scalar") {
      if (fam.byLabels.size > 0)
        out[name] = { type: fam.kind, help: fam.help, samples: [...fam.byLabels.values()] };
      continue;
    }
    const samples = [...fam.byLabels].filter(([k]) => !fam.tainted.has(k)).map(([, v]) => v);
    if (samples.length > 0) out[name] = { type: "histogram", help: fam.help, samples };
  }
  return out;
}
