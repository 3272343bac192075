import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  AIPERF_METRIC_TAGS,
  computeRecordMetrics,
  METRICS,
  RECORD_METRIC_TAGS,
  recordError,
  toDisplayUnit,
} from "./aiperf-metrics.ts";
import { makeRecord, NS_PER_MS } from "./record-fixtures.ts";

const ms = (ns: number | undefined) => (ns === undefined ? undefined : ns / NS_PER_MS);

describe("computeRecordMetrics", () => {
  it("computes AIPerf's per-request metrics from the content responses", () => {
    const m = computeRecordMetrics(
      makeRecord({ startMs: 0, chunksMs: [100, 150, 190], output: 3, input: 42 }),
    );
    const v = m.values;
    assert.equal(m.error, null);
    assert.equal(m.endNs, 190 * NS_PER_MS);
    assert.equal(ms(v.time_to_first_token), 100);
    assert.equal(ms(v.time_to_second_token), 50);
    assert.equal(ms(v.request_latency), 190);
    // (190 − 100) / (3 − 1)
    assert.equal(ms(v.inter_token_latency), 45);
    assert.ok(Math.abs(v.output_token_throughput_per_user! - 1 / 0.045) < 1e-9);
    assert.equal(v.output_token_throughput_per_user!.toFixed(4), "22.2222");
    assert.deepEqual([...v.inter_chunk_latency!].map(ms), [50, 40]);
    assert.equal(v.output_sequence_length, 3);
    assert.equal(v.output_token_count, 3);
    assert.equal(v.input_sequence_length, 42);
    assert.equal(v.reasoning_token_count, undefined);
    assert.equal(v.error_isl, undefined);
  });

  it("counts reasoning tokens in OSL but not in output_token_count", () => {
    const v = computeRecordMetrics(
      makeRecord({ startMs: 10, chunksMs: [30, 40, 50, 60, 70], output: 3, reasoning: 2 }),
    ).values;
    assert.equal(v.output_sequence_length, 5);
    assert.equal(v.output_token_count, 3);
    assert.equal(v.reasoning_token_count, 2);
    // (60 − 20) / (5 − 1)
    assert.equal(ms(v.inter_token_latency), 10);
    assert.equal(v.output_token_throughput_per_user, 100);
  });

  it("uses OSL, not the chunk count, for ITL (a chunk may carry several tokens)", () => {
    const v = computeRecordMetrics(makeRecord({ startMs: 0, chunksMs: [100, 200], output: 11 })).values;
    assert.equal(ms(v.inter_token_latency), 10);
    assert.deepEqual([...v.inter_chunk_latency!].map(ms), [100]);
  });

  it("gives a non-streamed request only its latency and token counts", () => {
    const v = computeRecordMetrics(
      makeRecord({ startMs: 0, chunksMs: [250], output: 40, streaming: false }),
    ).values;
    assert.equal(ms(v.request_latency), 250);
    assert.equal(v.output_sequence_length, 40);
    for (const tag of [
      "time_to_first_token",
      "time_to_second_token",
      "inter_token_latency",
      "inter_chunk_latency",
      "output_token_throughput_per_user",
    ] as const) {
      assert.equal(v[tag], undefined, tag);
    }
  });

  it("has no ITL below two output tokens, and no per-user rate when ITL is 0", () => {
    const one = computeRecordMetrics(makeRecord({ startMs: 0, chunksMs: [100], output: 1 })).values;
    assert.equal(ms(one.time_to_first_token), 100);
    assert.equal(one.time_to_second_token, undefined);
    assert.equal(one.inter_chunk_latency, undefined);
    assert.equal(one.inter_token_latency, undefined);
    const bundled = computeRecordMetrics(makeRecord({ startMs: 0, chunksMs: [100], output: 5 })).values;
    assert.equal(bundled.inter_token_latency, 0);
    assert.equal(bundled.output_token_throughput_per_user, undefined);
  });

  it("drops the inter-chunk list when two responses share a timestamp, keeping TTST", () => {
    const v = computeRecordMetrics(makeRecord({ startMs: 0, chunksMs: [100, 100, 120], output: 3 })).values;
    assert.equal(v.inter_chunk_latency, undefined);
    assert.equal(v.time_to_second_token, 0);
    assert.equal(ms(v.inter_token_latency), 10);
  });

  it("gives a failed request only error_isl, with its error details", () => {
    const error = { code: 503, type: "Service Unavailable", message: "overloaded" };
    const m = computeRecordMetrics(makeRecord({ startMs: 0, chunksMs: [100, 200], input: 77, error }));
    assert.deepEqual(m.error, error);
    assert.deepEqual(m.values, { error_isl: 77 });
    assert.equal(m.endNs, 200 * NS_PER_MS);
  });

  it("applies AIPerf's validity rule to records without error details", () => {
    const none = computeRecordMetrics(makeRecord({ startMs: 5, chunksMs: [], input: 9 }));
    assert.equal(none.error?.type, "InvalidInferenceResultError");
    assert.equal(none.error?.code, null);
    assert.match(none.error!.message, /no responses/);
    // No content: it ended, as far as is known, when it started.
    assert.equal(none.endNs, 5 * NS_PER_MS);
    assert.deepEqual(none.values, { error_isl: 9 });

    const instant = computeRecordMetrics(makeRecord({ startMs: 5, chunksMs: [5] }));
    assert.equal(instant.error?.type, "InvalidInferenceResultError");

    const cancelled = recordError(makeRecord({ startMs: 0, chunksMs: [10], cancelled: true }));
    assert.deepEqual(cancelled, {
      code: 499,
      type: "RequestCancellationError",
      message: "Request was cancelled",
    });
  });

  it("rejects malformed records", () => {
    assert.throws(
      () => computeRecordMetrics(makeRecord({ startMs: 0, chunksMs: [100, 90] })),
      (e: unknown) => e instanceof RangeError && /chunkNs\[1\].*earlier than chunkNs\[0\]/.test(e.message),
    );
    assert.throws(
      () => computeRecordMetrics(makeRecord({ startMs: 50, chunksMs: [40] })),
      /earlier than startNs/,
    );
    assert.throws(
      () => computeRecordMetrics(makeRecord({ startMs: 0, chunksMs: [1], output: -1 })),
      /outputTokens/,
    );
    assert.throws(
      () => computeRecordMetrics(makeRecord({ startMs: 0, chunksMs: [1], input: 1.5 })),
      /inputTokens/,
    );
    assert.throws(
      () => computeRecordMetrics(makeRecord({ startMs: 0, chunksMs: [1], reasoning: Number.NaN })),
      /reasoningTokens/,
    );
    assert.throws(() => computeRecordMetrics(makeRecord({ startMs: Number.NaN, chunksMs: [1] })), /startNs/);
  });
});

describe("metric registry", () => {
  it("describes every tag with its display unit", () => {
    for (const tag of AIPERF_METRIC_TAGS) assert.equal(METRICS[tag].tag, tag);
    for (const tag of RECORD_METRIC_TAGS) assert.ok(METRICS[tag].perRequest, tag);
    assert.equal(toDisplayUnit("time_to_first_token", 2.5e6), 2.5);
    assert.equal(toDisplayUnit("benchmark_duration", 3e9), 3);
    assert.equal(toDisplayUnit("output_sequence_length", 12), 12);
    assert.equal(METRICS.output_token_throughput_per_user.unit, "tokens/sec/user");
  });
});
