import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { StepTimeModel } from "../engine/perf-model.ts";
import { startMockWorker } from "../serve/mock-worker.ts";
import { MOCKER_DEFAULTS } from "../serve/worker-config.ts";
import { withTempDir, writeLines } from "../testing/fixtures.ts";
import { runCli, runInProcess } from "../testing/run-cli.ts";

/** Fast steps, so that the seed's two AIPerf commands finish in a few seconds on the mock worker. */
const FAST: StepTimeModel = {
  name: "fast",
  stepMs: (ranks) => (ranks.some((r) => r.prefill.length > 0) ? 4 : 1),
};

/** The seed recipe's perf.yaml, word for word after `aiperf profile`; only $ENDPOINT and the paths are filled in. */
const WARMUP = (endpoint: string) =>
  `-m nvidia/DeepSeek-V3.2-NVFP4 --tokenizer nvidia/DeepSeek-V3.2-NVFP4 --url http://${endpoint} --streaming --ui dashboard --synthetic-input-tokens-mean 10000 --synthetic-input-tokens-stddev 0 --output-tokens-mean 200 --output-tokens-stddev 0 --extra-inputs max_tokens:200 --extra-inputs min_tokens:200 --extra-inputs ignore_eos:true --concurrency 4 --request-count 10`.split(
    " ",
  );
const REPLAY = (endpoint: string, trace: string, artifacts: string, metrics: string) => [
  ...`-m nvidia/DeepSeek-V3.2-NVFP4 --tokenizer nvidia/DeepSeek-V3.2-NVFP4 --input-file ${trace} --custom-dataset-type mooncake_trace --fixed-schedule --url http://${endpoint} --streaming --random-seed 42 --ui dashboard --artifact-dir ${artifacts} --workers-max 200 --request-timeout-seconds 1000 --profile-export-level records --record-processors 8 --server-metrics ${metrics}`.split(
    " ",
  ),
  "--goodput",
  "time_to_first_token:20000 inter_token_latency:50",
];

describe("the seed recipe's AIPerf commands", () => {
  it("run unchanged as servelab profile against servelab's worker", async () => {
    const worker = await startMockWorker({
      servedModel: "nvidia/DeepSeek-V3.2-NVFP4",
      engine: { ...MOCKER_DEFAULTS.engine, maxBatchSize: 16, kvCapacityBlocks: 8192 },
      stepModel: FAST,
    });
    const metrics = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
      res.end('# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{model_name="m"} 3\n');
    });
    await new Promise<void>((r) => metrics.listen(0, "127.0.0.1", r));
    try {
      await withTempDir(async (dir) => {
        const endpoint = new URL(worker.url).host;
        const warm = await runCli(["profile", ...WARMUP(endpoint)], {}, dir);
        assert.equal(warm.code, 0, warm.stderr);
        assert.match(warm.stdout, /Request Count/);
        // AIPerf's default artifact directory, under the working directory.
        const warmDir = join(dir, "artifacts", "nvidia_DeepSeek-V3.2-NVFP4-openai-chat-concurrency4");
        const warmSummary = JSON.parse(await readFile(join(warmDir, "profile_export_aiperf.json"), "utf8"));
        assert.equal(warmSummary.request_count.avg, 10);
        // max_tokens:200 and min_tokens:200 from --extra-inputs: every answer is 200 tokens long.
        assert.equal(warmSummary.output_sequence_length.avg, 200);
        // ISL as AIPerf counts it, the prompt's text encoded again: what the worker counted, not quite 10,000.
        const served = await (await fetch(`${worker.url}/metrics`)).text();
        const promptTokens = Number(/^vllm:prompt_tokens_total\{[^}]*\} (\S+)$/m.exec(served)?.[1]);
        assert.equal(warmSummary.total_isl.avg, promptTokens);
        assert.ok(Math.abs(warmSummary.input_sequence_length.avg - 10_000) < 100);

        await writeLines(
          dir,
          "trace.jsonl",
          Array.from({ length: 6 }, (_, i) => ({
            timestamp: i * 40,
            input_length: 600,
            output_length: 4,
            hash_ids: [1, 2 + (i % 2)],
          })),
        );
        const artifacts = join(dir, "replay");
        const metricsUrl = `http://127.0.0.1:${(metrics.address() as AddressInfo).port}/metrics`;
        const replay = await runCli(
          ["profile", ...REPLAY(endpoint, join(dir, "trace.jsonl"), artifacts, metricsUrl)],
          {},
          dir,
        );
        assert.equal(replay.code, 0, replay.stderr);
        const summary = JSON.parse(await readFile(join(artifacts, "profile_export_aiperf.json"), "utf8"));
        assert.equal(summary.request_count.avg, 6);
        assert.deepEqual(summary.input_config.input.goodput, {
          time_to_first_token: 20000,
          inter_token_latency: 50,
        });
        assert.equal(summary.input_config.endpoint.timeout, 1000);
        const records = (await readFile(join(artifacts, "profile_export.jsonl"), "utf8")).trim().split("\n");
        assert.equal(records.length, 6);
        const scraped = (await readFile(join(artifacts, "server_metrics_export.jsonl"), "utf8"))
          .trim()
          .split("\n");
        // AIPerf writes a page once until it changes: this server's never does.
        assert.ok(scraped.length >= 1);
        // AIPerf's layout: metric → series with their labels.
        const lines = scraped.map((l) => JSON.parse(l));
        // AIPerf's default: each --url's /metrics too, besides the --server-metrics ones.
        assert.ok(lines.some((l) => l.endpoint_url === `${worker.url}/metrics`));
        const first = lines.find((l) => l.endpoint_url === metricsUrl);
        assert.deepEqual(first.metrics["vllm:num_requests_running"], [
          { labels: { model_name: "m" }, value: 3 },
        ]);
        assert.ok(Number.isInteger(first.endpoint_latency_ns));
        // The printed command pastes back: the goodput argument is quoted.
        assert.match(replay.stdout, /--goodput 'time_to_first_token:20000 inter_token_latency:50'/);
      });
    } finally {
      await worker.close();
      await new Promise<void>((r) => metrics.close(() => r()));
    }
  });

  it("refuse what they cannot honour, saying so", async () => {
    await withTempDir(async (dir) => {
      const bad = await runInProcess(
        ["bench", "-m", "m", "--tokenizer", "gpt2", "--synthetic-input-tokens-mean", "10"],
        {},
        dir,
      );
      assert.equal(bad.code, 2);
      assert.match(
        bad.stderr,
        /^error\[USAGE\]: --tokenizer gpt2: not a tokenizer servelab ships, nor a tokenizer\.json/m,
      );
      const none = await runInProcess(["bench", "-m", "m"], {}, dir);
      assert.equal(none.code, 2);
      assert.match(none.stderr, /nothing to send/);
    });
  });
});

describe("--no-fixed-schedule", () => {
  it("sends a timestamped trace closed-loop", async () => {
    const worker = await startMockWorker({
      servedModel: "m",
      engine: { ...MOCKER_DEFAULTS.engine, maxBatchSize: 8, kvCapacityBlocks: 4096 },
      stepModel: FAST,
    });
    try {
      await withTempDir(async (dir) => {
        // Timestamps an hour apart: on schedule this run would take three hours.
        const rows = [0, 1, 2, 3].map((i) => ({
          timestamp: i * 3_600_000,
          input_length: 64,
          output_length: 2,
          hash_ids: [i],
        }));
        await writeLines(dir, "trace.jsonl", rows);
        const r = await runCli(
          [
            "bench",
            "-m",
            "m",
            "--url",
            worker.url,
            "--input-file",
            join(dir, "trace.jsonl"),
            "--no-fixed-schedule",
            "--streaming",
            "--artifact-dir",
            join(dir, "out"),
          ],
          {},
          dir,
        );
        assert.equal(r.code, 0, r.stderr);
        const summary = JSON.parse(await readFile(join(dir, "out", "profile_export_aiperf.json"), "utf8"));
        assert.equal(summary.request_count.avg, 4);
        assert.equal(summary.input_config.loadgen.concurrency, 1);
      });
    } finally {
      await worker.close();
    }
  });
});
