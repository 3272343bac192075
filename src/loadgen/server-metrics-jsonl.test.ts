import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseMetricFamilies } from "./server-metrics-families.ts";
import { slimRecordLine } from "./server-metrics-jsonl.ts";
import { pyFloatJson, pyIntJson } from "./server-metrics-pyfloat.ts";

/** A vLLM-like page: a counter, a labelled gauge, a histogram with an integer-like bound, an info gauge, a bare one. */
const PAGE = [
  "# HELP vllm:request_success_total Count of successfully processed requests.",
  "# TYPE vllm:request_success_total counter",
  'vllm:request_success_total{model_name="m",finished_reason="stop"} 3',
  "# HELP vllm:request_success_created Count of successfully processed requests.",
  "# TYPE vllm:request_success_created gauge",
  'vllm:request_success_created{model_name="m",finished_reason="stop"} 1.7e9',
  "# HELP vllm:num_requests_running Number of requests in model execution batches.",
  "# TYPE vllm:num_requests_running gauge",
  'vllm:num_requests_running{model_name="m",engine="0"} 2',
  "# HELP vllm:e2e_request_latency_seconds Histogram of e2e request latency in seconds.",
  "# TYPE vllm:e2e_request_latency_seconds histogram",
  'vllm:e2e_request_latency_seconds_bucket{model_name="m",le="0.5"} 1',
  'vllm:e2e_request_latency_seconds_bucket{model_name="m",le="1"} 2',
  'vllm:e2e_request_latency_seconds_bucket{model_name="m",le="+Inf"} 3',
  'vllm:e2e_request_latency_seconds_sum{model_name="m"} 2.25',
  'vllm:e2e_request_latency_seconds_count{model_name="m"} 3',
  "# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig.",
  "# TYPE vllm:cache_config_info gauge",
  'vllm:cache_config_info{block_size="16"} 1',
  "process_open_fds 7",
  "tiny_gauge 0.000001",
].join("\n");

describe("a line of server_metrics_export.jsonl as AIPerf's SlimRecord", () => {
  it("is laid out field for field as msgspec encodes it", () => {
    // Wall-clock ns are past 2^53; these two are exact doubles, so they print digit for digit.
    const ts = "1763591215220757504";
    const sent = "1763591214500993280";
    const line = slimRecordLine({
      endpointUrl: "http://localhost:8000/metrics",
      timestampNs: Number(ts),
      families: parseMetricFamilies(PAGE),
      latencyNs: 719_764_167,
      requestSentNs: Number(sent),
      firstByteNs: Number(ts),
    });
    assert.equal(
      line,
      `{"endpoint_url":"http://localhost:8000/metrics","timestamp_ns":${ts},"metrics":{` +
        `"vllm:request_success":[{"labels":{"finished_reason":"stop","model_name":"m"},"value":3.0}],` +
        `"vllm:num_requests_running":[{"labels":{"engine":"0","model_name":"m"},"value":2.0}],` +
        `"vllm:e2e_request_latency_seconds":[{"labels":{"model_name":"m"},"buckets":{"0.5":1.0,"1":2.0,"+Inf":3.0},"sum":2.25,"count":3.0}],` +
        `"process_open_fds":[{"value":7.0}],"tiny_gauge":[{"value":1e-6}]},` +
        `"endpoint_latency_ns":719764167,"request_sent_ns":${sent},"first_byte_ns":${ts}}`,
    );
    const parsed = JSON.parse(line);
    assert.deepEqual(Object.keys(parsed), [
      "endpoint_url",
      "timestamp_ns",
      "metrics",
      "endpoint_latency_ns",
      "request_sent_ns",
      "first_byte_ns",
    ]);
    // Info families are for the aggregated export only; `_created` families are not metrics.
    assert.equal(parsed.metrics["vllm:cache_config_info"], undefined);
    assert.equal(parsed.metrics["vllm:request_success_created"], undefined);
  });

  it("leaves out what is absent: timings not taken, a histogram's unwritten sum and count", () => {
    const line = slimRecordLine({
      endpointUrl: "http://h/metrics",
      timestampNs: 5,
      families: parseMetricFamilies('# TYPE h histogram\nh_bucket{le="+Inf"} 1'),
    });
    assert.equal(
      line,
      '{"endpoint_url":"http://h/metrics","timestamp_ns":5,"metrics":{"h":[{"buckets":{"+Inf":1.0}}]}}',
    );
  });
});

describe("Python floats in JSON", () => {
  it("print as msgspec and orjson print them (outputs taken from msgspec 0.22 and orjson 3.12)", () => {
    const cases: [number, string, string][] = [
      [5, "5.0", "5.0"],
      [0.1, "0.1", "0.1"],
      [1e-5, "0.00001", "0.00001"],
      [1e-6, "1e-6", "1e-6"],
      [2.5e-7, "2.5e-7", "2.5e-7"],
      [3.14e-10, "3.14e-10", "3.14e-10"],
      [1.7e9, "1700000000.0", "1700000000.0"],
      [9999999999999998, "9999999999999998.0", "9999999999999998.0"],
      [1e16, "1e16", "1e+16"],
      [1.7e18, "1.7e18", "1.7e+18"],
      [12345678901234568, "1.2345678901234568e16", "1.2345678901234568e+16"],
      [0, "0.0", "0.0"],
      [-0, "-0.0", "-0.0"],
      [-2.5, "-2.5", "-2.5"],
      [Number.NaN, "null", "null"],
      [Number.POSITIVE_INFINITY, "null", "null"],
    ];
    for (const [x, msgspec, orjson] of cases) {
      assert.equal(pyFloatJson(x, "msgspec"), msgspec, `msgspec ${x}`);
      assert.equal(pyFloatJson(x, "orjson"), orjson, `orjson ${x}`);
    }
    assert.equal(pyIntJson(1e21), "1000000000000000000000");
    assert.equal(pyIntJson(12.9), "12");
  });
});
