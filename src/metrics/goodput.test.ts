import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { assertServelabError } from "../testing/assert-errors.ts";
import { computeRecordMetrics } from "./aiperf-metrics.ts";
import { meetsSlos, parseGoodput } from "./goodput.ts";
import { makeRecord } from "./record-fixtures.ts";

describe("parseGoodput", () => {
  it("parses AIPerf's --goodput string, thresholds in display units", () => {
    assert.deepEqual(parseGoodput("time_to_first_token:20000 inter_token_latency:50"), [
      { tag: "time_to_first_token", threshold: 20000, largerIsBetter: false },
      { tag: "inter_token_latency", threshold: 50, largerIsBetter: false },
    ]);
    assert.deepEqual(parseGoodput("  output_token_throughput_per_user:12.5\toutput_sequence_length:1e2 "), [
      { tag: "output_token_throughput_per_user", threshold: 12.5, largerIsBetter: true },
      { tag: "output_sequence_length", threshold: 100, largerIsBetter: true },
    ]);
    assert.deepEqual(parseGoodput(""), []);
  });

  it("parses a recipe's map", () => {
    assert.deepEqual(parseGoodput({ time_to_first_token: 20_000, input_sequence_length: 8 }), [
      { tag: "time_to_first_token", threshold: 20000, largerIsBetter: false },
      { tag: "input_sequence_length", threshold: 8, largerIsBetter: true },
    ]);
    assert.deepEqual(parseGoodput({}), []);
  });

  it("names what is wrong", () => {
    assertServelabError(() => parseGoodput("ttft:200"), "USAGE", '"ttft"', "time_to_first_token");
    assertServelabError(() => parseGoodput({ itl: 5 }), "USAGE", '"itl"');
    assertServelabError(
      () => parseGoodput("request_throughput:5"),
      "USAGE",
      "request_throughput",
      "per-request",
    );
    assertServelabError(() => parseGoodput("inter_chunk_latency:5"), "USAGE", "inter_chunk_latency");
    assertServelabError(
      () => parseGoodput("time_to_first_token:fast"),
      "USAGE",
      "time_to_first_token",
      '"fast"',
    );
    assertServelabError(() => parseGoodput("time_to_first_token:"), "USAGE", "time_to_first_token");
    assertServelabError(() => parseGoodput("time_to_first_token:0x10"), "USAGE", '"0x10"');
    assertServelabError(() => parseGoodput("time_to_first_token:-3"), "USAGE", "positive", "ms");
    assertServelabError(() => parseGoodput("time_to_first_token:0"), "USAGE", "positive");
    assertServelabError(() => parseGoodput("time_to_first_token=200"), "USAGE", "metric:threshold");
    assertServelabError(
      () => parseGoodput("time_to_first_token:200 time_to_first_token:300"),
      "USAGE",
      "more than once",
    );
    assertServelabError(() => parseGoodput({ time_to_first_token: "200" }), "USAGE", "must be a number");
    assertServelabError(
      () => parseGoodput({ time_to_first_token: Number.POSITIVE_INFINITY }),
      "USAGE",
      "positive",
    );
  });
});

describe("meetsSlos", () => {
  // TTFT 100 ms, ITL 45 ms, 22.2 tokens/sec/user, OSL 3.
  const values = computeRecordMetrics(
    makeRecord({ startMs: 0, chunksMs: [100, 150, 190], output: 3 }),
  ).values;

  it("compares in display units, at most the threshold for latencies", () => {
    assert.equal(meetsSlos(values, parseGoodput("time_to_first_token:100")), true);
    assert.equal(meetsSlos(values, parseGoodput("time_to_first_token:99.9")), false);
    assert.equal(meetsSlos(values, parseGoodput("time_to_first_token:200 inter_token_latency:45")), true);
    assert.equal(meetsSlos(values, parseGoodput("time_to_first_token:200 inter_token_latency:44")), false);
  });

  it("requires at least the threshold for larger-is-better metrics", () => {
    assert.equal(meetsSlos(values, parseGoodput("output_token_throughput_per_user:20")), true);
    assert.equal(meetsSlos(values, parseGoodput("output_token_throughput_per_user:25")), false);
    assert.equal(meetsSlos(values, parseGoodput("output_sequence_length:3")), true);
    assert.equal(meetsSlos(values, parseGoodput("output_sequence_length:4")), false);
  });

  it("fails a request that lacks an SLO metric", () => {
    const oneToken = computeRecordMetrics(makeRecord({ startMs: 0, chunksMs: [10], output: 1 })).values;
    assert.equal(meetsSlos(oneToken, parseGoodput("time_to_first_token:100")), true);
    assert.equal(
      meetsSlos(oneToken, parseGoodput("time_to_first_token:100 inter_token_latency:1000")),
      false,
    );
    assert.equal(meetsSlos(values, parseGoodput("reasoning_token_count:1")), false);
  });

  it("passes everything when there are no SLOs", () => {
    assert.equal(meetsSlos(values, []), true);
  });
});
