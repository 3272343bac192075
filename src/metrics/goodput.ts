import { ServelabError } from "../errors.ts";
import { AIPERF_METRIC_TAGS, METRICS, type RecordMetricValues, toDisplayUnit } from "./aiperf-metrics.ts";

/**
 * Metrics a goodput SLO may name: the single-valued per-request ones. AIPerf accepts any registered tag, but an
 * aggregate (or the inter-chunk list, or the error-only ISL) never exists on a successful record, so such an SLO
 * would silently make every request bad; naming one is rejected instead.
 */
export const GOODPUT_METRIC_TAGS = [
  "time_to_first_token",
  "time_to_second_token",
  "request_latency",
  "inter_token_latency",
  "output_token_throughput_per_user",
  "output_sequence_length",
  "input_sequence_length",
  "output_token_count",
  "reasoning_token_count",
] as const;

export type GoodputMetricTag = (typeof GOODPUT_METRIC_TAGS)[number];

export interface GoodputSlo {
  readonly tag: GoodputMetricTag;
  /** In the metric's display unit (ms for latencies, tokens/sec/user, tokens), as the user wrote it. */
  readonly threshold: number;
  /** The value must be at least the threshold (throughputs, lengths); otherwise at most. */
  readonly largerIsBetter: boolean;
}

const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

function isGoodputTag(tag: string): tag is GoodputMetricTag {
  return (GOODPUT_METRIC_TAGS as readonly string[]).includes(tag);
}

function checkTag(tag: string): GoodputMetricTag {
  if (isGoodputTag(tag)) return tag;
  const allowed = GOODPUT_METRIC_TAGS.join(", ");
  if ((AIPERF_METRIC_TAGS as readonly string[]).includes(tag)) {
    throw new ServelabError(
      "USAGE",
      `goodput: ${tag} is not a single per-request metric, so it cannot be an SLO; use one of: ${allowed}`,
    );
  }
  throw new ServelabError("USAGE", `goodput: unknown metric ${JSON.stringify(tag)}; use one of: ${allowed}`);
}

function slo(tag: GoodputMetricTag, threshold: number, written: string): GoodputSlo {
  if (!Number.isFinite(threshold) || threshold <= 0) {
    throw new ServelabError(
      "USAGE",
      `goodput: threshold for ${tag} must be a positive number of ${METRICS[tag].unit}, got ${written}`,
    );
  }
  return { tag, threshold, largerIsBetter: METRICS[tag].largerIsBetter };
}

/**
 * Parses goodput SLOs: AIPerf's `--goodput` string (`"time_to_first_token:200 inter_token_latency:20"`, pairs
 * separated by whitespace) or a recipe's map (`{time_to_first_token: 200}`). Thresholds are in display units.
 * An empty string or map means no SLOs. Throws ServelabError USAGE naming the offending pair.
 */
export function parseGoodput(spec: string | Readonly<Record<string, unknown>>): GoodputSlo[] {
  const out: GoodputSlo[] = [];
  const seen = new Set<string>();
  const add = (tag: GoodputMetricTag, threshold: number, written: string) => {
    if (seen.has(tag)) throw new ServelabError("USAGE", `goodput: ${tag} is given more than once`);
    seen.add(tag);
    out.push(slo(tag, threshold, written));
  };
  if (typeof spec === "string") {
    for (const pair of spec.trim().split(/\s+/)) {
      if (pair === "") continue;
      const colon = pair.indexOf(":");
      if (colon <= 0) {
        throw new ServelabError(
          "USAGE",
          `goodput: ${JSON.stringify(pair)} is not a metric:threshold pair (e.g. time_to_first_token:200)`,
        );
      }
      const tag = checkTag(pair.slice(0, colon));
      const written = pair.slice(colon + 1);
      if (!NUMBER.test(written)) {
        throw new ServelabError(
          "USAGE",
          `goodput: threshold for ${tag} must be a number, got ${JSON.stringify(written)}`,
        );
      }
      add(tag, Number(written), written);
    }
    return out;
  }
  if (spec === null || typeof spec !== "object" || Array.isArray(spec)) {
    throw new ServelabError(
      "USAGE",
      "goodput: expected a string of metric:threshold pairs or a metric → threshold map",
    );
  }
  for (const [key, value] of Object.entries(spec)) {
    const tag = checkTag(key);
    if (typeof value !== "number") {
      throw new ServelabError(
        "USAGE",
        `goodput: threshold for ${tag} must be a number, got ${JSON.stringify(value) ?? String(value)}`,
      );
    }
    add(tag, value, String(value));
  }
  return out;
}

/**
 * Whether a request meets every SLO (AIPerf's good request). A metric the request lacks (ITL of a one-token
 * answer, TTFT of a non-streamed one) fails its SLO. The comparison is in display units, as AIPerf makes it.
 */
export function meetsSlos(values: RecordMetricValues, slos: readonly GoodputSlo[]): boolean {
  for (const s of slos) {
    const v = values[s.tag];
    if (v === undefined) return false;
    const display = toDisplayUnit(s.tag, v);
    if (s.largerIsBetter ? !(display >= s.threshold) : !(display <= s.threshold)) return false;
  }
  return true;
}
