import { ServelabError } from "../errors.ts";
import type { Arm, Recipe } from "../recipe/schema.ts";

/** The extra arms that change one factor at a time, and the comparisons that isolate each factor. */
export interface Attribution {
  recipe: Recipe;
  /** [factor, baseline arm, arm with that factor changed] in the order the factors stack up. */
  steps: [factor: string, from: string, to: string][];
}

/**
 * Adds the arms that separate the founding A/B's three changes — prefix reuse, KV-aware routing, disaggregation —
 * to a recipe with one aggregated baseline arm and one disaggregated arm: the baseline with reuse on, then also with
 * the disaggregated arm's router; each step changes that one factor. The disaggregated arm behind the baseline's
 * router is added too (both of its legs then route that way), for the other order of the last two factors.
 */
export function withAttributionArms(recipe: Recipe): Attribution {
  const names = Object.keys(recipe.arms);
  const baseline = names.find((n) => recipe.arms[n]!.workers !== undefined);
  const treatment = names.find((n) => recipe.arms[n]!.prefill !== undefined);
  if (!baseline || !treatment) {
    throw new ServelabError(
      "USAGE",
      "attribution needs one aggregated arm (workers) and one disaggregated arm (prefill + decode)",
    );
  }
  const a = recipe.arms[baseline]!;
  const b = recipe.arms[treatment]!;
  const aggReuse = structuredClone(a);
  aggReuse.workers!.engine.kv_cache_config.enable_block_reuse = true;
  // The KV router hears of cached blocks through events: a worker behind it publishes them (part of routing).
  const aggKv: Arm = structuredClone({ ...aggReuse, router: b.router });
  if (b.router.mode === "kv" && b.router.use_kv_events) aggKv.workers!.publish_events_and_metrics = true;
  const disaggRr: Arm = structuredClone({ ...b, router: a.router });
  const arms = {
    ...recipe.arms,
    [`${baseline}+reuse`]: aggReuse,
    [`${baseline}+reuse+${b.router.mode}-router`]: aggKv,
    [`${treatment}+${a.router.mode}`]: disaggRr,
  };
  return {
    recipe: { ...recipe, arms },
    steps: [
      ["prefix reuse", baseline, `${baseline}+reuse`],
      [`${b.router.mode} routing`, `${baseline}+reuse`, `${baseline}+reuse+${b.router.mode}-router`],
      ["disaggregation", `${baseline}+reuse+${b.router.mode}-router`, treatment],
    ],
  };
}
