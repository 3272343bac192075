import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isServelabError } from "../../errors.ts";
import { loadRecipe } from "../../recipe/load.ts";
import { FOUNDING_RECIPE } from "../../testing/recipes.ts";
import { planStack, scaled } from "./stack-plan.ts";

describe("servelab up's process plan", async () => {
  const recipe = await loadRecipe(FOUNDING_RECIPE);

  it("starts every replica of the aggregated arm with its DP ranks, round-robin workers publishing no events", () => {
    const p = planStack(recipe, "agg-round-robin");
    assert.deepEqual(
      p.workers.map((w) => `${w.id}:${w.role}:${w.dpSize}:${w.kvEvents}`),
      [
        "agg-0:aggregated:8:false",
        "agg-1:aggregated:8:false",
        "agg-2:aggregated:8:false",
        "agg-3:aggregated:8:false",
      ],
    );
    assert.equal(p.blockSize, 64);
    assert.deepEqual(p.scaling, []);
  });

  it("gives the disaggregated arm prefill workers that publish events for the KV router and decode workers that do not", () => {
    const p = planStack(recipe, "disagg-kv");
    assert.deepEqual(
      p.workers.map((w) => `${w.id}:${w.group}:${w.kvEvents}`),
      ["prefill-0:prefill:true", "prefill-1:prefill:true", "decode-0:decode:false", "decode-1:decode:false"],
    );
  });

  it("scales replicas and ranks down, never below one, and says what it changed", () => {
    const p = planStack(recipe, "disagg-kv", 0.25);
    assert.deepEqual(
      p.workers.map((w) => `${w.id}:${w.dpSize}`),
      ["prefill-0:2", "decode-0:2"],
    );
    assert.deepEqual(p.scaling, [
      "prefill: 2 → 1 replicas, 8 → 2 DP ranks each",
      "decode: 2 → 1 replicas, 8 → 2 DP ranks each",
    ]);
    assert.equal(scaled(4, 0.01), 1);
    assert.equal(scaled(8, 0.5), 4);
  });

  it("refuses a scale outside (0, 1] and an unknown arm", () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      assert.throws(
        () => planStack(recipe, "disagg-kv", bad),
        (e) => isServelabError(e) && e.code === "USAGE",
      );
    }
    assert.throws(() => planStack(recipe, "nope"), /no arm "nope"/);
    assert.throws(() => planStack(recipe, undefined), /choose one with --arm/);
  });
});
