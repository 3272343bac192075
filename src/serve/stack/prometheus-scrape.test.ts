import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { describe, it } from "node:test";
import { createBlockHasher } from "../../kv/block-hash.ts";
import { skipWithoutTool } from "../../testing/data-dir.ts";
import { withTempDir } from "../../testing/fixtures.ts";
import { fixedSteps, TEST_ENGINE } from "../../testing/mock-engine.ts";
import { runCli } from "../../testing/run-cli.ts";
import { waitFor } from "../../testing/wait.ts";
import { startFrontend } from "../frontend/frontend.ts";
import { type MockWorker, startMockWorker } from "../mock-worker.ts";
import { createDeepSeekTokenizer } from "../tokenizer.ts";

const PROMETHEUS = "/usr/bin/prometheus";
const MODEL = "test/model";
const ENGINE = TEST_ENGINE;
const STEPS = fixedSteps(1);
const REQUESTS = 12;
const OSL = 5;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const hostPort = (url: string) => url.replace(/^http:\/\//, "");

async function query(prom: string, q: string): Promise<number | null> {
  const res = await fetch(`${prom}/api/v1/query?query=${encodeURIComponent(q)}`);
  if (res.status !== 200) return null;
  const body = (await res.json()) as { data: { result: { value: [number, string] }[] } };
  const r = body.data.result[0];
  return r ? Number(r.value[1]) : null;
}

/** Polls a PromQL query until it equals `want` (Prometheus sees the counts at its next scrape), else fails. */
async function expectQuery(prom: string, q: string, want: number): Promise<void> {
  let last: number | null = null;
  try {
    await waitFor(
      async () => {
        last = await query(prom, q).catch(() => null);
        return last === want;
      },
      q,
      30_000,
      250,
    );
  } catch {
    assert.fail(`${q} = ${last}, expected ${want}`);
  }
}

describe("Prometheus scrapes a running stack", {
  skip: skipWithoutTool(PROMETHEUS),
  timeout: 120_000,
}, () => {
  it("reports what the load generator counted, through the frontend's and the workers' metric names", async () => {
    await withTempDir(async (dir) => {
      const tokenizer = createDeepSeekTokenizer();
      const workers: MockWorker[] = [];
      let prom: ChildProcess | undefined;
      try {
        for (let i = 0; i < 2; i++) {
          workers.push(
            await startMockWorker({
              servedModel: MODEL,
              engine: ENGINE,
              dpSize: 2,
              stepModel: STEPS,
              tokenizer,
            }),
          );
        }
        const fe = await startFrontend({
          models: [MODEL],
          workers: workers.map((w, i) => ({ id: `w${i}`, url: w.url, dp_size: 2 })),
          policy: "round-robin",
          router: { blockSize: 16, seed: 1, hasher: await createBlockHasher() },
          tokenizer,
          healthIntervalMs: 100,
        });
        try {
          const port = await freePort();
          const targets = [fe.url, ...workers.map((w) => w.url)].map((u) => `'${hostPort(u)}'`).join(", ");
          await writeFile(
            join(dir, "prometheus.yml"),
            `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: servelab\n    static_configs:\n      - targets: [${targets}]\n`,
          );
          prom = spawn(
            PROMETHEUS,
            [
              `--config.file=${join(dir, "prometheus.yml")}`,
              `--storage.tsdb.path=${join(dir, "tsdb")}`,
              `--web.listen-address=127.0.0.1:${port}`,
            ],
            { stdio: "ignore" },
          );
          const promUrl = `http://127.0.0.1:${port}`;
          const art = join(dir, "bench");
          const r = await runCli([
            "bench",
            "--url",
            fe.url,
            "-m",
            MODEL,
            "--synthetic-input-tokens-mean",
            "300",
            "--synthetic-input-tokens-stddev",
            "0",
            "--output-tokens-mean",
            String(OSL),
            "--output-tokens-stddev",
            "0",
            "--extra-inputs",
            `max_tokens:${OSL}`,
            "--request-count",
            String(REQUESTS),
            "--concurrency",
            "3",
            "--streaming",
            // Token counts as the server reported them per request (usage), so both sides count the same tokens:
            // a synthetic prompt re-tokenized can differ from its requested length by a token.
            "--use-server-token-count",
            "--ui",
            "none",
            "--random-seed",
            "3",
            "--artifact-dir",
            art,
          ]);
          assert.equal(r.code, 0, r.stderr);
          const records = (await readFile(join(art, "profile_export.jsonl"), "utf8"))
            .trim()
            .split("\n")
            .map((l) => JSON.parse(l));
          const ok = records.filter((x) => x.error === null);
          assert.equal(ok.length, REQUESTS);
          const isl = ok.reduce((s, x) => s + x.metrics.input_sequence_length.value, 0);
          const osl = ok.reduce((s, x) => s + x.metrics.output_sequence_length.value, 0);
          await expectQuery(promUrl, 'sum(dynamo_frontend_requests_total{status="success"})', REQUESTS);
          await expectQuery(promUrl, "sum(dynamo_frontend_time_to_first_token_seconds_count)", REQUESTS);
          await expectQuery(promUrl, "sum(dynamo_frontend_output_tokens_total)", osl);
          await expectQuery(promUrl, "sum(vllm:request_success_total)", REQUESTS);
          await expectQuery(promUrl, "sum(vllm:generation_tokens_total)", osl);
          await expectQuery(promUrl, "sum(vllm:prompt_tokens_total)", isl);
          await expectQuery(promUrl, 'count(up{job="servelab"} == 1)', 3);
        } finally {
          await fe.close();
        }
      } finally {
        prom?.kill("SIGKILL");
        await Promise.all(workers.map((w) => w.close()));
        await tokenizer.close();
      }
    });
  });
});
