import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { flattenSeries, parsePrometheusText } from "./server-metrics.ts";

describe("Prometheus text as AIPerf's server-metrics export groups it", () => {
  it("groups series by metric and folds a histogram's buckets, sum and count", () => {
    const text = [
      "# HELP vllm:num_requests_running Running.",
      "# TYPE vllm:num_requests_running gauge",
      'vllm:num_requests_running{model_name="m",engine="0"} 2',
      'vllm:num_requests_running{model_name="m",engine="1"} 1',
      "# TYPE vllm:time_to_first_token_seconds histogram",
      'vllm:time_to_first_token_seconds_bucket{le="0.1",model_name="m"} 3',
      'vllm:time_to_first_token_seconds_bucket{le="+Inf",model_name="m"} 4',
      'vllm:time_to_first_token_seconds_sum{model_name="m"} 0.42',
      'vllm:time_to_first_token_seconds_count{model_name="m"} 4',
      "process_start_time_seconds 1700000000",
      'weird{path="/a b"} 5',
    ].join("\n");
    const m = parsePrometheusText(text);
    assert.deepEqual(m["vllm:num_requests_running"], [
      { labels: { model_name: "m", engine: "0" }, value: 2 },
      { labels: { model_name: "m", engine: "1" }, value: 1 },
    ]);
    assert.deepEqual(m["vllm:time_to_first_token_seconds"], [
      { labels: { model_name: "m" }, histogram: { "0.1": 3, "+Inf": 4 }, sum: 0.42, count: 4 },
    ]);
    assert.deepEqual(m.process_start_time_seconds, [{ value: 1700000000 }]);
    assert.deepEqual(m.weird, [{ labels: { path: "/a b" }, value: 5 }]);
    assert.equal(flattenSeries(m)['vllm:time_to_first_token_seconds_count{model_name="m"}'], 4);
  });
});
