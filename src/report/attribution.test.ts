import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadRecipe } from "../recipe/load.ts";
import type { Arm } from "../recipe/schema.ts";
import { FOUNDING_RECIPE } from "../testing/recipes.ts";
import { withAttributionArms } from "./attribution.ts";

/** JSON paths where two values differ, e.g. `workers.engine.kv_cache_config.enable_block_reuse`. */
function differences(a: unknown, b: unknown, path = ""): string[] {
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null)
    return Object.is(a, b) ? [] : [path];
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].flatMap((k) =>
    differences(
      (a as Record<string, unknown>)[k],
      (b as Record<string, unknown>)[k],
      path ? `${path}.${k}` : k,
    ),
  );
}

/** The factor each path belongs to: prefix reuse, routing, or the serving layout (everything about workers). */
function factorOf(path: string, from: Arm, to: Arm): string {
  if (path.startsWith("router")) return "routing";
  if (path.endsWith("enable_block_reuse") && (from.workers !== undefined) === (to.workers !== undefined))
    return "prefix reuse";
  // Publishing KV events only matters to a router that listens for them.
  if (path.endsWith("publish_events_and_metrics")) return "routing";
  return "disaggregation";
}

describe("attribution arms", async () => {
  const recipe = await loadRecipe(FOUNDING_RECIPE);
  const { recipe: extended, steps } = withAttributionArms(recipe);

  it("changes exactly one factor per step, on the resolved recipe", () => {
    assert.deepEqual(
      steps.map(([factor]) => factor),
      ["prefix reuse", "kv routing", "disaggregation"],
    );
    for (const [factor, from, to] of steps) {
      const a = extended.arms[from]!;
      const b = extended.arms[to]!;
      const { description: _a, ...fa } = a;
      const { description: _b, ...fb } = b;
      const changed = differences(fa, fb);
      assert.ok(changed.length > 0, `${factor}: ${from} and ${to} are the same arm`);
      const factors = new Set(changed.map((p) => factorOf(p, a, b)));
      const expected = factor === "kv routing" ? "routing" : factor;
      assert.deepEqual([...factors], [expected], `${factor}: ${changed.join(", ")}`);
    }
  });

  it("the reuse step flips block reuse only, and the disaggregated round-robin arm differs from the KV arm in its router only", () => {
    const [, from, to] = steps[0]!;
    assert.deepEqual(differences(extended.arms[from], extended.arms[to]), [
      "workers.engine.kv_cache_config.enable_block_reuse",
    ]);
    const rr = extended.arms["disagg-kv+round-robin"]!;
    const kv = extended.arms["disagg-kv"]!;
    assert.ok(differences(rr, kv).every((p) => p.startsWith("router")));
    assert.equal(rr.router.mode, "round-robin");
  });
});
