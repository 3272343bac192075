import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseMetricFamilies } from "./server-metrics-families.ts";
import { estimatePercentiles, learnBuckets } from "./server-metrics-percentiles.ts";
import {
  labelsKey,
  renderServerMetricsCsv,
  renderServerMetricsJson,
  type Scrape,
  summarizeServerMetrics,
} from "./server-metrics-summary.ts";

const A = "http://127.0.0.1:9100/metrics";
const B = "http://127.0.0.1:9200/metrics";
const T0 = 1_700_000_000_000_000_000;
const S = 1e9;

/** One scrape of endpoint A: a gauge, a counter, a latency histogram (le 0.1, 0.5, 1, +Inf) and an info gauge. */
function page(
  running: number,
  success: number,
  buckets: [number, number, number, number],
  sum: number,
): string {
  const [b1, b2, b3, inf] = buckets;
  return [
    "# HELP vllm:num_requests_running Number of requests in model execution batches.",
    "# TYPE vllm:num_requests_running gauge",
    `vllm:num_requests_running{model_name="m"} ${running}`,
    "# HELP vllm:request_success_total Count of successfully processed requests.",
    "# TYPE vllm:request_success_total counter",
    `vllm:request_success_total{model_name="m"} ${success}`,
    "# HELP vllm:e2e_request_latency_seconds Histogram of end to end request latency in seconds.",
    "# TYPE vllm:e2e_request_latency_seconds histogram",
    `vllm:e2e_request_latency_seconds_bucket{model_name="m",le="0.1"} ${b1}`,
    `vllm:e2e_request_latency_seconds_bucket{model_name="m",le="0.5"} ${b2}`,
    `vllm:e2e_request_latency_seconds_bucket{model_name="m",le="1"} ${b3}`,
    `vllm:e2e_request_latency_seconds_bucket{model_name="m",le="+Inf"} ${inf}`,
    `vllm:e2e_request_latency_seconds_sum{model_name="m"} ${sum}`,
    `vllm:e2e_request_latency_seconds_count{model_name="m"} ${inf}`,
    "# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig.",
    "# TYPE vllm:cache_config_info gauge",
    'vllm:cache_config_info{block_size="16",num_gpu_blocks="100"} 1',
    "process_open_fds 7",
  ].join("\n");
}

/**
 * A recorded run: a scrape at T0 before the profiling phase (warmup: its gauge value 100 must not count), then one a
 * second for four seconds. Each interval adds histogram observations to exactly one bucket: 0.3 and 0.3, then 0.8,
 * then 2.0 (past the last finite bucket), then 0.05. Endpoint B never answers.
 */
const SCRAPES: Scrape[] = [
  {
    endpointUrl: A,
    timestampNs: T0,
    latencyNs: 2e6,
    families: parseMetricFamilies(page(100, 10, [0, 0, 0, 0], 0)),
  },
  {
    endpointUrl: A,
    timestampNs: T0 + S,
    latencyNs: 4e6,
    families: parseMetricFamilies(page(2, 12, [0, 2, 2, 2], 0.6)),
  },
  { endpointUrl: B, timestampNs: T0 + S },
  {
    endpointUrl: A,
    timestampNs: T0 + 2 * S,
    latencyNs: 2e6,
    families: parseMetricFamilies(page(4, 15, [0, 2, 3, 3], 1.4)),
  },
  {
    endpointUrl: A,
    timestampNs: T0 + 3 * S,
    latencyNs: 2e6,
    families: parseMetricFamilies(page(4, 15, [0, 2, 3, 4], 3.4)),
  },
  {
    endpointUrl: A,
    timestampNs: T0 + 4 * S,
    latencyNs: 2e6,
    families: parseMetricFamilies(page(6, 20, [1, 3, 4, 5], 3.45)),
  },
];

const INPUT = {
  configured: [A, B],
  scrapes: SCRAPES,
  startNs: T0 + 0.5 * S,
  endNs: T0 + 4 * S,
  startTime: "2023-11-14T22:13:20.500000",
  endTime: "2023-11-14T22:13:24",
  inputConfig: { endpoint: { model_names: ["m"] } },
  benchmarkId: "00000000-0000-4000-8000-000000000000",
};

const close = (actual: number | undefined, expected: number, what: string) =>
  assert.ok(actual !== undefined && Math.abs(actual - expected) < 1e-9, `${what}: ${actual} ≠ ${expected}`);

describe("AIPerf's aggregated server-metrics export from a recorded run", () => {
  const doc = summarizeServerMetrics(INPUT)!;

  it("lays the document out as AIPerf does, metrics sorted by name", () => {
    assert.deepEqual(Object.keys(doc), [
      "schema_version",
      "benchmark_id",
      "summary",
      "metrics",
      "input_config",
    ]);
    assert.deepEqual(Object.keys(doc.metrics), [
      "process_open_fds",
      "vllm:cache_config_info",
      "vllm:e2e_request_latency_seconds",
      "vllm:num_requests_running",
      "vllm:request_success",
    ]);
    // AIPerf lists the endpoints it holds records of in both, not the ones it was given: B never answered.
    assert.deepEqual(doc.summary.endpoints_configured, [A]);
    assert.deepEqual(doc.summary.endpoints_successful, [A]);
    assert.deepEqual(doc.summary.endpoint_info, {
      [A]: {
        total_fetches: 5,
        first_fetch_ns: T0,
        last_fetch_ns: T0 + 4 * S,
        avg_fetch_latency_ms: 2.4,
        unique_updates: 5,
        first_update_ns: T0,
        last_update_ns: T0 + 4 * S,
        duration_seconds: 4,
        avg_update_interval_ms: 1000,
        median_update_interval_ms: 1000,
      },
    });
    const text = renderServerMetricsJson(doc);
    const json = JSON.parse(text);
    assert.equal(json.metrics["vllm:num_requests_running"].series[0].stats.p50, 4);
    // Laid out as orjson's OPT_INDENT_2 (JSON.stringify(…, null, 2)'s layout), no final newline, Python floats
    // keeping their ".0" where AIPerf's fields are floats.
    assert.equal(
      text.replace(/(\d)\.0(?=,?\n)/g, "$1"),
      JSON.stringify(json, null, 2).replace(
        /"1": 4,\n(\s+)"0\.1": 1,\n\s+"0\.5": 3,/,
        (_, sp) => `"0.1": 1,\n${sp}"0.5": 3,\n${sp}"1": 4,`,
      ),
    );
    assert.match(text, /"total_fetches": 5,\n\s+"first_fetch_ns": 1700000000000000000,/);
    assert.match(text, /"duration_seconds": 4\.0,\n\s+"avg_update_interval_ms": 1000\.0,/);
    assert.match(text, /"total": 10\.0,\n\s+"rate": 2\.5\n/);
    assert.match(text, /"count": 5,\n\s+"sum": 3\.45,/);
  });

  it("gives gauges sample statistics over the profiling phase only", () => {
    const m = doc.metrics["vllm:num_requests_running"]!;
    assert.equal(m.type, "gauge");
    assert.equal(m.unit, undefined);
    assert.equal(m.description, "Number of requests in model execution batches.");
    const [s] = m.series;
    assert.deepEqual(Object.keys(s!), ["endpoint_url", "labels", "stats"]);
    assert.deepEqual(s!.labels, { model_name: "m" });
    const st = s!.stats;
    assert.deepEqual(Object.keys(st), [
      "avg",
      "min",
      "max",
      "std",
      "p1",
      "p5",
      "p10",
      "p25",
      "p50",
      "p75",
      "p90",
      "p95",
      "p99",
    ]);
    assert.equal(st.avg, 4);
    assert.equal(st.min, 2);
    assert.equal(st.max, 6);
    close(st.std, Math.sqrt(8 / 3), "std (ddof=1)");
    close(st.p25, 3.5, "p25");
    close(st.p75, 4.5, "p75");
    // A family without a # TYPE is untyped: gauge statistics, its type kept as AIPerf keeps it.
    assert.equal(doc.metrics.process_open_fds!.type, "unknown");
    assert.deepEqual(doc.metrics.process_open_fds!.series[0]!.stats.avg, 7);
    assert.equal(doc.metrics.process_open_fds!.series[0]!.labels, undefined);
  });

  it("gives counters their increase from the last scrape before the phase, and its rate", () => {
    const m = doc.metrics["vllm:request_success"]!;
    assert.equal(m.type, "counter");
    assert.equal(m.unit, "requests");
    assert.deepEqual(m.series[0]!.stats, { total: 10, rate: 2.5 });
  });

  it("gives histograms bucket, sum and count increases and polynomial percentile estimates", () => {
    const m = doc.metrics["vllm:e2e_request_latency_seconds"]!;
    assert.equal(m.type, "histogram");
    assert.equal(m.unit, "seconds");
    const s = m.series[0]!;
    assert.deepEqual(Object.keys(s), ["endpoint_url", "labels", "stats", "buckets"]);
    assert.deepEqual(
      [...s.buckets!],
      [
        ["0.1", 1],
        ["0.5", 3],
        ["1", 4],
        ["+Inf", 5],
      ],
    );
    // The file keeps the endpoint's bound order, though "1" is an integer-like key.
    const text = renderServerMetricsJson(doc);
    assert.match(text, /"buckets": \{\s+"0\.1": 1,\s+"0\.5": 3,\s+"1": 4,\s+"\+Inf": 5\s+\}/);
    const st = s.stats;
    assert.deepEqual(Object.keys(st).slice(0, 5), ["count", "sum", "avg", "count_rate", "sum_rate"]);
    assert.equal(st.count, 5);
    close(st.sum, 3.45, "sum");
    close(st.avg, 0.69, "avg");
    close(st.count_rate, 1.25, "count_rate");
    close(st.sum_rate, 0.8625, "sum_rate");
    // Learned bucket means 0.05, 0.3, 0.8 place the finite observations at 0.05, 0.2, 0.4, 0.8; the +Inf one takes
    // the rest of the exact sum, 3.45 − 1.45 = 2.0.
    close(st.p50_estimate, 0.4, "p50");
    close(st.p25_estimate, 0.2, "p25");
    close(st.p75_estimate, 0.8, "p75");
    close(st.p90_estimate, 1.52, "p90");
    close(st.p99_estimate, 1.952, "p99");
    close(st.p1_estimate, 0.056, "p1");
  });

  it("writes AIPerf's CSV: commented header, one section per type, labels as columns, info metrics transposed", () => {
    const csv = renderServerMetricsCsv(doc);
    const lines = csv.split(/\r?\n/);
    assert.deepEqual(lines.slice(0, 6), [
      "# AIPerf Server Metrics Export (CSV)",
      "# aiperf_version: unknown",
      "# schema_version: 1.0",
      "# benchmark_id: 00000000-0000-4000-8000-000000000000",
      "# Note: Same benchmark_id and version appear in JSON and Parquet exports",
      "#",
    ]);
    assert.ok(csv.includes("#\nEndpoint,Type,Metric,Unit,avg,"), "comments end in LF, rows in CRLF");
    assert.ok(csv.includes("\r\n\r\nEndpoint,Type,Metric,Unit,total,"), "a blank row between sections");
    assert.deepEqual(lines.slice(6, 9), [
      "Endpoint,Type,Metric,Unit,avg,min,max,std,p1,p5,p10,p25,p50,p75,p90,p95,p99,model_name,Description",
      "127.0.0.1:9100,gauge,vllm:num_requests_running,,4.0000,2.0000,6.0000,1.6330,2.0600,2.3000,2.6000,3.5000,4.0000,4.5000,5.4000,5.7000,5.9400,m,Number of requests in model execution batches.",
      "",
    ]);
    // Sections in AIPerf's order: gauge, counter, histogram, unknown (the untyped family, gauge columns), then info.
    const headers = lines.filter((l) => l.startsWith("Endpoint,"));
    assert.deepEqual(
      headers.map((h) => h.split(",")[4]),
      ["avg", "total", "count", "avg", "Description"],
    );
    const unknown = lines.indexOf(
      "Endpoint,Type,Metric,Unit,avg,min,max,std,p1,p5,p10,p25,p50,p75,p90,p95,p99,Description",
    );
    assert.ok(unknown > lines.findIndex((l) => l.includes(",histogram,")));
    assert.equal(
      lines[unknown + 1],
      "127.0.0.1:9100,unknown,process_open_fds,,7.0000,7.0000,7.0000,0.0000,7.0000,7.0000,7.0000,7.0000,7.0000,7.0000,7.0000,7.0000,7.0000,",
    );
    assert.ok(
      lines.includes(
        "127.0.0.1:9100,counter,vllm:request_success,requests,10.0000,2.5000,,,,,m,Count of successfully processed requests.",
      ),
    );
    const hist = lines.find((l) => l.includes(",histogram,"))!;
    assert.ok(
      hist.startsWith("127.0.0.1:9100,histogram,vllm:e2e_request_latency_seconds,seconds,5,1.2500,3.4500,"),
    );
    assert.ok(
      hist.endsWith(",m,Histogram of end to end request latency in seconds.,0.1=1;0.5=3;1=4;+Inf=5"),
      hist,
    );
    const info = lines.indexOf("Endpoint,Metric,Key,Value,Description");
    assert.ok(info > 0);
    assert.deepEqual(lines.slice(info + 1, info + 3), [
      "127.0.0.1:9100,vllm:cache_config_info,block_size,16,Information of the LLMEngine CacheConfig.",
      "127.0.0.1:9100,vllm:cache_config_info,num_gpu_blocks,100,Information of the LLMEngine CacheConfig.",
    ]);
  });

  it("counts an unchanged scrape as a fetch, not an update, and writes nothing when no endpoint answered", () => {
    const same = parseMetricFamilies("# TYPE g gauge\ng 1");
    const d = summarizeServerMetrics({
      ...INPUT,
      scrapes: [0, 1, 2].map((i) => ({ endpointUrl: A, timestampNs: T0 + i * S, families: same })),
    })!;
    const info = d.summary.endpoint_info![A]!;
    assert.equal(info.total_fetches, 3);
    assert.equal(info.unique_updates, 1);
    assert.equal(info.median_update_interval_ms, undefined);
    assert.equal(summarizeServerMetrics({ ...INPUT, scrapes: [{ endpointUrl: A, timestampNs: T0 }] }), null);
    // A histogram that moved is an update even when nothing else did.
    const h = (n: number) =>
      parseMetricFamilies(
        `# TYPE h histogram\nh_bucket{le="1"} ${n}\nh_bucket{le="+Inf"} 9\nh_sum 1\nh_count 9`,
      );
    const moved = summarizeServerMetrics({
      ...INPUT,
      scrapes: [1, 2].map((n) => ({ endpointUrl: A, timestampNs: T0 + n * S, families: h(n) })),
    })!;
    assert.equal(moved.summary.endpoint_info![A]!.unique_updates, 2);
  });

  it("keeps a reset counter at zero and drops the buckets of a reset histogram", () => {
    const at = (i: number, text: string): Scrape => ({
      endpointUrl: A,
      timestampNs: T0 + i * S,
      families: parseMetricFamilies(text),
    });
    const h = (n: number, s: number) =>
      `# TYPE c counter\nc ${n * 10}\n# TYPE h histogram\nh_bucket{le="1"} ${n}\nh_bucket{le="+Inf"} ${n}\nh_sum ${s}\nh_count ${n}`;
    const d = summarizeServerMetrics({
      ...INPUT,
      startNs: T0 + 0.5 * S,
      scrapes: [at(0, h(5, 2)), at(1, h(1, 0.5))],
    })!;
    assert.deepEqual(d.metrics.c!.series[0]!.stats, { total: 0, rate: 0 });
    assert.equal(d.metrics.h!.series[0]!.buckets, undefined);
  });
});

describe("a histogram's bucket bounds", () => {
  it("are sorted by value and fixed by the series' first sample", () => {
    const at = (i: number, text: string): Scrape => ({
      endpointUrl: A,
      timestampNs: T0 + i * S,
      families: parseMetricFamilies(text),
    });
    const first =
      '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_bucket{le="10"} 2\nh_bucket{le="2.5"} 1\nh_sum 9\nh_count 2';
    const later =
      '# TYPE h histogram\nh_bucket{le="2.5"} 2\nh_bucket{le="5"} 3\nh_bucket{le="10"} 4\nh_bucket{le="+Inf"} 5\nh_sum 20\nh_count 5';
    const d = summarizeServerMetrics({
      ...INPUT,
      startNs: T0 + 0.5 * S,
      scrapes: [at(0, first), at(1, later)],
    })!;
    const s = d.metrics.h!.series[0]!;
    assert.deepEqual(
      [...s.buckets!],
      [
        ["2.5", 1],
        ["10", 2],
        ["+Inf", 3],
      ],
    );
    assert.match(renderServerMetricsJson(d), /"2\.5": 1,\s+"10": 2,\s+"\+Inf": 3/);
  });
});

describe("the histogram percentile estimator", () => {
  it("learns a bucket's mean only from intervals that touched that bucket alone", () => {
    const les = ["0.1", "1", "+Inf"];
    const learned = learnBuckets([0, 0.25, 1.25], [0, 5, 7], les, [
      [0, 0, 0],
      [0, 5, 5],
      [1, 6, 7],
    ]);
    assert.deepEqual([...learned.keys()], ["1"]);
    close(learned.get("1")!.weightedMeanSum / learned.get("1")!.observations, 0.05, "mean");
  });

  it("puts everything at zero when the sum is zero, and gives nothing for an empty histogram", () => {
    assert.deepEqual(
      estimatePercentiles(
        new Map([
          ["1", 3],
          ["+Inf", 3],
        ]),
        new Map(),
        0,
        3,
      ),
      [0, 0, 0, 0, 0, 0, 0, 0, 0],
    );
    assert.equal(
      estimatePercentiles(
        new Map([
          ["1", 0],
          ["+Inf", 0],
        ]),
        new Map(),
        0,
        0,
      ),
      null,
    );
  });

  it("without learned means, spreads each bucket uniformly and matches the exact sum", () => {
    // 10 observations in (0, 1], 10 in (1, 2]: the uniform midpoints already sum to 20 = the given sum.
    const p = estimatePercentiles(
      new Map([
        ["1", 10],
        ["2", 20],
        ["+Inf", 20],
      ]),
      new Map(),
      20,
      20,
    )!;
    close(p[4], 1, "p50");
    close(p[0], 0.05 + 0.19 * 0.1, "p1");
  });

  it("repr-quotes labels for sort keys as Python's str(dict) does", () => {
    assert.equal(labelsKey({ a: "x", b: "it's" }), `{'a': 'x', 'b': "it's"}`);
    assert.equal(labelsKey({}), "");
  });
});

describe("server_metrics_export.json for a small hand-written run", () => {
  const U = "http://localhost:8000/metrics";
  const T = 1_700_000_000_000_000_000;
  /** A gauge, a counter, a histogram that saw nothing in the phase and an untyped family (node-exporter style). */
  const page = (running: number, ok: number) =>
    parseMetricFamilies(
      [
        "# HELP vllm:num_requests_running Number of requests in model execution batches.",
        "# TYPE vllm:num_requests_running gauge",
        `vllm:num_requests_running{model_name="m"} ${running}`,
        "# HELP vllm:request_success_total Count of successfully processed requests.",
        "# TYPE vllm:request_success_total counter",
        `vllm:request_success_total{model_name="m",finished_reason="stop"} ${ok}`,
        "# HELP vllm:e2e_request_latency_seconds Histogram of e2e request latency in seconds.",
        "# TYPE vllm:e2e_request_latency_seconds histogram",
        'vllm:e2e_request_latency_seconds_bucket{model_name="m",le="1.0"} 0',
        'vllm:e2e_request_latency_seconds_bucket{model_name="m",le="+Inf"} 0',
        'vllm:e2e_request_latency_seconds_sum{model_name="m"} 0',
        'vllm:e2e_request_latency_seconds_count{model_name="m"} 0',
        "# TYPE node_load1 untyped",
        "node_load1 0.5",
      ].join("\n"),
    );
  const input = {
    configured: [U],
    scrapes: [
      { endpointUrl: U, timestampNs: T, latencyNs: 1_000_000, families: page(9, 1) },
      { endpointUrl: U, timestampNs: T + 1e9, latencyNs: 3_000_000, families: page(2, 3) },
      { endpointUrl: U, timestampNs: T + 2e9, latencyNs: 2_000_000, families: page(4, 7) },
    ],
    startNs: T + 0.5e9,
    endNs: T + 2e9,
    startTime: "2023-11-14T22:13:20.500000",
    endTime: "2023-11-14T22:13:22",
    inputConfig: { endpoint: { urls: ["http://localhost:8000"] } },
    benchmarkId: "2900a136-3c1a-4520-adaa-5719822b729b",
  };

  it("is ServerMetricsExportData field for field, in its models' order, with Python's ints and floats", () => {
    // Written from AIPerf's models: ServerMetricsExportData (schema_version, aiperf_version, benchmark_id, summary,
    // metrics, input_config; None left out), ServerMetricsSummary, ServerMetricsEndpointInfo, the metric data
    // (type, description, unit, series) and their series (endpoint_url, labels, stats, buckets); stats in
    // GaugeStats / CounterStats / HistogramStats order; an untyped family typed "unknown" with gauge statistics.
    assert.equal(
      renderServerMetricsJson(summarizeServerMetrics(input)!),
      [
        "{",
        '  "schema_version": "1.0",',
        '  "benchmark_id": "2900a136-3c1a-4520-adaa-5719822b729b",',
        '  "summary": {',
        '    "endpoints_configured": [',
        '      "http://localhost:8000/metrics"',
        "    ],",
        '    "endpoints_successful": [',
        '      "http://localhost:8000/metrics"',
        "    ],",
        '    "start_time": "2023-11-14T22:13:20.500000",',
        '    "end_time": "2023-11-14T22:13:22",',
        '    "endpoint_info": {',
        '      "http://localhost:8000/metrics": {',
        '        "total_fetches": 3,',
        '        "first_fetch_ns": 1700000000000000000,',
        '        "last_fetch_ns": 1700000002000000000,',
        '        "avg_fetch_latency_ms": 2.0,',
        '        "unique_updates": 3,',
        '        "first_update_ns": 1700000000000000000,',
        '        "last_update_ns": 1700000002000000000,',
        '        "duration_seconds": 2.0,',
        '        "avg_update_interval_ms": 1000.0,',
        '        "median_update_interval_ms": 1000.0',
        "      }",
        "    }",
        "  },",
        '  "metrics": {',
        '    "node_load1": {',
        '      "type": "unknown",',
        '      "description": "",',
        '      "series": [',
        "        {",
        '          "endpoint_url": "http://localhost:8000/metrics",',
        '          "stats": {',
        '            "avg": 0.5,',
        '            "min": 0.5,',
        '            "max": 0.5,',
        '            "std": 0.0,',
        '            "p1": 0.5,',
        '            "p5": 0.5,',
        '            "p10": 0.5,',
        '            "p25": 0.5,',
        '            "p50": 0.5,',
        '            "p75": 0.5,',
        '            "p90": 0.5,',
        '            "p95": 0.5,',
        '            "p99": 0.5',
        "          }",
        "        }",
        "      ]",
        "    },",
        '    "vllm:e2e_request_latency_seconds": {',
        '      "type": "histogram",',
        '      "description": "Histogram of e2e request latency in seconds.",',
        '      "unit": "seconds",',
        '      "series": [',
        "        {",
        '          "endpoint_url": "http://localhost:8000/metrics",',
        '          "labels": {',
        '            "model_name": "m"',
        "          },",
        '          "stats": {',
        '            "count": 0',
        "          },",
        '          "buckets": {',
        '            "1.0": 0,',
        '            "+Inf": 0',
        "          }",
        "        }",
        "      ]",
        "    },",
        '    "vllm:num_requests_running": {',
        '      "type": "gauge",',
        '      "description": "Number of requests in model execution batches.",',
        '      "series": [',
        "        {",
        '          "endpoint_url": "http://localhost:8000/metrics",',
        '          "labels": {',
        '            "model_name": "m"',
        "          },",
        '          "stats": {',
        '            "avg": 3.0,',
        '            "min": 2.0,',
        '            "max": 4.0,',
        '            "std": 1.4142135623730951,',
        '            "p1": 2.02,',
        '            "p5": 2.1,',
        '            "p10": 2.2,',
        '            "p25": 2.5,',
        '            "p50": 3.0,',
        '            "p75": 3.5,',
        '            "p90": 3.8,',
        '            "p95": 3.9,',
        '            "p99": 3.98',
        "          }",
        "        }",
        "      ]",
        "    },",
        '    "vllm:request_success": {',
        '      "type": "counter",',
        '      "description": "Count of successfully processed requests.",',
        '      "unit": "requests",',
        '      "series": [',
        "        {",
        '          "endpoint_url": "http://localhost:8000/metrics",',
        '          "labels": {',
        '            "finished_reason": "stop",',
        '            "model_name": "m"',
        "          },",
        '          "stats": {',
        '            "total": 6.0,',
        '            "rate": 3.0',
        "          }",
        "        }",
        "      ]",
        "    }",
        "  },",
        '  "input_config": {',
        '    "endpoint": {',
        '      "urls": [',
        '        "http://localhost:8000"',
        "      ]",
        "    }",
        "  }",
        "}",
      ].join("\n"),
    );
  });

  it("counts a repeated page as a fetch, not an update, but keeps its values, whatever order scrapes come in", () => {
    const d = summarizeServerMetrics({
      ...input,
      scrapes: [
        input.scrapes[0]!,
        { ...input.scrapes[2]!, duplicate: false },
        { ...input.scrapes[1]!, duplicate: false },
        {
          endpointUrl: U,
          timestampNs: T + 1.5e9,
          latencyNs: 2_000_000,
          families: page(2, 3),
          duplicate: true,
        },
      ],
    })!;
    const info = d.summary.endpoint_info![U]!;
    assert.equal(info.total_fetches, 4);
    assert.equal(info.unique_updates, 3);
    assert.equal(info.avg_fetch_latency_ms, 2);
    // The gauge's in-phase samples are 2 (twice: the repeat counts) and 4.
    assert.deepEqual(
      [
        d.metrics["vllm:num_requests_running"]!.series[0]!.stats.avg,
        d.metrics["vllm:num_requests_running"]!.series[0]!.stats.min,
      ],
      [8 / 3, 2],
    );
    assert.equal(d.metrics["vllm:request_success"]!.series[0]!.stats.total, 6);
  });
});
