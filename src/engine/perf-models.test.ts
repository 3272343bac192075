import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ServelabError } from "../errors.ts";
import { loadRecipe, parseRecipe } from "../recipe/load.ts";
import { FOUNDING_RECIPE, TINY_RECIPE } from "../testing/recipes.ts";
import { describePerfModels, perfModelChoice, uncalibratedWarning } from "./perf-models.ts";

describe("step-time model choice", () => {
  it("runs the measured profile on the founding recipe and names it per group and bound", async () => {
    const recipe = await loadRecipe(FOUNDING_RECIPE);
    const d = describePerfModels("auto", recipe);
    assert.equal(d.calibrated, true);
    assert.deepEqual(d.models, {
      "agg-round-robin": { aggregated: "deepseek-v3.2-nvfp4/gb200/dep8/aggregated (nominal)" },
      "disagg-kv": {
        prefill: "deepseek-v3.2-nvfp4/gb200/dep8/prefill (nominal)",
        decode: "deepseek-v3.2-nvfp4/gb200/dep8/decode-wideep (nominal)",
      },
    });
    const pes = describePerfModels("auto", recipe, ["disagg-kv"], { bound: "pessimistic" });
    assert.match(pes.models["disagg-kv"]!.prefill!, /\(pessimistic\)$/);
  });

  it("says when auto falls back to the uncalibrated polynomial model", () => {
    const recipe = parseRecipe(TINY_RECIPE, "tiny.yaml");
    const d = describePerfModels("auto", recipe);
    assert.equal(d.calibrated, false);
    assert.deepEqual(d.models, { only: { aggregated: "polynomial" } });
    assert.match(
      uncalibratedWarning(d.models),
      /^warning: uncalibrated step-time model.*only\/aggregated: polynomial/,
    );
    const choice = perfModelChoice("table", recipe);
    assert.throws(
      () => choice.forGroup(recipe.arms.only!.workers!, "aggregated"),
      (e: unknown) => e instanceof ServelabError && /measured profile/.test(e.message),
    );
  });

  it("builds each group's model from its engine config, with the bounds applied", async () => {
    const recipe = await loadRecipe(FOUNDING_RECIPE);
    const prefill = recipe.arms["disagg-kv"]!.prefill!;
    const idle = { prefill: [], decode: [], kvUsage: 0 };
    const oneRank = [
      { prefill: [{ tokens: 8192, pastTokens: 0 }], decode: [], kvUsage: 0 },
      ...Array(7).fill(idle),
    ];
    const at = (setting: Parameters<typeof perfModelChoice>[2]) =>
      perfModelChoice("auto", recipe, setting).forGroup(prefill, "prefill").stepMs(oneRank);
    const nominal = at({ bound: "nominal" });
    // Idle prefill ranks running max_num_tokens dummies cost what eight busy ranks do.
    assert.ok(
      at({ bound: "nominal", vary: { parameter: "prefill_idle_rank_dummy", bound: "pessimistic" } }) >
        1.3 * nominal,
    );
    assert.ok(at({ bound: "optimistic" }) < nominal && nominal < at({ bound: "pessimistic" }));
    // The aggregated group has no context dummies: only the other parameters move it.
    const agg = recipe.arms["agg-round-robin"]!.workers!;
    const aggAt = (bound: "nominal" | "pessimistic") =>
      perfModelChoice("auto", recipe, {
        bound: "nominal",
        vary: { parameter: "prefill_idle_rank_dummy", bound },
      })
        .forGroup(agg, "aggregated")
        .stepMs(oneRank);
    assert.equal(aggAt("pessimistic"), aggAt("nominal"));
  });
});
