import type { RequestRecord } from "./record.ts";
import type { DistributionStats } from "./stats.ts";

/**
 * Every metric of AIPerf's summary exports, in the declared order of its JSON export model (`JsonExportData`).
 * `total_token_throughput` arrived later upstream as an extra field; it is listed after the declared ones so a
 * reader written for the older files finds everything else where it expects it.
 */
export const AIPERF_METRIC_TAGS = [
  "request_throughput",
  "request_latency",
  "request_count",
  "time_to_first_token",
  "time_to_second_token",
  "inter_token_latency",
  "output_token_throughput",
  "output_token_throughput_per_user",
  "output_sequence_length",
  "input_sequence_length",
  "goodput",
  "good_request_count",
  "output_token_count",
  "reasoning_token_count",
  "min_request_timestamp",
  "max_response_timestamp",
  "inter_chunk_latency",
  "total_output_tokens",
  "total_reasoning_tokens",
  "benchmark_duration",
  "total_isl",
  "total_osl",
  "error_request_count",
  "error_isl",
  "total_error_isl",
  "total_token_throughput",
] as const;

export type AiperfMetricTag = (typeof AIPERF_METRIC_TAGS)[number];

/**
 * The per-request metrics, in the order AIPerf writes them into a `profile_export.jsonl` line (the order it
 * computes them in). Each is summarized as a distribution over requests.
 */
export const RECORD_METRIC_TAGS = [
  "request_latency",
  "output_sequence_length",
  "time_to_first_token",
  "output_token_count",
  "reasoning_token_count",
  "input_sequence_length",
  "inter_chunk_latency",
  "time_to_second_token",
  "inter_token_latency",
  "output_token_throughput_per_user",
  "error_isl",
] as const satisfies readonly AiperfMetricTag[];

export type RecordMetricTag = (typeof RECORD_METRIC_TAGS)[number];

/** Display units, spelled as AIPerf spells them in its exports. */
export type MetricUnit =
  | "ms"
  | "sec"
  | "ns"
  | "tokens"
  | "requests"
  | "requests/sec"
  | "tokens/sec"
  | "tokens/sec/user";

export interface MetricInfo {
  readonly tag: AiperfMetricTag;
  /** AIPerf's header: CSV and console labels are `"<header> (<unit>)"`. */
  readonly header: string;
  readonly unit: MetricUnit;
  /** A value in the base unit (ns for times) divided by this is the value in `unit`. */
  readonly divisor: number;
  /** Summarized as a distribution over requests (otherwise a single value). */
  readonly perRequest: boolean;
  /** AIPerf's LARGER_IS_BETTER flag: a goodput SLO on the metric is a floor, not a ceiling. */
  readonly largerIsBetter: boolean;
}

const NS_PER_MS = 1e6;
const NS_PER_S = 1e9;

function info(
  tag: AiperfMetricTag,
  header: string,
  unit: MetricUnit,
  perRequest: boolean,
  largerIsBetter = false,
): MetricInfo {
  const divisor = unit === "ms" ? NS_PER_MS : unit === "sec" ? NS_PER_S : 1;
  return { tag, header, unit, divisor, perRequest, largerIsBetter };
}

export const METRICS: { readonly [K in AiperfMetricTag]: MetricInfo } = {
  request_throughput: info("request_throughput", "Request Throughput", "requests/sec", false, true),
  request_latency: info("request_latency", "Request Latency", "ms", true),
  request_count: info("request_count", "Request Count", "requests", false, true),
  time_to_first_token: info("time_to_first_token", "Time to First Token", "ms", true),
  time_to_second_token: info("time_to_second_token", "Time to Second Token", "ms", true),
  inter_token_latency: info("inter_token_latency", "Inter Token Latency", "ms", true),
  output_token_throughput: info(
    "output_token_throughput",
    "Output Token Throughput",
    "tokens/sec",
    false,
    true,
  ),
  output_token_throughput_per_user: info(
    "output_token_throughput_per_user",
    "Output Token Throughput Per User",
    "tokens/sec/user",
    true,
    true,
  ),
  output_sequence_length: info("output_sequence_length", "Output Sequence Length", "tokens", true, true),
  input_sequence_length: info("input_sequence_length", "Input Sequence Length", "tokens", true, true),
  goodput: info("goodput", "Goodput", "requests/sec", false, true),
  // AIPerf's header really is the class-style name (verified in its CSV: `GoodRequestCount,6.00`).
  good_request_count: info("good_request_count", "GoodRequestCount", "requests", false, true),
  output_token_count: info("output_token_count", "Output Token Count", "tokens", true, true),
  reasoning_token_count: info("reasoning_token_count", "Reasoning Token Count", "tokens", true, true),
  min_request_timestamp: info("min_request_timestamp", "Minimum Request Timestamp", "ns", false),
  max_response_timestamp: info("max_response_timestamp", "Maximum Response Timestamp", "ns", false),
  inter_chunk_latency: info("inter_chunk_latency", "Inter Chunk Latency", "ms", true),
  total_output_tokens: info("total_output_tokens", "Total Output Tokens", "tokens", false, true),
  total_reasoning_tokens: info("total_reasoning_tokens", "Total Reasoning Tokens", "tokens", false, true),
  benchmark_duration: info("benchmark_duration", "Benchmark Duration", "sec", false),
  total_isl: info("total_isl", "Total Input Sequence Length", "tokens", false, true),
  total_osl: info("total_osl", "Total Output Sequence Length", "tokens", false, true),
  error_request_count: info("error_request_count", "Error Request Count", "requests", false),
  error_isl: info("error_isl", "Error Input Sequence Length", "tokens", true, true),
  total_error_isl: info("total_error_isl", "Total Error Input Sequence Length", "tokens", false, true),
  total_token_throughput: info("total_token_throughput", "Total Token Throughput", "tokens/sec", false, true),
};

/** Rows of the console table, in AIPerf's `display_order`; the other metrics are file-only. */
export const CONSOLE_METRIC_TAGS = [
  "time_to_first_token",
  "time_to_second_token",
  "request_latency",
  "inter_token_latency",
  "output_token_throughput_per_user",
  "output_sequence_length",
  "input_sequence_length",
  "output_token_throughput",
  "request_throughput",
  "goodput",
  "request_count",
] as const satisfies readonly AiperfMetricTag[];

/** What went wrong with a request, in the shape of AIPerf's `ErrorDetails`. */
export interface ErrorDetails {
  /** HTTP status, 499 for a cancellation, 0 for a transport failure, null when no response was at fault. */
  code: number | null;
  type: string;
  message: string;
}

/**
 * Per-request metric values in base units (ns for times, tokens, tokens/sec/user). A metric that does not apply
 * to the request (TTFT of a non-streamed one, ITL with fewer than two output tokens...) is absent.
 */
export interface RecordMetricValues {
  time_to_first_token?: number;
  time_to_second_token?: number;
  request_latency?: number;
  inter_token_latency?: number;
  /** One gap per pair of consecutive content responses. */
  inter_chunk_latency?: Float64Array;
  output_token_throughput_per_user?: number;
  output_sequence_length?: number;
  input_sequence_length?: number;
  output_token_count?: number;
  reasoning_token_count?: number;
  /** Only on failed requests: their prompt tokens. */
  error_isl?: number;
}

export interface RecordMetrics {
  /** Null when the request counts as a success (AIPerf's validity rule); then the timing metrics are present. */
  error: ErrorDetails | null;
  /**
   * Arrival of the last content response (AIPerf `request_end_ns`); for a request with none, when it ended (its
   * `endNs`, else the last time it is known to have been alive: headers, or its start).
   */
  endNs: number;
  values: RecordMetricValues;
  /** Whether the request met every goodput SLO (1) or not (0); set by a collector that has SLOs, valid requests only. */
  good?: 0 | 1;
}

function fail(record: RequestRecord, what: string): never {
  throw new RangeError(`request record ${JSON.stringify(record.requestId)}: ${what}`);
}

function checkCount(record: RequestRecord, field: string, v: unknown): void {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
    fail(record, `${field} must be a non-negative integer, got ${String(v)}`);
  }
}

/**
 * Records come from our own load generator and simulator, but their token counts may come from a server's
 * `usage` field; a malformed record would silently corrupt every aggregate, so it is rejected loudly.
 */
function checkRecord(record: RequestRecord): void {
  if (!Number.isFinite(record.startNs))
    fail(record, `startNs must be a finite number, got ${record.startNs}`);
  const chunks = record.chunkNs;
  let prev = record.startNs;
  for (let i = 0; i < chunks.length; i++) {
    const t = chunks[i]!;
    if (!Number.isFinite(t)) fail(record, `chunkNs[${i}] must be a finite number, got ${t}`);
    // One monotonic clock stamps the start and every chunk, so time can never run backwards.
    if (t < prev) {
      fail(
        record,
        `chunkNs[${i}] = ${t} is earlier than ${i === 0 ? "startNs" : `chunkNs[${i - 1}]`} = ${prev}`,
      );
    }
    prev = t;
  }
  checkCount(record, "inputTokens", record.inputTokens);
  checkCount(record, "outputTokens", record.outputTokens);
  if (record.reasoningTokens !== undefined) checkCount(record, "reasoningTokens", record.reasoningTokens);
}

/**
 * Why a record does not count as a successful request, or null if it does. AIPerf's rule: no error, at least one
 * content response, and the last one after the start. A failure without error details gets the details AIPerf
 * would give it (a cancellation, or an invalid inference result).
 */
export function recordError(record: RequestRecord): ErrorDetails | null {
  if (record.error)
    return { code: record.error.code, type: record.error.type, message: record.error.message };
  if (record.cancelled)
    return { code: 499, type: "RequestCancellationError", message: "Request was cancelled" };
  const n = record.chunkNs.length;
  if (n === 0) {
    return {
      code: null,
      type: "InvalidInferenceResultError",
      message: "Invalid inference result: no responses were received",
    };
  }
  if (record.chunkNs[n - 1]! <= record.startNs) {
    return {
      code: null,
      type: "InvalidInferenceResultError",
      message: "Invalid inference result: the last response did not arrive after the request start",
    };
  }
  return null;
}

/**
 * The per-request metrics of one record, as AIPerf computes them from its content responses (`chunkNs`).
 * Throws RangeError for a malformed record (non-finite times, chunks out of order, negative token counts).
 */
export function computeRecordMetrics(record: RequestRecord): RecordMetrics {
  checkRecord(record);
  const chunks = record.chunkNs;
  const n = chunks.length;
  const endNs = n > 0 ? chunks[n - 1]! : (record.endNs ?? record.ackNs ?? record.startNs);
  const error = recordError(record);
  if (error) return { error, endNs, values: { error_isl: record.inputTokens } };

  const start = record.startNs;
  const first = chunks[0]!;
  const latency = endNs! - start;
  const reasoning = record.reasoningTokens;
  const osl = record.outputTokens + (reasoning ?? 0);
  const values: RecordMetricValues = {
    request_latency: latency,
    output_sequence_length: osl,
    output_token_count: record.outputTokens,
    input_sequence_length: record.inputTokens,
  };
  if (reasoning !== undefined) values.reasoning_token_count = reasoning;
  if (record.streaming) {
    const ttft = first - start;
    values.time_to_first_token = ttft;
    if (n >= 2) {
      values.time_to_second_token = chunks[1]! - first;
      const gaps = new Float64Array(n - 1);
      let positive = true;
      for (let i = 1; i < n; i++) {
        const gap = chunks[i]! - chunks[i - 1]!;
        if (gap <= 0) positive = false;
        gaps[i - 1] = gap;
      }
      // AIPerf rejects the whole list when two responses share a timestamp.
      if (positive) values.inter_chunk_latency = gaps;
    }
    if (osl >= 2) {
      const itl = (latency - ttft) / (osl - 1);
      values.inter_token_latency = itl;
      // A single chunk carrying every token gives ITL 0, for which AIPerf reports no per-user rate.
      if (itl > 0) values.output_token_throughput_per_user = 1 / (itl / NS_PER_S);
    }
  }
  return { error: null, endNs, values };
}

/** A base-unit value in the metric's display unit. */
export function toDisplayUnit(tag: AiperfMetricTag, baseValue: number): number {
  return baseValue / METRICS[tag].divisor;
}

/** A per-request metric summarized over requests, in display units; keys in AIPerf's JSON order. */
export interface DistributionResult extends DistributionStats {
  unit: MetricUnit;
}

/** A single-valued metric, in display units (AIPerf reports it as the `avg` of a one-value result). */
export interface ScalarResult {
  unit: MetricUnit;
  avg: number;
}

/**
 * AIPerf's summary: one entry per metric, in `AIPERF_METRIC_TAGS` order, null where the metric does not apply
 * (no streamed requests for TTFT, no SLOs for goodput, no failures for the error metrics...).
 */
export interface AiperfSummary {
  request_throughput: ScalarResult | null;
  request_latency: DistributionResult | null;
  request_count: ScalarResult | null;
  time_to_first_token: DistributionResult | null;
  time_to_second_token: DistributionResult | null;
  inter_token_latency: DistributionResult | null;
  output_token_throughput: ScalarResult | null;
  output_token_throughput_per_user: DistributionResult | null;
  output_sequence_length: DistributionResult | null;
  input_sequence_length: DistributionResult | null;
  goodput: ScalarResult | null;
  good_request_count: ScalarResult | null;
  output_token_count: DistributionResult | null;
  reasoning_token_count: DistributionResult | null;
  min_request_timestamp: ScalarResult | null;
  max_response_timestamp: ScalarResult | null;
  inter_chunk_latency: DistributionResult | null;
  total_output_tokens: ScalarResult | null;
  total_reasoning_tokens: ScalarResult | null;
  benchmark_duration: ScalarResult | null;
  total_isl: ScalarResult | null;
  total_osl: ScalarResult | null;
  error_request_count: ScalarResult | null;
  error_isl: DistributionResult | null;
  total_error_isl: ScalarResult | null;
  total_token_throughput: ScalarResult | null;
}

/** One line of AIPerf's `error_summary`: identical error details and how many requests failed with them. */
export interface ErrorSummaryEntry {
  error_details: ErrorDetails;
  count: number;
}
