import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { parseRecipe } from "../recipe/load.ts";
import { withTempDir } from "../testing/fixtures.ts";
import { FOUNDING_RECIPE, TINY_RECIPE } from "../testing/recipes.ts";
import { runCli, runInProcess } from "../testing/run-cli.ts";

/**
 * Runs the CLI in this process, capturing the text it writes. The test runner reports to its parent over the same
 * stdout with binary frames, so only string writes are taken; everything else passes through.
 */

describe("servelab recipe validate", () => {
  it("names the TensorRT-LLM options it keeps but does not model", async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, "r.yaml");
      await writeFile(
        file,
        TINY_RECIPE.replace(
          "      replicas: 2\n",
          "      replicas: 2\n      engine:\n        trust_remote_code: true\n",
        ),
      );
      const r = await runInProcess(["recipe", "validate", file, "--perf-model", "polynomial"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        /^note: only\/workers: TensorRT-LLM options kept but not modelled by the simulator: trust_remote_code$/m,
      );
    });
  });

  it("accepts the founding recipe and names its arms and the step-time model of each group", async () => {
    const r = await runInProcess(["recipe", "validate", FOUNDING_RECIPE]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      [
        `ok: ${FOUNDING_RECIPE} (recipe dsv32-wideep-routing, 2 arms: agg-round-robin, disagg-kv)`,
        "step-time model agg-round-robin/aggregated: deepseek-v3.2-nvfp4/gb200/dep8/aggregated (nominal)",
        "step-time model disagg-kv/prefill: deepseek-v3.2-nvfp4/gb200/dep8/prefill (nominal)",
        "step-time model disagg-kv/decode: deepseek-v3.2-nvfp4/gb200/dep8/decode-wideep (nominal)",
        "",
      ].join("\n"),
    );
    assert.equal(r.stderr, "");
  });

  it("warns when a recipe would run on the uncalibrated polynomial model", async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, "tiny.yaml");
      await writeFile(file, TINY_RECIPE);
      const r = await runInProcess(["recipe", "validate", file]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /step-time model only\/aggregated: polynomial/);
      assert.match(r.stderr, /^warning: uncalibrated step-time model/);
    });
  });

  it("exits 2 with one located line per problem", async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, "bad.yaml");
      await writeFile(file, TINY_RECIPE.replace("replicas: 2", "replicas: 9\n      gpus_per_worker: 2"));
      const r = await runInProcess(["recipe", "validate", file]);
      assert.equal(r.code, 2);
      assert.equal(
        r.stderr,
        `error[RECIPE_INVALID]: ${file}: recipe does not match the schema (1 problem)\n` +
          `  ${file}:31:7: arms.only.workers.gpus_per_worker: gpus_per_worker (2) must equal ` +
          "engine.tensor_parallel_size (1): a worker is one tensor-parallel engine\n",
      );
    });
  });

  it("reports a missing file", async () => {
    const r = await runInProcess(["recipe", "validate", "no/such.yaml"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^error\[FILE_NOT_FOUND\]: recipe file not found: no\/such\.yaml/);
  });
});

describe("servelab recipe show", () => {
  it("prints the resolved recipe as YAML, byte-identical across runs, and it re-parses to the same recipe", async () => {
    const first = await runCli(["recipe", "show", FOUNDING_RECIPE]);
    const second = await runCli(["recipe", "show", FOUNDING_RECIPE]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, second.stdout);
    const original = parseRecipe(TINY_RECIPE, "tiny.yaml");
    await withTempDir(async (dir) => {
      const file = join(dir, "tiny.yaml");
      await writeFile(file, TINY_RECIPE);
      const shown = await runInProcess(["recipe", "show", file]);
      assert.equal(shown.code, 0, shown.stderr);
      assert.deepEqual(parseRecipe(shown.stdout, "shown.yaml"), original);
      assert.equal(parse(shown.stdout).arms.only.workers.engine.kv_cache_config.tokens_per_block, 32);
    });
  });

  it("prints JSON with --json", async () => {
    const r = await runInProcess(["recipe", "show", FOUNDING_RECIPE, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout);
    assert.equal(json.arms["disagg-kv"].decode.engine.moe_config.backend, "WIDEEP");
    assert.equal(json.hardware.total_gpus, 32);
  });
});
