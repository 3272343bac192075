import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AIPERF_METRIC_TAGS, type AiperfSummary } from "./aiperf-metrics.ts";
import { MetricsCollector } from "./collector.ts";
import { parseGoodput } from "./goodput.ts";
import { makeRecord, smallRun } from "./record-fixtures.ts";

function collect(records = smallRun(), goodput = ""): MetricsCollector {
  const c = new MetricsCollector({ goodput: parseGoodput(goodput) });
  for (const r of records) c.add(r);
  return c;
}

function close(actual: number | undefined, expected: number, what: string): void {
  assert.ok(
    actual !== undefined && Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected)),
    what,
  );
}

describe("MetricsCollector", () => {
  it("summarizes a small run as worked out by hand", () => {
    const c = collect();
    assert.equal(c.requestCount, 2);
    assert.equal(c.errorRequestCount, 1);
    const s = c.finish();
    assert.deepEqual(s.time_to_first_token, {
      unit: "ms",
      avg: 80,
      p1: 60.4,
      p5: 62,
      p10: 64,
      p25: 70,
      p50: 80,
      p75: 90,
      p90: 96,
      p95: 98,
      p99: 99.6,
      min: 60,
      max: 100,
      std: 20,
    });
    assert.equal(s.request_latency?.avg, 155);
    assert.equal(s.time_to_second_token?.avg, 35);
    assert.equal(s.inter_token_latency?.min, 15);
    assert.equal(s.inter_token_latency?.max, 45);
    close(s.output_token_throughput_per_user?.avg, (1 / 0.045 + 1 / 0.015) / 2, "per-user avg");
    // ICL pools every gap of every request: 50, 40 and 20, 20, 20.
    assert.equal(s.inter_chunk_latency?.avg, 30);
    assert.equal(s.inter_chunk_latency?.p50, 20);
    assert.equal(s.inter_chunk_latency?.max, 50);
    assert.equal(s.output_sequence_length?.avg, 4);
    assert.equal(s.input_sequence_length?.avg, 15);

    // Valid requests span 0–190 ms; the failed one (−40 to 300 ms) does not stretch the run.
    assert.deepEqual(s.benchmark_duration, { unit: "sec", avg: 0.19 });
    assert.deepEqual(s.min_request_timestamp, { unit: "ns", avg: 0 });
    assert.deepEqual(s.max_response_timestamp, { unit: "ns", avg: 190e6 });
    assert.deepEqual(s.request_count, { unit: "requests", avg: 2 });
    close(s.request_throughput?.avg, 2 / 0.19, "request throughput");
    close(s.output_token_throughput?.avg, 8 / 0.19, "output token throughput");
    close(s.total_token_throughput?.avg, (30 + 8) / 0.19, "total token throughput");
    assert.equal(s.request_throughput?.unit, "requests/sec");
    assert.equal(s.output_token_throughput?.unit, "tokens/sec");
    assert.deepEqual(s.total_osl, { unit: "tokens", avg: 8 });
    assert.deepEqual(s.total_isl, { unit: "tokens", avg: 30 });
    assert.deepEqual(s.total_output_tokens, { unit: "tokens", avg: 8 });
    assert.equal(s.total_reasoning_tokens, null);
    assert.equal(s.reasoning_token_count, null);

    // The failure counts only in the error metrics.
    assert.deepEqual(s.error_request_count, { unit: "requests", avg: 1 });
    assert.deepEqual(s.total_error_isl, { unit: "tokens", avg: 30 });
    assert.equal(s.error_isl?.avg, 30);
    assert.equal(s.error_isl?.std, 0);
    assert.equal(s.goodput, null);
    assert.equal(s.good_request_count, null);
  });

  it("lists the metrics in AIPerf's declared order", () => {
    assert.deepEqual(Object.keys(collect().finish()), [...AIPERF_METRIC_TAGS]);
  });

  it("counts good requests against the SLOs", () => {
    // TTFT 100 and 60 ms: only the second meets 80 ms.
    const s = collect(smallRun(), "time_to_first_token:80").finish();
    assert.deepEqual(s.good_request_count, { unit: "requests", avg: 1 });
    close(s.goodput?.avg, 1 / 0.19, "goodput");
    assert.equal(s.goodput?.unit, "requests/sec");
    // SLOs nobody meets still give a count (0), unlike no SLOs at all.
    assert.deepEqual(collect(smallRun(), "time_to_first_token:1").finish().good_request_count, {
      unit: "requests",
      avg: 0,
    });
  });

  it("sums reasoning tokens into OSL and its own total", () => {
    const s = collect([
      makeRecord({ session: 0, startMs: 0, chunksMs: [10, 20, 30], output: 2, reasoning: 4 }),
      makeRecord({ session: 1, startMs: 0, chunksMs: [10, 20], output: 2, reasoning: 1 }),
    ]).finish();
    assert.deepEqual(s.total_reasoning_tokens, { unit: "tokens", avg: 5 });
    assert.deepEqual(s.total_output_tokens, { unit: "tokens", avg: 4 });
    assert.deepEqual(s.total_osl, { unit: "tokens", avg: 9 });
    assert.equal(s.reasoning_token_count?.avg, 2.5);
  });

  it("reports nothing but nulls for an empty run, and only error metrics when everything failed", () => {
    const empty = new MetricsCollector().finish();
    for (const tag of AIPERF_METRIC_TAGS) assert.equal(empty[tag], null, tag);
    const failed = collect([smallRun()[2]!], "time_to_first_token:100").finish();
    const present = AIPERF_METRIC_TAGS.filter((t) => failed[t] !== null);
    assert.deepEqual(present, ["error_request_count", "error_isl", "total_error_isl"]);
  });

  it("gives the same summary whatever order records complete in", () => {
    const records = [
      ...smallRun(),
      makeRecord({ session: 3, startMs: 7, chunksMs: [19.3, 20.1, 44.7], output: 9, input: 33 }),
      makeRecord({ session: 4, startMs: 1.1, chunksMs: [2.2, 3.7], output: 2, input: 7 }),
    ];
    const forward: AiperfSummary = collect(records).finish();
    const backward: AiperfSummary = collect([...records].reverse()).finish();
    assert.deepEqual(forward, backward);
    assert.equal(JSON.stringify(forward), JSON.stringify(backward));
  });

  it("can summarize again after more records arrive", () => {
    const c = collect(smallRun().slice(0, 1));
    assert.equal(c.finish().request_count?.avg, 1);
    c.add(smallRun()[1]!);
    assert.deepEqual(c.finish(), collect(smallRun().slice(0, 2)).finish());
  });

  it("groups identical errors, most frequent first", () => {
    const boom = { code: 500, type: "Internal Server Error", message: "boom" };
    const c = collect([
      makeRecord({
        session: 0,
        startMs: 0,
        chunksMs: [],
        error: { code: 429, type: "Too Many Requests", message: "slow down" },
      }),
      makeRecord({ session: 1, startMs: 0, chunksMs: [], error: boom }),
      makeRecord({ session: 2, startMs: 0, chunksMs: [], error: boom }),
      makeRecord({ session: 3, startMs: 0, chunksMs: [], cancelled: true }),
    ]);
    assert.deepEqual(c.errorSummary(), [
      { error_details: boom, count: 2 },
      { error_details: { code: 429, type: "Too Many Requests", message: "slow down" }, count: 1 },
      {
        error_details: { code: 499, type: "RequestCancellationError", message: "Request was cancelled" },
        count: 1,
      },
    ]);
    assert.deepEqual(new MetricsCollector().errorSummary(), []);
  });

  it("rejects a malformed record without counting it", () => {
    const c = new MetricsCollector();
    assert.throws(() => c.add(makeRecord({ startMs: 0, chunksMs: [5, 4] })), RangeError);
    assert.equal(c.requestCount, 0);
    assert.equal(c.errorRequestCount, 0);
  });
});
