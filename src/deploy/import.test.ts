import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { loadRecipe, parseRecipe } from "../recipe/load.ts";
import { assertServelabError } from "../testing/assert-errors.ts";
import { withTempDir } from "../testing/fixtures.ts";
import { FOUNDING_RECIPE, TINY_RECIPE } from "../testing/recipes.ts";
import { runInProcess } from "../testing/run-cli.ts";
import { readRecipeDir, SERVELAB_VERSION } from "./files.ts";
import { importDynamoRecipe } from "./import.ts";
import { fileText, renderRecipe } from "./render.ts";
import { normalizeForRoundTrip, UNREPRODUCED } from "./round-trip.ts";
import { parseManifests } from "./validate.ts";

const FIXTURES = join(import.meta.dirname, "fixtures", "deepseek-v32-fp4");
const founding = await loadRecipe(FOUNDING_RECIPE);
const upstream = await readRecipeDir(FIXTURES);
const imported = importDynamoRecipe({ ...upstream, templates: [founding], name: "deepseek-v32-fp4" });
const recipe = parseRecipe(imported.yaml, "imported.yaml");

describe("recipe import of a Dynamo recipe directory", () => {
  it("reads arms with routers, worker groups and engine blocks", () => {
    assert.deepEqual(Object.keys(recipe.arms), ["agg-round-robin", "disagg-kv"]);
    const agg = recipe.arms["agg-round-robin"]!;
    const disagg = recipe.arms["disagg-kv"]!;
    assert.equal(agg.router.mode, "round-robin");
    assert.equal(disagg.router.mode, "kv");
    assert.deepEqual(
      [
        agg.workers?.replicas,
        agg.workers?.gpus_per_worker,
        agg.workers?.nodes_per_worker,
        agg.workers?.kv_block_size,
      ],
      [4, 8, 2, 64],
    );
    assert.equal(disagg.prefill?.replicas, 2);
    assert.equal(disagg.decode?.engine.moe_config.backend, "WIDEEP");
    assert.equal(disagg.prefill?.engine.kv_cache_config.enable_block_reuse, true);
    assert.equal(agg.workers?.engine.kv_cache_config.enable_block_reuse, false);
    // The engine blocks are the founding recipe's, which was written from the same upstream recipe.
    assert.deepEqual(agg.workers?.engine, founding.arms["agg-round-robin"]!.workers?.engine);
    assert.deepEqual(disagg.decode?.engine, founding.arms["disagg-kv"]!.decode?.engine);
  });

  it("reads the trace and benchmark from the perf Job's AIPerf command and the README", () => {
    assert.equal(recipe.trace.source, "mooncake/conversation");
    assert.deepEqual(
      { ...recipe.trace.synthesis },
      { ...founding.trace.synthesis },
      "prefix 16, prompt 10, max ISL 110000 from the file name; 10000 requests from the README",
    );
    assert.deepEqual(recipe.benchmark.goodput, { time_to_first_token: 20000, inter_token_latency: 50 });
    assert.equal(recipe.benchmark.mode, "fixed_schedule");
    assert.equal(recipe.benchmark.random_seed, 42);
    assert.equal(recipe.benchmark.request_timeout_s, 1000);
    assert.equal(recipe.benchmark.streaming, true);
  });

  it("keeps only cluster settings that differ from the defaults, and says the hardware is a guess", () => {
    assert.deepEqual(recipe.deploy?.images.runtime, "nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.3.0");
    assert.deepEqual(Object.keys(imported.recipe.deploy as object).sort(), ["images", "perf"]);
    assert.equal(recipe.deploy?.perf.server_metrics_urls.length, 2);
    assert.equal(recipe.hardware.gpus_per_node, 4);
    assert.equal(recipe.hardware.nodes, 8);
    assert.match(imported.yaml, /hardware: a guess/);
    assert.ok(imported.notes.some((n) => n.includes("unseeded")));
  });

  it("round-trips: render of the import reproduces the upstream documents up to the listed fields", () => {
    const rendered = renderRecipe(recipe).flatMap(
      (f) =>
        parseManifests(
          fileText(f, { recipe: recipe.name, servelabVersion: SERVELAB_VERSION, dynamoVersion: "1.3" }),
          f.path,
        ).docs,
    );
    const want = normalizeForRoundTrip(upstream.docs);
    const got = normalizeForRoundTrip(rendered);
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
    for (const [key, doc] of want) assert.deepEqual(got.get(key), doc, key);
    assert.ok(UNREPRODUCED.length >= 5);
  });

  it("the round trip notices a field that does differ", () => {
    const changed = recipe.arms["disagg-kv"]!.decode!;
    const r2 = structuredClone(recipe);
    r2.arms["disagg-kv"]!.decode = { ...changed, replicas: 3 };
    const want = normalizeForRoundTrip(upstream.docs);
    const got = normalizeForRoundTrip(
      renderRecipe(r2).flatMap((f) =>
        f.docs.map((value, index) => ({ file: f.path, index, line: 1, value })),
      ),
    );
    assert.notDeepEqual(
      got.get("DynamoGraphDeployment/disagg-kv-dsv32-nvfp4"),
      want.get("DynamoGraphDeployment/disagg-kv-dsv32-nvfp4"),
    );
  });

  it("needs a template recipe for the model's architecture", () => {
    const tiny = parseRecipe(TINY_RECIPE, "tiny.yaml");
    assertServelabError(
      () => importDynamoRecipe({ ...upstream, templates: [tiny], name: "x" }),
      "DEPLOY_IMPORT",
      "nvidia/DeepSeek-V3.2-NVFP4",
    );
    assertServelabError(
      () =>
        importDynamoRecipe({
          docs: upstream.docs.filter((d) => (d.value as { kind: string }).kind !== "Job"),
          templates: [founding],
          name: "x",
        }),
      "DEPLOY_IMPORT",
      "perf Job",
    );
  });

  it("`servelab recipe import` writes a recipe that validates", async () => {
    await withTempDir(async (dir) => {
      const out = join(dir, "imported.yaml");
      const r = await runInProcess(["recipe", "import", FIXTURES, "--out", out]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /note: hardware: a guess/);
      assert.equal(await readFile(out, "utf8"), imported.yaml);
      const v = await runInProcess(["recipe", "validate", out]);
      assert.equal(v.code, 0, v.stderr);
      const missing = await runInProcess(["recipe", "import", join(dir, "nope")]);
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /error\[FILE_NOT_FOUND\]/);
    });
  });
});
