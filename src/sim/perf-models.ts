import type { WorkerRole } from "../engine/engine-worker.ts";
import { getStepTimeModel, stepTimeModelNames } from "../engine/perf/registry.ts";
import type { StepTimeModel } from "../engine/perf-model.ts";
import { ServelabError } from "../errors.ts";
import type { Recipe, WorkerGroup } from "../recipe/schema.ts";

export type PerfModelChoice = (group: WorkerGroup, role: WorkerRole) => StepTimeModel;

/** The measured DeepSeek-V3.2 NVFP4 profile and the deployments it describes. */
const DSV32_PROFILE = "deepseek-v3.2-nvfp4/gb200/dep8";

function dsv32Variant(group: WorkerGroup, role: WorkerRole): string {
  if (role === "prefill") return `${DSV32_PROFILE}/prefill`;
  if (role === "decode" && group.engine.moe_config.backend === "WIDEEP")
    return `${DSV32_PROFILE}/decode-wideep`;
  return `${DSV32_PROFILE}/aggregated`;
}

/** Whether the recipe runs what the measured profile measured: DeepSeek-V3.2 NVFP4 on GB200 in DEP8 workers. */
function matchesDsv32Profile(recipe: Recipe, group: WorkerGroup): boolean {
  const e = group.engine;
  return (
    /deepseek-v3\.2/i.test(recipe.model.model_path) &&
    recipe.model.quantization.weights === "nvfp4" &&
    recipe.hardware.gpu === "GB200" &&
    e.enable_attention_dp &&
    e.tensor_parallel_size === 8 &&
    e.moe_expert_parallel_size === 8
  );
}

export const PERF_MODEL_CHOICES = ["auto", "table", ...stepTimeModelNames()] as const;

/**
 * The step-time model of each worker group, by name: `auto` (the default) uses the measured table profile where the
 * recipe matches it and the polynomial elsewhere; `table` requires the profile; any registered name applies as is.
 */
export function perfModelChoice(name: string, recipe: Recipe): PerfModelChoice {
  const cache = new Map<string, StepTimeModel>();
  const named = (n: string) => {
    const m = cache.get(n) ?? getStepTimeModel(n);
    cache.set(n, m);
    return m;
  };
  if (name === "auto" || name === "table") {
    return (group, role) => {
      if (matchesDsv32Profile(recipe, group)) return named(dsv32Variant(group, role));
      if (name === "table") {
        throw new ServelabError(
          "USAGE",
          `the table step-time model has a measured profile for DeepSeek-V3.2 NVFP4 DEP8 on GB200 only; use --perf-model polynomial`,
        );
      }
      return named("polynomial");
    };
  }
  const model = named(name);
  return () => model;
}
