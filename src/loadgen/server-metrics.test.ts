import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { REPO_ROOT } from "../testing/fixtures.ts";
import { flattenSeries, parsePrometheusText, startServerMetrics } from "./server-metrics.ts";

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
      const scraper = await startServerMetrics([url], dir, () => (now += 1e9));
      // Each scrape waits for the one before to reach the server, so each sees the value its order implies.
      await until(() => served === 1);
      scraper.markProfilingStart();
      await until(() => served === 2);
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
      assert.equal(
        (await readFile(join(dir, "server_metrics_export.jsonl"), "utf8")).trim().split("\n").length,
        3,
      );
      assert.deepEqual(
        (await readdir(dir)).filter((n) => n.endsWith(".tmp")),
        [],
      );
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("writes no aggregated files when no endpoint answered", async () => {
    const dir = await mkdtemp(join(tmpdir(), "server-metrics-"));
    try {
      let now = 1e18;
      const scraper = await startServerMetrics(["http://127.0.0.1:9/metrics"], dir, () => (now += 1e9));
      scraper.markProfilingStart();
      assert.deepEqual(await scraper.stop(), {});
      assert.deepEqual((await readdir(dir)).sort(), ["server_metrics_export.jsonl"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
