import { ServelabError } from "../errors.ts";
import type { Recipe, WorkerGroup } from "../recipe/schema.ts";
import type { WorkerRole } from "./engine-worker.ts";
import { applySetting, HOST_OVERHEAD, NOMINAL, type PerfSetting, settingLabel } from "./perf/bounds.ts";
import { DSV32_GB200_DEP8, getStepTimeModel, stepTimeModelNames } from "./perf/registry.ts";
import { createTableModel, type TableVariant } from "./perf/table.ts";
import type { StepTimeModel } from "./perf-model.ts";

export type PerfModelFor = (group: WorkerGroup, role: WorkerRole) => StepTimeModel;

/** The step-time model of each worker group, and what a reader must be told about it. */
export interface PerfModelChoice {
  /** The model for a worker group (built once per group and role). */
  forGroup: PerfModelFor;
  /** What was asked for (`auto`, `table`, `polynomial`, a profile name). */
  requested: string;
  /** The profile's bounds in use, e.g. `nominal`. */
  setting: PerfSetting;
  /** Resolved model names, per group role, filled in as groups ask. */
  resolved: Map<string, string>;
  /** False once any group runs a model with no measured profile behind it. */
  calibrated(): boolean;
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

/**
 * How the profiled model runs in this group, from its engine config: WideEP or the fused MoE path, the FP4 combine,
 * the CUDA-graph batch limit, and AIC's PDL factor on the WideEP graph (SOURCE.md §3.3).
 */
function variantOf(group: WorkerGroup): TableVariant {
  const e = group.engine;
  const wide = e.moe_config.backend === "WIDEEP";
  return {
    moeBackend: wide ? "WIDEEP" : "TRTLLM",
    lowPrecisionCombine: e.moe_config.use_low_precision_moe_combine,
    cudaGraphMaxBatch: e.cuda_graph_config?.max_batch_size ?? 0,
    graphLayerScale: wide ? 0.9 : 1,
  };
}

export const PERF_MODEL_CHOICES = ["auto", "table", ...stepTimeModelNames()] as const;

/**
 * The step-time model of each worker group, by name: `auto` (the default) uses the measured table profile where the
 * recipe matches it and the polynomial elsewhere; `table` requires the profile; any registered name applies as is.
 * The table profile's uncertain parameters are read at `setting`'s bounds (see bounds.ts).
 */
export function perfModelChoice(
  name: string,
  recipe: Recipe,
  setting: PerfSetting = NOMINAL,
): PerfModelChoice {
  const cache = new Map<string, StepTimeModel>();
  const resolved = new Map<string, string>();
  let calibrated = true;
  const remember = (role: WorkerRole, model: StepTimeModel, measured: boolean) => {
    resolved.set(role, model.name);
    if (!measured) calibrated = false;
    return model;
  };
  const named = (n: string) => {
    const m = cache.get(n) ?? getStepTimeModel(n);
    cache.set(n, m);
    return m;
  };
  const table = (group: WorkerGroup, role: WorkerRole) => {
    const e = group.engine;
    const key = `${role}:${JSON.stringify([variantOf(group), e.disable_overlap_scheduler, e.max_num_tokens])}`;
    let m = cache.get(key);
    if (!m) {
      const { options, variant } = applySetting(
        setting,
        {
          options: {
            host: { overhead: HOST_OVERHEAD.nominal, overlapScheduler: !e.disable_overlap_scheduler },
          },
          variant: variantOf(group),
          idleDummyTokens: role === "prefill" ? e.max_num_tokens : 0,
        },
        DSV32_GB200_DEP8,
      );
      m = createTableModel(DSV32_GB200_DEP8, variant, {
        ...options,
        name: `${DSV32_GB200_DEP8.name}/${role}${variant.moeBackend === "WIDEEP" ? "-wideep" : ""} (${settingLabel(setting)})`,
      });
      cache.set(key, m);
    }
    return m;
  };
  const forGroup: PerfModelFor =
    name === "auto" || name === "table"
      ? (group, role) => {
          if (matchesDsv32Profile(recipe, group)) return remember(role, table(group, role), true);
          if (name === "table") {
            throw new ServelabError(
              "USAGE",
              `the table step-time model has a measured profile for DeepSeek-V3.2 NVFP4 DEP8 on GB200 only; use --perf-model polynomial`,
            );
          }
          return remember(role, named("polynomial"), false);
        }
      : (_group, role) => {
          const model = named(name);
          return remember(role, model, name !== "polynomial");
        };
  return { forGroup, requested: name, setting, resolved, calibrated: () => calibrated };
}

/**
 * Resolves the model of every worker group of the recipe's arms without running anything: what `recipe validate`,
 * `sim` and `ab` say before a run (and warn about when it is uncalibrated).
 */
export function describePerfModels(
  name: string,
  recipe: Recipe,
  arms: readonly string[] = Object.keys(recipe.arms),
  setting: PerfSetting = NOMINAL,
): { calibrated: boolean; models: Record<string, Record<string, string>> } {
  const choice = perfModelChoice(name, recipe, setting);
  const models: Record<string, Record<string, string>> = {};
  for (const arm of arms) {
    const a = recipe.arms[arm];
    if (!a) continue;
    const groups = a.workers
      ? [["aggregated", a.workers] as const]
      : [["prefill", a.prefill!] as const, ["decode", a.decode!] as const];
    models[arm] = Object.fromEntries(groups.map(([role, g]) => [role, choice.forGroup(g, role).name]));
  }
  return { calibrated: choice.calibrated(), models };
}

/** The line `sim`, `ab` and `recipe validate` print when a model without a measured profile is in use. */
export function uncalibratedWarning(models: Record<string, Record<string, string>>): string {
  const uses = Object.entries(models)
    .flatMap(([arm, roles]) => Object.entries(roles).map(([role, m]) => `${arm}/${role}: ${m}`))
    .join("; ");
  return `warning: uncalibrated step-time model — no measured profile for this model and hardware, so step times come from the polynomial mocker model and the A/B figures are illustrative only (${uses})\n`;
}
