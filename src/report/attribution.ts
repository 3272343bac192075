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
 * the disaggregated arm's router, and the disaggregated arm behind round-robin.
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
  const reuseOn = (arm: Arm): Arm => {
    const copy = structuredClone(arm);
    copy.workers!.engine.kv_cache_config.enable_block_reuse = true;
    copy.workers!.publish_events_and_metrics = true;
    return copy;
  };
  const aggReuse = reuseOn(a);
  const aggKv: Arm = { ...reuseOn(a), router: structuredClone(b.router) };
  const disaggRr: Arm = { ...structuredClone(b), router: structuredClone(a.router) };
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
