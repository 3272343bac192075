import {
  type AiperfMetricTag,
  type AiperfSummary,
  computeRecordMetrics,
  type DistributionResult,
  type ErrorSummaryEntry,
  METRICS,
  RECORD_METRIC_TAGS,
  type RecordMetrics,
  type RecordMetricTag,
  type ScalarResult,
} from "./aiperf-metrics.ts";
import { type GoodputSlo, meetsSlos } from "./goodput.ts";
import type { RequestRecord } from "./record.ts";
import { distributionStats, GrowableFloat64Array, scaleStats } from "./stats.ts";

export interface MetricsCollectorOptions {
  /** Goodput SLOs (see `parseGoodput`); none or empty: goodput and good_request_count are null. */
  goodput?: readonly GoodputSlo[] | undefined;
  /** Values each per-request metric's buffer holds before it first grows (default 256); small for many collectors. */
  initialCapacity?: number | undefined;
}

const NS_PER_S = 1e9;

function compareErrors(a: ErrorSummaryEntry, b: ErrorSummaryEntry): number {
  const x = a.error_details;
  const y = b.error_details;
  if (a.count !== b.count) return b.count - a.count;
  if (x.code !== y.code) return (x.code ?? -1) - (y.code ?? -1);
  if (x.type !== y.type) return x.type < y.type ? -1 : 1;
  if (x.message !== y.message) return x.message < y.message ? -1 : 1;
  return 0;
}

/**
 * Accumulates AIPerf's metrics one finished request at a time. Only what the summary needs is kept: one float per
 * request and per-request metric (plus every inter-chunk gap, which AIPerf pools), running sums, and one counter
 * per distinct error. Records may arrive in any order: the summary depends only on which records were added.
 *
 * Warmup records and records past the duration + grace window must be filtered out by the caller, before `add`.
 */
export class MetricsCollector {
  private readonly slos: readonly GoodputSlo[];
  private readonly values = new Map<RecordMetricTag, GrowableFloat64Array>();
  private valid = 0;
  private failed = 0;
  private good = 0;
  private minStartNs = Number.POSITIVE_INFINITY;
  private maxEndNs = Number.NEGATIVE_INFINITY;
  private totalIsl = 0;
  private totalOsl = 0;
  private totalOutputTokens = 0;
  private totalReasoningTokens: number | null = null;
  private totalErrorIsl = 0;
  private readonly errors = new Map<string, ErrorSummaryEntry>();

  constructor(options: MetricsCollectorOptions = {}) {
    this.slos = options.goodput ?? [];
    const capacity = options.initialCapacity ?? 256;
    for (const tag of RECORD_METRIC_TAGS) this.values.set(tag, new GrowableFloat64Array(capacity));
  }

  /** Successful requests so far (AIPerf `request_count`). */
  get requestCount(): number {
    return this.valid;
  }

  /** Failed requests so far (AIPerf `error_request_count`). */
  get errorRequestCount(): number {
    return this.failed;
  }

  /**
   * Adds one finished request and returns its metrics (pass them to `JsonlRecordWriter.write` to avoid computing
   * them twice). Throws RangeError for a malformed record, without counting it.
   */
  add(record: RequestRecord): RecordMetrics {
    const metrics = computeRecordMetrics(record);
    const v = metrics.values;
    if (metrics.error) {
      this.failed++;
      this.totalErrorIsl += record.inputTokens;
      this.buffer("error_isl").push(record.inputTokens);
      const d = metrics.error;
      const key = JSON.stringify([d.code, d.type, d.message]);
      const entry = this.errors.get(key);
      if (entry) entry.count++;
      else this.errors.set(key, { error_details: { ...d }, count: 1 });
      return metrics;
    }
    this.valid++;
    for (const tag of RECORD_METRIC_TAGS) {
      const value = v[tag];
      if (value === undefined) continue;
      if (typeof value === "number") this.buffer(tag).push(value);
      else this.buffer(tag).pushAll(value);
    }
    this.minStartNs = Math.min(this.minStartNs, record.startNs);
    this.maxEndNs = Math.max(this.maxEndNs, metrics.endNs);
    this.totalIsl += record.inputTokens;
    this.totalOsl += v.output_sequence_length!;
    this.totalOutputTokens += record.outputTokens;
    if (record.reasoningTokens !== undefined) {
      this.totalReasoningTokens = (this.totalReasoningTokens ?? 0) + record.reasoningTokens;
    }
    if (this.slos.length > 0) {
      metrics.good = meetsSlos(v, this.slos) ? 1 : 0;
      this.good += metrics.good;
    }
    return metrics;
  }

  /**
   * The summary of every record added so far, in AIPerf's units and key order. May be called again after more
   * records are added.
   */
  finish(): AiperfSummary {
    const hasValid = this.valid > 0;
    const hasErrors = this.failed > 0;
    // Only successful requests bound the run: a failure never stretches the duration.
    const durationS = hasValid ? (this.maxEndNs - this.minStartNs) / NS_PER_S : null;
    const perSecond = (count: number) => (durationS === null ? null : count / durationS);
    const slos = this.slos.length > 0;
    return {
      request_throughput: this.scalar("request_throughput", perSecond(this.valid)),
      request_latency: this.distribution("request_latency"),
      request_count: this.scalar("request_count", hasValid ? this.valid : null),
      time_to_first_token: this.distribution("time_to_first_token"),
      time_to_second_token: this.distribution("time_to_second_token"),
      inter_token_latency: this.distribution("inter_token_latency"),
      output_token_throughput: this.scalar("output_token_throughput", perSecond(this.totalOsl)),
      output_token_throughput_per_user: this.distribution("output_token_throughput_per_user"),
      output_sequence_length: this.distribution("output_sequence_length"),
      input_sequence_length: this.distribution("input_sequence_length"),
      goodput: this.scalar("goodput", slos ? perSecond(this.good) : null),
      good_request_count: this.scalar("good_request_count", slos && hasValid ? this.good : null),
      output_token_count: this.distribution("output_token_count"),
      reasoning_token_count: this.distribution("reasoning_token_count"),
      min_request_timestamp: this.scalar("min_request_timestamp", hasValid ? this.minStartNs : null),
      max_response_timestamp: this.scalar("max_response_timestamp", hasValid ? this.maxEndNs : null),
      inter_chunk_latency: this.distribution("inter_chunk_latency"),
      total_output_tokens: this.scalar("total_output_tokens", hasValid ? this.totalOutputTokens : null),
      total_reasoning_tokens: this.scalar("total_reasoning_tokens", this.totalReasoningTokens),
      benchmark_duration: this.scalar("benchmark_duration", durationS),
      total_isl: this.scalar("total_isl", hasValid ? this.totalIsl : null),
      total_osl: this.scalar("total_osl", hasValid ? this.totalOsl : null),
      error_request_count: this.scalar("error_request_count", hasErrors ? this.failed : null),
      error_isl: this.distribution("error_isl"),
      total_error_isl: this.scalar("total_error_isl", hasErrors ? this.totalErrorIsl : null),
      total_token_throughput: this.scalar("total_token_throughput", perSecond(this.totalIsl + this.totalOsl)),
    };
  }

  /** Sorts what has been added so far, in spare time, so that `finish` has less to do (its results are the same). */
  presort(): void {
    for (const values of this.values.values()) values.presort();
  }

  /** AIPerf's `error_summary`: most frequent first, then by code, type and message, so the order is stable. */
  errorSummary(): ErrorSummaryEntry[] {
    return [...this.errors.values()]
      .map((e) => ({ error_details: { ...e.error_details }, count: e.count }))
      .sort(compareErrors);
  }

  private buffer(tag: RecordMetricTag): GrowableFloat64Array {
    return this.values.get(tag)!;
  }

  /** `value` is already in the display unit. */
  private scalar(tag: AiperfMetricTag, value: number | null): ScalarResult | null {
    return value === null ? null : { unit: METRICS[tag].unit, avg: value };
  }

  private distribution(tag: RecordMetricTag): DistributionResult | null {
    const stats = distributionStats(this.buffer(tag).sorted());
    if (!stats) return null;
    return { unit: METRICS[tag].unit, ...scaleStats(stats, METRICS[tag].divisor) };
  }
}
