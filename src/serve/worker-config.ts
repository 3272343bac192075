import { engineSettingsFor } from "../engine/engine-settings.ts";
import type { EngineSettings, WorkerRole } from "../engine/engine-worker.ts";
import { getStepTimeModel } from "../engine/perf/registry.ts";
import type { StepTimeModel } from "../engine/perf-model.ts";
import { perfModelChoice } from "../engine/perf-models.ts";
import { ServelabError } from "../errors.ts";
import type { GroupRole, Recipe } from "../recipe/schema.ts";

export const WORKER_GROUPS = ["workers", "prefill", "decode"] as const satisfies readonly GroupRole[];

/** The mock engine's settings without a recipe: Dynamo mocker's defaults (dynamo-spec §3.1). */
export const MOCKER_DEFAULTS = {
  servedModel: "servelab-mock",
  dpSize: 1,
  engine: {
    maxBatchSize: 256,
    maxNumTokens: 8192,
    chunkedPrefill: true,
    blockSize: 64,
    prefixCaching: true,
    kvCapacityBlocks: 16384,
    watermark: 0.01,
  },
} as const satisfies { servedModel: string; dpSize: number; engine: EngineSettings };

/** The simulator's admission watermark, kept so a recipe's worker behaves as it does in `servelab sim`. */

/** Command-line choices; each one set overrides what the recipe says. */
export interface WorkerConfigFlags {
  arm?: string;
  group?: GroupRole;
  model?: string;
  perfModel?: string;
  dpSize?: number;
  maxBatchSize?: number;
  maxNumTokens?: number;
  kvBlocks?: number;
  blockSize?: number;
  prefixCaching?: boolean;
  chunkedPrefill?: boolean;
}

export interface WorkerConfig {
  servedModel: string;
  dpSize: number;
  engine: EngineSettings;
  stepModel: StepTimeModel;
  /** Where the settings came from, for the startup line. */
  source: string;
}

const usage = (message: string) => new ServelabError("USAGE", message);

/**
 * Prices one small step on every rank, so a model that cannot run this worker (a measured profile has a fixed
 * number of DP ranks) is refused at startup rather than failing the first request.
 */
function checkStepModel(model: StepTimeModel, dpSize: number): StepTimeModel {
  const work = Array.from({ length: dpSize }, () => ({
    prefill: [{ tokens: 64, pastTokens: 0 }],
    decode: [{ contextTokens: 64 }],
    kvUsage: 0.01,
  }));
  let ms: number;
  try {
    ms = model.stepMs(work);
  } catch (e) {
    throw usage(`the ${model.name} step-time model cannot run ${dpSize} DP ranks: ${(e as Error).message}`);
  }
  if (!(ms >= 0 && Number.isFinite(ms)))
    throw usage(`the ${model.name} step-time model priced a step at ${ms} ms`);
  return model;
}

/** Engine settings with the worker's command-line flags laid over them. */
function withEngineFlags(base: EngineSettings, flags: WorkerConfigFlags): EngineSettings {
  return {
    ...base,
    maxBatchSize: flags.maxBatchSize ?? base.maxBatchSize,
    maxNumTokens: flags.maxNumTokens ?? base.maxNumTokens,
    chunkedPrefill: flags.chunkedPrefill ?? base.chunkedPrefill,
    blockSize: flags.blockSize ?? base.blockSize,
    prefixCaching: flags.prefixCaching ?? base.prefixCaching,
    kvCapacityBlocks: flags.kvBlocks ?? base.kvCapacityBlocks,
  };
}

/**
 * The engine one mock worker runs: a recipe arm's worker group (`--recipe --arm [--group]`) or Dynamo mocker's
 * defaults, with any flag overriding either. The engine always serves whole requests (aggregated); `--group`
 * only picks whose engine configuration and step-time profile it takes.
 */
export function resolveWorkerConfig(flags: WorkerConfigFlags, recipe?: Recipe): WorkerConfig {
  if (!recipe) {
    if (flags.arm !== undefined) throw usage("--arm needs --recipe");
    if (flags.group !== undefined) throw usage("--group needs --recipe");
    const name = flags.perfModel ?? "polynomial";
    if (name === "table")
      throw usage("--perf-model table needs a --recipe to pick the measured profile; name a model instead");
    const d = MOCKER_DEFAULTS.engine;
    return {
      servedModel: flags.model ?? MOCKER_DEFAULTS.servedModel,
      dpSize: flags.dpSize ?? MOCKER_DEFAULTS.dpSize,
      engine: withEngineFlags(d, flags),
      stepModel: checkStepModel(
        getStepTimeModel(name === "auto" ? "polynomial" : name),
        flags.dpSize ?? MOCKER_DEFAULTS.dpSize,
      ),
      source: "Dynamo mocker defaults",
    };
  }

  const armNames = Object.keys(recipe.arms);
  const armName = flags.arm ?? (armNames.length === 1 ? armNames[0]! : undefined);
  if (armName === undefined)
    throw usage(
      `recipe ${recipe.name} has ${armNames.length} arms; pick one with --arm (${armNames.join(", ")})`,
    );
  const arm = recipe.arms[armName];
  if (!arm) throw usage(`recipe ${recipe.name} has no arm "${armName}"; arms: ${armNames.join(", ")}`);
  const present = WORKER_GROUPS.filter((g) => arm[g] !== undefined);
  const groupName = flags.group ?? (arm.workers ? "workers" : undefined);
  if (groupName === undefined)
    throw usage(
      `arm ${armName} is disaggregated; pick its worker group with --group (${present.join(", ")})`,
    );
  const group = arm[groupName];
  if (!group) throw usage(`arm ${armName} has no ${groupName} group; it has: ${present.join(", ")}`);

  const e = group.engine;
  const role: WorkerRole = groupName === "workers" ? "aggregated" : groupName;
  const dpSize = flags.dpSize ?? (e.enable_attention_dp ? e.tensor_parallel_size : 1);
  const base = engineSettingsFor(recipe, group);
  return {
    servedModel: flags.model ?? recipe.model.served_model_name,
    dpSize,
    engine: withEngineFlags(base, flags),
    stepModel: checkStepModel(
      perfModelChoice(flags.perfModel ?? "auto", recipe).forGroup(group, role),
      dpSize,
    ),
    source: `recipe ${recipe.name}, arm ${armName}, group ${groupName}`,
  };
}
