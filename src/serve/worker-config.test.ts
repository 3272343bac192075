import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { kvCapacityBlocks } from "../engine/kv-capacity.ts";
import { loadRecipe, parseRecipe } from "../recipe/load.ts";
import type { Recipe } from "../recipe/schema.ts";
import { assertServelabError } from "../testing/assert-errors.ts";
import { FOUNDING_RECIPE, TINY_RECIPE } from "../testing/recipes.ts";
import { MOCKER_DEFAULTS, resolveWorkerConfig } from "./worker-config.ts";

describe("resolveWorkerConfig", () => {
  let founding: Recipe;
  before(async () => {
    founding = await loadRecipe(FOUNDING_RECIPE);
  });

  it("takes Dynamo mocker's defaults without a recipe, and any flag over them", () => {
    const plain = resolveWorkerConfig({});
    assert.equal(plain.servedModel, MOCKER_DEFAULTS.servedModel);
    assert.equal(plain.dpSize, 1);
    assert.deepEqual(plain.engine, MOCKER_DEFAULTS.engine);
    assert.equal(plain.stepModel.name, "polynomial");

    const tuned = resolveWorkerConfig({
      model: "m",
      dpSize: 2,
      maxBatchSize: 3,
      maxNumTokens: 100,
      kvBlocks: 50,
      blockSize: 16,
      prefixCaching: false,
      chunkedPrefill: false,
    });
    assert.equal(tuned.servedModel, "m");
    assert.equal(tuned.dpSize, 2);
    assert.deepEqual(tuned.engine, {
      maxBatchSize: 3,
      maxNumTokens: 100,
      chunkedPrefill: false,
      blockSize: 16,
      prefixCaching: false,
      kvCapacityBlocks: 50,
      watermark: MOCKER_DEFAULTS.engine.watermark,
    });
  });

  it("refuses recipe-only flags without a recipe, and unknown step models", () => {
    assertServelabError(() => resolveWorkerConfig({ arm: "a" }), "USAGE", "--arm needs --recipe");
    assertServelabError(() => resolveWorkerConfig({ group: "decode" }), "USAGE", "--group needs --recipe");
    assertServelabError(() => resolveWorkerConfig({ perfModel: "table" }), "USAGE", "needs a --recipe");
    assertServelabError(() => resolveWorkerConfig({ perfModel: "nope" }), "USAGE", "unknown step-time model");
  });

  it("runs an aggregated arm's workers as the recipe configures them", () => {
    const c = resolveWorkerConfig({ arm: "agg-round-robin" }, founding);
    const group = founding.arms["agg-round-robin"]!.workers!;
    assert.equal(c.servedModel, "nvidia/DeepSeek-V3.2-NVFP4");
    assert.equal(c.dpSize, 8);
    assert.deepEqual(c.engine, {
      maxBatchSize: 8,
      maxNumTokens: 8192,
      chunkedPrefill: true,
      blockSize: 64,
      prefixCaching: false,
      kvCapacityBlocks: kvCapacityBlocks(founding, group),
      watermark: 0.01,
    });
    assert.equal(c.stepModel.name, "deepseek-v3.2-nvfp4/gb200/dep8/aggregated (nominal)");
    assert.match(c.source, /arm agg-round-robin, group workers/);
  });

  it("takes a disaggregated arm's group by name, with its own step-time profile", () => {
    const decode = resolveWorkerConfig({ arm: "disagg-kv", group: "decode" }, founding);
    assert.equal(decode.stepModel.name, "deepseek-v3.2-nvfp4/gb200/dep8/decode-wideep (nominal)");
    assert.equal(decode.engine.chunkedPrefill, false);
    const prefill = resolveWorkerConfig({ arm: "disagg-kv", group: "prefill", maxBatchSize: 2 }, founding);
    assert.equal(prefill.stepModel.name, "deepseek-v3.2-nvfp4/gb200/dep8/prefill (nominal)");
    assert.equal(prefill.engine.prefixCaching, true);
    assert.equal(prefill.engine.maxBatchSize, 2);
    const poly = resolveWorkerConfig(
      { arm: "disagg-kv", group: "prefill", perfModel: "polynomial" },
      founding,
    );
    assert.equal(poly.stepModel.name, "polynomial");
  });

  it("refuses more DP ranks than a measured profile has", () => {
    assert.equal(resolveWorkerConfig({ arm: "agg-round-robin", dpSize: 4 }, founding).dpSize, 4);
    assertServelabError(
      () => resolveWorkerConfig({ arm: "agg-round-robin", dpSize: 16 }, founding),
      "USAGE",
      "dep8/aggregated (nominal) step-time model cannot run 16 DP ranks",
    );
  });

  it("says which arm or group to pick when the recipe leaves it open", () => {
    assertServelabError(
      () => resolveWorkerConfig({}, founding),
      "USAGE",
      "has 2 arms",
      "agg-round-robin, disagg-kv",
    );
    assertServelabError(() => resolveWorkerConfig({ arm: "x" }, founding), "USAGE", 'no arm "x"');
    assertServelabError(
      () => resolveWorkerConfig({ arm: "disagg-kv" }, founding),
      "USAGE",
      "disaggregated",
      "prefill, decode",
    );
    assertServelabError(
      () => resolveWorkerConfig({ arm: "disagg-kv", group: "workers" }, founding),
      "USAGE",
      "has no workers group",
    );
  });

  it("picks a one-arm recipe's arm without --arm", () => {
    const tiny = parseRecipe(TINY_RECIPE, "tiny.yaml");
    const c = resolveWorkerConfig({}, tiny);
    assert.equal(c.servedModel, "org/tiny");
    assert.equal(c.dpSize, 1);
    assert.equal(c.stepModel.name, "polynomial");
    assert.equal(c.engine.blockSize, 32);
  });
});
