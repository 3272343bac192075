import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseMetricFamilies } from "./server-metrics-families.ts";

describe("Prometheus text read into families as AIPerf's collector reads it", () => {
  it("names counters without _total, folds histograms, sorts labels and skips bookkeeping families", () => {
    const text = [
      "# HELP vllm:request_success_total Count of successfully processed requests.",
      "# TYPE vllm:request_success_total counter",
      'vllm:request_success_total{model_name="m",finished_reason="stop"} 3',
      'vllm:request_success_total{model_name="m",finished_reason="stop"} 4',
      "# HELP vllm:request_success_created Created.",
      "# TYPE vllm:request_success_created gauge",
      'vllm:request_success_created{model_name="m"} 1.7e9',
      "# HELP vllm:e2e_request_latency_seconds Histogram of e2e latency in seconds.\\nSecond line",
      "# TYPE vllm:e2e_request_latency_seconds histogram",
      'vllm:e2e_request_latency_seconds_bucket{model_name="m",le="0.5"} 1',
      'vllm:e2e_request_latency_seconds_bucket{model_name="m",le="+Inf"} 2',
      'vllm:e2e_request_latency_seconds_sum{model_name="m"} 1.25',
      'vllm:e2e_request_latency_seconds_count{model_name="m"} 2',
      'vllm:e2e_request_latency_seconds_bucket{model_name="x",le="+Inf"} NaN',
      'vllm:e2e_request_latency_seconds_count{model_name="x"} 2',
      "# TYPE rpc_duration_seconds summary",
      'rpc_duration_seconds{quantile="0.5"} 0.1',
      "rpc_duration_seconds_sum 3",
      "# TYPE vllm:num_requests_running gauge",
      'vllm:num_requests_running{model_name="m"} NaN',
      "process_uptime_seconds 12",
      "process_open_fds 7",
    ].join("\n");
    const f = parseMetricFamilies(text);
    assert.deepEqual(Object.keys(f), [
      "vllm:request_success",
      "vllm:e2e_request_latency_seconds",
      "process_open_fds",
    ]);
    assert.deepEqual(f["vllm:request_success"], {
      type: "counter",
      help: "Count of successfully processed requests.",
      samples: [{ labels: { finished_reason: "stop", model_name: "m" }, value: 4 }],
    });
    assert.deepEqual(f["vllm:e2e_request_latency_seconds"], {
      type: "histogram",
      help: "Histogram of e2e latency in seconds.\nSecond line",
      samples: [
        {
          labels: { model_name: "m" },
          buckets: new Map([
            ["0.5", 1],
            ["+Inf", 2],
          ]),
          sum: 1.25,
          count: 2,
        },
      ],
    });
    assert.deepEqual(f.process_open_fds, { type: "unknown", help: "", samples: [{ labels: {}, value: 7 }] });
  });

  it("keeps a counter declared without _total under its own name and ignores junk lines", () => {
    const f = parseMetricFamilies(
      [
        "# TYPE http_requests counter",
        "http_requests 5",
        "garbage line here",
        "{bad} 1",
        "x_total notanumber",
      ].join("\n"),
    );
    assert.deepEqual(f, {
      http_requests: { type: "counter", help: "", samples: [{ labels: {}, value: 5 }] },
    });
  });

  it("calls an untyped family unknown, as prometheus_client does, and leaves out a _sum or _count never written", () => {
    const f = parseMetricFamilies(
      [
        "# TYPE node_netstat_Tcp_InSegs untyped",
        "node_netstat_Tcp_InSegs 12",
        "# TYPE odd info",
        "odd 1",
        "# TYPE h histogram",
        'h_bucket{le="1"} 2',
        'h_bucket{le="+Inf"} 3',
      ].join("\n"),
    );
    assert.deepEqual(f.node_netstat_Tcp_InSegs, {
      type: "unknown",
      help: "",
      samples: [{ labels: {}, value: 12 }],
    });
    assert.equal(f.odd!.type, "unknown");
    assert.deepEqual(f.h, {
      type: "histogram",
      help: "",
      samples: [
        {
          labels: {},
          buckets: new Map([
            ["1", 2],
            ["+Inf", 3],
          ]),
        },
      ],
    });
  });
});
