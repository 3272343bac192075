import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { StepTimeModel } from "../engine/perf-model.ts";
import { startMockWorker } from "../serve/mock-worker.ts";
import { MOCKER_DEFAULTS } from "../serve/worker-config.ts";
import { withTempDir, writeLines } from "../testing/fixtures.ts";
import { TINY_RECIPE } from "../testing/recipes.ts";
import { runCli, runInProcess } from "../testing/run-cli.ts";

const steps = (ms: number): StepTimeModel => ({ name: `${ms} ms`, stepMs: () => ms });
const ENGINE = { ...MOCKER_DEFAULTS.engine, maxBatchSize: 16, kvCapacityBlocks: 4096 };

/** `n` requests `gapMs` apart, sharing their first prompt block three ways. */
function writeTrace(dir: string, n: number, gapMs: number): Promise<string> {
  return writeLines(
    dir,
    "trace.jsonl",
    Array.from({ length: n }, (_, i) => ({
      timestamp: 1000 + i * gapMs,
      input_length: 700,
      output_length: 8,
      hash_ids: [1, 2 + (i % 3)],
    })),
  );
}

describe("servelab ab --endpoint", () => {
  it("replays the recipe's trace against two live endpoints and reports them", async () => {
    const fast = await startMockWorker({ servedModel: "org/tiny", engine: ENGINE, stepModel: steps(2) });
    const slow = await startMockWorker({ servedModel: "org/tiny", engine: ENGINE, stepModel: steps(8) });
    try {
      await withTempDir(async (dir) => {
        const recipe = TINY_RECIPE.replace(
          "  source: mooncake/conversation",
          "  source: trace.jsonl",
        ).replace(
          "hardware:",
          "benchmark: { auto_offset: true, goodput: { time_to_first_token: 500 } }\nhardware:",
        );
        await writeFile(join(dir, "r.yaml"), recipe);
        await writeTrace(dir, 12, 40);
        const out = join(dir, "out");
        const r = await runCli([
          "ab",
          join(dir, "r.yaml"),
          "--endpoint",
          `slow=${slow.url}`,
          "--endpoint",
          `fast=${fast.url}`,
          "--out",
          out,
        ]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /Report: .*report\.html/);
        const md = await readFile(join(out, "report.md"), "utf8");
        assert.match(md, /## fast vs slow/);
        assert.match(md, /fast cuts ITL mean/);
        assert.equal(slow.requestLog.since().length, 12);
        assert.equal(fast.requestLog.since().length, 12);
        const bad = await runInProcess([
          "ab",
          join(dir, "r.yaml"),
          "--endpoint",
          "lonely=http://127.0.0.1:1",
        ]);
        assert.equal(bad.code, 2);
        assert.match(bad.stderr, /needs two or more --endpoint/);
        const refused = async (endpoints: string[], pattern: RegExp, extra: string[] = []) => {
          const r = await runInProcess([
            "ab",
            join(dir, "r.yaml"),
            ...endpoints.flatMap((e) => ["--endpoint", e]),
            "--out",
            join(dir, `x${Math.random()}`),
            ...extra,
          ]);
          assert.equal(r.code, 2, r.stdout);
          assert.match(r.stderr, pattern);
        };
        // Checked before any load: what each endpoint serves, URL schemes, distinct names.
        await refused(
          [`a=${slow.url}`, `b=${fast.url}`],
          /^error\[ENDPOINT_CHECK\]: endpoint a .* does not serve model 'other'; it serves: org\/tiny/m,
          ["--model", "other"],
        );
        await refused(
          [`a=${slow.url}`, "b=http://127.0.0.1:1"],
          /^error\[ENDPOINT_CHECK\]: endpoint b .*GET \/v1\/models failed/m,
        );
        await refused(
          [`a=${slow.url}`, "b=ftp://127.0.0.1:1"],
          /^error\[USAGE\]: --endpoint b: .* is not an http/m,
        );
        await refused(
          [`a=${slow.url}`, `a=${fast.url}`],
          /^error\[USAGE\]: --endpoint name 'a' is given twice/m,
        );
        assert.equal(slow.requestLog.since().length, 12, "a refused A/B sent no requests");
      });
    } finally {
      await Promise.all([fast.close(), slow.close()]);
    }
  });
});

describe("servelab ab --live", { timeout: 240_000 }, () => {
  it("runs every arm of the recipe on the loopback stack, one after the other, into the same report", async () => {
    await withTempDir(async (dir) => {
      await writeFile(
        join(dir, "r.yaml"),
        TINY_RECIPE.replace("  source: mooncake/conversation", "  source: trace.jsonl")
          .replace(
            "hardware:",
            "benchmark: { auto_offset: true, goodput: { time_to_first_token: 5000 } }\nhardware:",
          )
          .replace(
            "arms:\n  only:\n    workers:\n      replicas: 2\n",
            "arms:\n  rr:\n    router: { mode: round-robin }\n    workers: { replicas: 2 }\n  kv:\n    router: { mode: kv }\n    prefill: { replicas: 1, publish_events_and_metrics: true }\n    decode: { replicas: 1 }\n",
          ),
      );
      await writeTrace(dir, 30, 100);
      const out = join(dir, "out");
      const r = await runCli([
        "ab",
        join(dir, "r.yaml"),
        "--live",
        "--speedup-ratio",
        "5",
        "--requests",
        "12",
        "--perf-model",
        "polynomial",
        "--out",
        out,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const md = await readFile(join(out, "report.md"), "utf8");
      assert.match(md, /ran live on the loopback stack at scale 1 .* speed-up 5×.*first 12 requests/);
      for (const arm of ["rr", "kv"]) {
        const lines = (await readFile(join(out, "arms", arm, "profile_export.jsonl"), "utf8"))
          .trim()
          .split("\n");
        assert.equal(lines.length, 12, `arm ${arm}`);
        for (const l of lines) assert.equal(JSON.parse(l).error, null, l);
      }
      const refused = await runInProcess([
        "ab",
        join(dir, "r.yaml"),
        "--scale",
        "0.5",
        "--out",
        join(dir, "x"),
      ]);
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /apply to --live runs/);
    });
  });
});
