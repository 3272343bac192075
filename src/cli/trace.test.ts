import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { skipWithoutData } from "../testing/data-dir.ts";
import { CONVERSATION_TRACE, SHARED_DATA_DIR, withTempDir, writeLines } from "../testing/fixtures.ts";
import { randomTrace } from "../testing/random-trace.ts";
import { runCli, runInProcess } from "../testing/run-cli.ts";

describe("servelab trace analyze", () => {
  it("analyzes a dataset by name as JSON", { skip: skipWithoutData(CONVERSATION_TRACE) }, async () => {
    const r = await runCli([
      "trace",
      "analyze",
      "mooncake/conversation",
      "--data-dir",
      SHARED_DATA_DIR,
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const a = JSON.parse(r.stdout);
    assert.equal(a.requests, 12_031);
    assert.equal(a.total_blocks, 288_500);
    assert.equal(a.unique_blocks, 182_790);
    assert.equal(a.block_hit_rate.toFixed(4), "0.3664");
    for (const key of ["duration_s", "token_hit_rate", "shared_prefix_ratio"])
      assert.equal(typeof a[key], "number");
    for (const key of ["mean", "min", "p50", "p90", "p99", "max"]) assert.equal(typeof a.isl[key], "number");
  });

  it("prints a table with LRU cache sizes", async () => {
    await withTempDir(async (dir) => {
      const file = await writeLines(dir, "t.jsonl", randomTrace(1, 50));
      const r = await runInProcess(["trace", "analyze", file, "--cache-sizes", "2k,1M"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /block-level hit rate/);
      assert.match(r.stdout, /LRU prefix cache 1,000,000 tokens \(1,953 blocks\)/);
      assert.match(r.stdout, /input \(ISL\)/);
    });
  });

  it("exits 2 with file:line errors on a bad trace", async () => {
    await withTempDir(async (dir) => {
      const file = await writeLines(dir, "bad.jsonl", [
        { timestamp: 0, input_length: 10, output_length: 1, hash_ids: [] },
      ]);
      const r = await runInProcess(["trace", "analyze", file]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /^error\[TRACE_INVALID\]: .*bad\.jsonl: 1 invalid line/);
      assert.match(r.stderr, /bad\.jsonl:1: field 'hash_ids' has 0 blocks/);
      assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/);
    });
  });

  it("reports a missing file and bad option values with error codes", async () => {
    const missing = await runInProcess(["trace", "analyze", "no/such/file.jsonl"]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^error\[FILE_NOT_FOUND\]/);
    const usage = await runInProcess(["trace", "analyze", "x.jsonl", "--block-size", "zero"]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /^error\[USAGE\]: option '--block-size <tokens>' argument 'zero' is invalid/);
  });
});

describe("servelab trace synthesize", () => {
  it("writes byte-identical output for the same seed", async () => {
    await withTempDir(async (dir) => {
      const input = await writeLines(dir, "in.jsonl", randomTrace(2, 200));
      const run = (out: string, seed: string) =>
        runInProcess([
          "trace",
          "synthesize",
          "--input",
          input,
          "--num-requests",
          "300",
          "--seed",
          seed,
          "--output",
          join(dir, out),
        ]);
      const a = await run("a.jsonl", "7");
      assert.equal(a.code, 0, a.stderr);
      assert.match(a.stdout, /wrote 300/);
      assert.match(a.stdout, /shared context/);
      await run("b.jsonl", "7");
      await run("c.jsonl", "8");
      const [ta, tb, tc] = await Promise.all(
        ["a", "b", "c"].map((n) => readFile(join(dir, `${n}.jsonl`), "utf8")),
      );
      assert.equal(ta, tb);
      assert.ok(ta !== undefined);
      assert.notEqual(ta, tc);
      assert.equal(ta.trim().split("\n").length, 300);
    });
  });

  it("takes its parameters from a recipe, flags overriding", {
    skip: skipWithoutData(CONVERSATION_TRACE),
  }, async () => {
    await withTempDir(async (dir) => {
      const out = join(dir, "recipe.jsonl");
      const r = await runInProcess(
        [
          "trace",
          "synthesize",
          "--recipe",
          "recipes/dsv32-wideep-routing.yaml",
          "--num-requests",
          "500",
          "--output",
          out,
          "--json",
        ],
        { SERVELAB_DATA_DIR: SHARED_DATA_DIR },
      );
      assert.equal(r.code, 0, r.stderr);
      const a = JSON.parse(r.stdout);
      assert.equal(a.requests, 500);
      assert.equal(a.options.prefixLenMultiplier, 16);
      assert.equal(a.options.maxIsl, 110_000);
      assert.ok(a.isl.max <= 110_000);
      assert.equal(a.shared_prefix_source, "context_len");
    });
  });

  it("rejects an input without arrival times", async () => {
    await withTempDir(async (dir) => {
      const input = await writeLines(
        dir,
        "flat.jsonl",
        randomTrace(2, 20).map((r) => ({ ...r, timestamp: 0 })),
      );
      const r = await runInProcess([
        "trace",
        "synthesize",
        "--input",
        input,
        "--output",
        join(dir, "o.jsonl"),
      ]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /^error\[SYNTH_INPUT\]/);
      assert.equal(existsSync(join(dir, "o.jsonl")), false);
    });
  });
});

describe("Dynamo datagen's names", () => {
  it("take --input-file and --output-file, and name the output as the seed recipe's perf.yaml does", async () => {
    await withTempDir(async (dir) => {
      await writeLines(dir, "conversation_trace.jsonl", randomTrace(4, 40));
      const input = join(dir, "conversation_trace.jsonl");
      const out = join(dir, "given.jsonl");
      const r = await runInProcess([
        "trace",
        "synthesize",
        "--input-file",
        input,
        "--output-file",
        out,
        "--num-requests",
        "20",
        "--quiet",
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), out);
      const named = await runInProcess(
        [
          "trace",
          "synthesize",
          "--input-file",
          input,
          "--num-requests",
          "20",
          "--prefix-len-multiplier",
          "16",
          "--prompt-len-multiplier",
          "10",
          "--max-isl",
          "110000",
          "--quiet",
        ],
        {},
        dir,
      );
      assert.equal(named.code, 0, named.stderr);
      assert.equal(named.stdout.trim(), "conversation_trace_synth_16.00x1+10.00_speedup1_maxisl110000.jsonl");
      const seeded = await runInProcess(
        ["trace", "synthesize", "--input-file", input, "--num-requests", "20", "--seed", "3", "--quiet"],
        {},
        dir,
      );
      assert.match(seeded.stdout, /_synth_1\.00x1\+1\.00_speedup1_seed3\.jsonl$/m);
      const analyzed = await runInProcess(["trace", "analyze", "--input-file", input, "--json"]);
      assert.equal(analyzed.code, 0, analyzed.stderr);
      assert.equal(JSON.parse(analyzed.stdout).requests, 40);
      const both = await runInProcess(["trace", "analyze", input, "--input-file", input]);
      assert.equal(both.code, 2);
      // AIPerf's analyze-trace layout, to stdout or to --output-file.
      const aiperf = await runInProcess(["trace", "analyze", "--input-file", input, "--format", "aiperf"]);
      assert.equal(aiperf.code, 0, aiperf.stderr);
      const stats = JSON.parse(aiperf.stdout);
      assert.equal(stats.total_requests, 40);
      assert.deepEqual(Object.keys(stats.isl_stats), [
        "mean",
        "std_dev",
        "min",
        "p25",
        "median",
        "p75",
        "max",
      ]);
      const saved = join(dir, "analysis.json");
      const toFile = await runInProcess([
        "trace",
        "analyze",
        "--input-file",
        input,
        "--format",
        "aiperf",
        "--output-file",
        saved,
      ]);
      assert.equal(toFile.code, 0, toFile.stderr);
      assert.deepEqual(JSON.parse(await readFile(saved, "utf8")), stats);
    });
  });
});
