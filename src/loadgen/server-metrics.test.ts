import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { REPO_ROOT } from "../testing/fixtures.ts";
import {
  checkServerMetricsUrls,
  flattenSeries,
  isMetricsEndpointReachable,
  normalizeMetricsEndpointUrl,
  parsePrometheusText,
  reachableServerMetricsEndpoints,
  serverMetricsEndpoints,
  serverMetricsOptionsFromEnv,
  startServerMetrics,
} from "./server-metrics.ts";

describe("Prometheus text by sample name, for readers of servelab's workers", () => {
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
      { labels: { model_name: "m" }, buckets: { "0.1": 3, "+Inf": 4 }, sum: 0.42, count: 4 },
    ]);
    assert.deepEqual(m.process_start_time_seconds, [{ value: 1700000000 }]);
    assert.deepEqual(m.weird, [{ labels: { path: "/a b" }, value: 5 }]);
    assert.equal(flattenSeries(m)['vllm:time_to_first_token_seconds_count{model_name="m"}'], 4);
  });
});

describe("the endpoints AIPerf scrapes", () => {
  it("derives <url>/metrics as normalize_metrics_endpoint_url does", () => {
    const cases: [string, string][] = [
      ["http://localhost:9400", "http://localhost:9400/metrics"],
      ["http://localhost:9400/", "http://localhost:9400/metrics"],
      ["localhost:9400", "http://localhost:9400/metrics"],
      ["http://localhost:9400/metrics", "http://localhost:9400/metrics"],
      ["http://h/metrics//", "http://h/metrics"],
      ["http://h:8000/v1", "http://h:8000/v1/metrics"],
      ["https://h/prometheus/metrics", "https://h/prometheus/metrics"],
      ["https://h:1/x/?a=b#f", "https://h:1/x/metrics?a=b#f"],
      ["http://h?", "http://h/metrics"],
    ];
    for (const [given, want] of cases) assert.equal(normalizeMetricsEndpointUrl(given), want, given);
    assert.throws(() => normalizeMetricsEndpointUrl("  "), /cannot be empty/);
    assert.throws(() => checkServerMetricsUrls(["http://[bad"]), /--server-metrics/);
  });

  it("scrapes every --url's /metrics, then the --server-metrics URLs, each once, unless disabled", () => {
    assert.deepEqual(
      serverMetricsEndpoints({
        inferenceUrls: ["http://a:8000", "http://a:8000/", "http://b:8000"],
        extraUrls: ["a:8000", "http://c:9000/metrics", "http://c:9000"],
      }),
      ["http://a:8000/metrics", "http://b:8000/metrics", "http://c:9000/metrics"],
    );
    assert.deepEqual(
      serverMetricsEndpoints({ inferenceUrls: ["http://a:8000"], extraUrls: ["x:1"], enabled: false }),
      [],
    );
  });

  it("reads AIPerf's interval and reachability timeout from the environment", () => {
    assert.deepEqual(serverMetricsOptionsFromEnv({}), {});
    assert.deepEqual(
      serverMetricsOptionsFromEnv({
        AIPERF_SERVER_METRICS_COLLECTION_INTERVAL: "1.5",
        AIPERF_SERVER_METRICS_REACHABILITY_TIMEOUT: "3",
      }),
      { intervalMs: 1500, timeoutMs: 3000 },
    );
    assert.throws(
      () => serverMetricsOptionsFromEnv({ AIPERF_SERVER_METRICS_COLLECTION_INTERVAL: "0" }),
      /0\.001 to 300/,
    );
    assert.throws(
      () => serverMetricsOptionsFromEnv({ AIPERF_SERVER_METRICS_REACHABILITY_TIMEOUT: "2.5" }),
      /1 to 300/,
    );
  });

  it("tests reachability as AIPerf: HEAD answered 200, else GET answered 200; errors and timeouts are unreachable", async () => {
    const server = createServer((req, res) => {
      if (req.url === "/metrics") return res.end("g 1\n");
      if (req.url === "/nohead") {
        res.statusCode = req.method === "HEAD" ? 405 : 200;
        return res.end();
      }
      if (req.url === "/moved") {
        res.writeHead(302, { location: "/metrics" });
        return res.end();
      }
      if (req.url === "/hang") return;
      res.statusCode = 404;
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      assert.equal(await isMetricsEndpointReachable(`${base}/metrics`), true);
      assert.equal(await isMetricsEndpointReachable(`${base}/nohead`), true);
      // The HEAD does not follow the redirect, the GET does.
      assert.equal(await isMetricsEndpointReachable(`${base}/moved`), true);
      assert.equal(await isMetricsEndpointReachable(`${base}/missing`), false);
      assert.equal(await isMetricsEndpointReachable(`${base}/hang`, 100), false);
      assert.equal(await isMetricsEndpointReachable("http://127.0.0.1:9/metrics"), false);
      const r = await reachableServerMetricsEndpoints([`${base}/metrics`, `${base}/missing`]);
      assert.deepEqual(r.reachable, [`${base}/metrics`]);
      assert.deepEqual(r.messages, [
        { level: "info", text: "Server metrics enabled - 1/2 endpoint(s) reachable." },
        { level: "warning", text: `Unreachable endpoints: ${base}/missing` },
      ]);
      assert.deepEqual((await reachableServerMetricsEndpoints([`${base}/missing`])).messages, [
        { level: "info", text: "Server metrics disabled - no Prometheus endpoints reachable" },
      ]);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

const CHECKER = join(REPO_ROOT, "scripts", "check-aiperf-files.py");
const python = spawnSync("python3", ["--version"]).status === 0;

async function until(ok: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(ok(), "timed out waiting for a scrape");
}

describe("the scraper's aggregated exports", () => {
  it("writes server_metrics_export.json and .csv beside the jsonl, counting from the profiling start", async () => {
    let served = 0;
    const server = createServer((_req, res) => {
      served++;
      res.end(
        [
          "# TYPE vllm:request_success_total counter",
          `vllm:request_success_total{model_name="m"} ${served * 10}`,
          "# TYPE vllm:num_requests_running gauge",
          `vllm:num_requests_running{model_name="m"} ${served}`,
        ].join("\n"),
      );
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const dir = await mkdtemp(join(tmpdir(), "server-metrics-"));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
      let now = 1_700_000_000_000_000_000;
      const scraper = await startServerMetrics([url], dir, () => (now += 1e9), { intervalMs: 60_000 });
      await until(() => served === 1);
      await scraper.markProfilingStart();
      assert.equal(served, 2);
      const files = await scraper.stop({ endpoint: { model_names: ["m"] } });
      assert.deepEqual(files, {
        json: join(dir, "server_metrics_export.json"),
        csv: join(dir, "server_metrics_export.csv"),
      });
      const doc = JSON.parse(await readFile(files.json!, "utf8"));
      assert.equal(doc.schema_version, "1.0");
      assert.deepEqual(doc.summary.endpoints_successful, [url]);
      assert.deepEqual(doc.input_config, { endpoint: { model_names: ["m"] } });
      // Scrapes at the start, at the profiling start (the reference) and at the end: the increase is the third's
      // minus the second's, and the gauge counts only the last.
      assert.equal(doc.metrics["vllm:request_success"].series[0].stats.total, 10);
      assert.equal(doc.metrics["vllm:num_requests_running"].series[0].stats.avg, 3);
      assert.equal(doc.summary.endpoint_info[url].total_fetches, 3);
      assert.match(await readFile(files.csv!, "utf8"), /^# AIPerf Server Metrics Export \(CSV\)\n/);
      if (python) {
        // AIPerf's ServerMetricsExportData field types (scripts/check-aiperf-files.py).
        const r = spawnSync("python3", [CHECKER, files.json!], { encoding: "utf8" });
        assert.equal(r.status, 0, r.stdout + r.stderr);
      }
      // One SlimRecord line a scrape (each page differs), AIPerf's family names, no `_info` or error lines.
      const lines = (await readFile(join(dir, "server_metrics_export.jsonl"), "utf8")).trim().split("\n");
      assert.equal(lines.length, 3);
      const rec = JSON.parse(lines[2]!);
      assert.deepEqual(Object.keys(rec), [
        "endpoint_url",
        "timestamp_ns",
        "metrics",
        "endpoint_latency_ns",
        "request_sent_ns",
        "first_byte_ns",
      ]);
      assert.equal(rec.endpoint_url, url);
      assert.equal(rec.timestamp_ns, rec.first_byte_ns);
      assert.ok(rec.request_sent_ns < rec.first_byte_ns);
      assert.deepEqual(rec.metrics, {
        "vllm:request_success": [{ labels: { model_name: "m" }, value: 30 }],
        "vllm:num_requests_running": [{ labels: { model_name: "m" }, value: 3 }],
      });
      assert.match(lines[2]!, /"value":30\.0\}/);
      assert.deepEqual(
        (await readdir(dir)).filter((n) => n.endsWith(".tmp")),
        [],
      );
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("writes no file at all when no endpoint answered, as AIPerf leaves none", async () => {
    const dir = await mkdtemp(join(tmpdir(), "server-metrics-"));
    try {
      let now = 1e18;
      const scraper = await startServerMetrics(["http://127.0.0.1:9/metrics"], dir, () => (now += 1e9));
      await scraper.markProfilingStart();
      assert.deepEqual(await scraper.stop(), {});
      assert.deepEqual(await readdir(dir), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("writes a repeated page once, counts it as a fetch, and skips unreachable endpoints with a warning", async () => {
    const server = createServer((req, res) => {
      if (req.url !== "/metrics") {
        res.statusCode = 500;
        return res.end();
      }
      res.end("# TYPE g gauge\ng 1\n");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const dir = await mkdtemp(join(tmpdir(), "server-metrics-"));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      let now = 1_700_000_000_000_000_000;
      const logged: string[] = [];
      const scraper = await startServerMetrics(
        [`${base}/metrics`, `${base}/broken/metrics`],
        dir,
        () => (now += 1e9),
        {
          intervalMs: 60_000,
          checkReachability: true,
          log: (level, text) => logged.push(`${level}: ${text}`),
        },
      );
      assert.deepEqual(scraper.endpoints, [`${base}/metrics`]);
      assert.deepEqual(logged, [
        "info: Server metrics enabled - 1/2 endpoint(s) reachable.",
        `warning: Unreachable endpoints: ${base}/broken/metrics`,
      ]);
      await scraper.markProfilingStart();
      const files = await scraper.stop();
      const lines = (await readFile(join(dir, "server_metrics_export.jsonl"), "utf8")).trim().split("\n");
      assert.equal(lines.length, 1);
      const doc = JSON.parse(await readFile(files.json!, "utf8"));
      assert.deepEqual(doc.summary.endpoints_configured, [`${base}/metrics`]);
      assert.equal(doc.summary.endpoint_info[`${base}/metrics`].total_fetches, 3);
      assert.equal(doc.summary.endpoint_info[`${base}/metrics`].unique_updates, 1);

      const only = await mkdtemp(join(tmpdir(), "server-metrics-"));
      try {
        const json = await startServerMetrics([`${base}/metrics`], only, () => (now += 1e9), {
          intervalMs: 60_000,
          formats: ["json"],
        });
        await json.markProfilingStart();
        assert.deepEqual(await json.stop(), { json: join(only, "server_metrics_export.json") });
        assert.deepEqual(await readdir(only), ["server_metrics_export.json"]);
      } finally {
        await rm(only, { recursive: true, force: true });
      }
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
      await rm(dir, { recursive: true, force: true });
    }
  });
});
