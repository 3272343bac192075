import { z } from "zod";
import { type Arm, armSchema, armWorkerGroups } from "./arm-schema.ts";
import { deploySchema } from "./deploy-schema.ts";
import { hardwareSchema, modelSchema } from "./model-schema.ts";
import { section, whenSectionValid } from "./section.ts";
import { benchmarkSchema, traceSchema } from "./workload-schema.ts";

/*
 * A recipe is one experiment as data: the model and cluster it runs on, the trace it replays, how the client
 * replays it, and the arms (serving configurations) being compared. Each part's schema lives in its own module;
 * this one adds the rules that tie parts together.
 */

/** Arm names become file names and report columns, and a dot would make YAML paths ambiguous. */
const ARM_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

const armsSchema = z
  .record(
    z.string().regex(ARM_NAME, {
      error: "arm names use letters, digits, '-' and '_', starting with a letter or digit",
    }),
    armSchema,
  )
  .refine((arms) => Object.keys(arms).length > 0, { error: "a recipe needs at least one arm" });

const recipeFields = section({
  name: z.string().min(1),
  description: z.string().optional(),
  model: modelSchema,
  hardware: hardwareSchema,
  trace: traceSchema,
  benchmark: benchmarkSchema,
  arms: armsSchema,
  /** Only `servelab deploy` reads it; omitted, the seed recipe's cluster settings apply. */
  deploy: deploySchema.optional(),
});

type RecipeFields = z.output<typeof recipeFields>;
type Issue = { path: (string | number)[]; message: string };

function clusterIssues(recipe: RecipeFields, armName: string, arm: Arm): Issue[] {
  const { hardware, model } = recipe;
  const issues: Issue[] = [];
  let gpus = 0;
  for (const { role, group } of armWorkerGroups(arm)) {
    const at = ["arms", armName, role];
    gpus += group.replicas * group.gpus_per_worker;
    const perNode = group.gpus_per_worker / group.nodes_per_worker;
    if (perNode > hardware.gpus_per_node) {
      issues.push({
        path: [...at, "nodes_per_worker"],
        message: `${group.gpus_per_worker} GPUs over ${group.nodes_per_worker} node(s) is ${perNode} per node, but a ${hardware.gpu} node has ${hardware.gpus_per_node}`,
      });
    }
    const ep = group.engine.moe_expert_parallel_size;
    const experts = model.architecture.n_routed_experts;
    if (experts > 0 && experts % ep !== 0) {
      issues.push({
        path: [...at, "engine", "moe_expert_parallel_size"],
        message: `${experts} routed experts cannot be split evenly over moe_expert_parallel_size ${ep}`,
      });
    }
    const dtype = group.engine.kv_cache_config.dtype;
    if (dtype !== "auto" && dtype !== model.quantization.kv_cache) {
      issues.push({
        path: [...at, "engine", "kv_cache_config", "dtype"],
        message: `the engine stores KV as ${dtype} but model.quantization.kv_cache is ${model.quantization.kv_cache}`,
      });
    }
  }
  if (gpus > hardware.total_gpus) {
    const breakdown = armWorkerGroups(arm)
      .map(({ role, group }) => `${role} ${group.replicas} × ${group.gpus_per_worker}`)
      .join(" + ");
    issues.push({
      path: ["arms", armName],
      message: `the arm needs ${gpus} GPUs (${breakdown}) but the hardware has ${hardware.total_gpus}`,
    });
  }
  return issues;
}

export const recipeSchema = recipeFields.superRefine((recipe, ctx) => {
  const issues: Issue[] = [];
  for (const [armName, arm] of Object.entries(recipe.arms)) {
    issues.push(...clusterIssues(recipe, armName, arm));
  }
  const synthesis = recipe.trace.synthesis;
  if (synthesis && synthesis.block_size !== recipe.benchmark.prompt_block_size) {
    issues.push({
      path: ["trace", "synthesis", "block_size"],
      message: `the trace's hash ids stand for ${synthesis.block_size}-token blocks but benchmark.prompt_block_size expands them to ${recipe.benchmark.prompt_block_size} tokens`,
    });
  }
  for (const issue of issues) ctx.addIssue({ code: "custom", ...issue });
}, whenSectionValid);

export type Recipe = z.output<typeof recipeSchema>;
export type RecipeInput = z.input<typeof recipeSchema>;

export type {
  Arm,
  DisaggregationMode,
  GroupRole,
  KvRouterConfig,
  Router,
  RouterMode,
  WorkerGroup,
} from "./arm-schema.ts";
export { armGpuCount, armWorkerGroups } from "./arm-schema.ts";
export type { DeployConfig, DynamoVersion, Toleration } from "./deploy-schema.ts";
export type { AllreduceStrategy, EngineConfig, EngineConfigInput, MoeBackend } from "./engine-schema.ts";
export type { HardwareConfig, ModelArchitecture, ModelConfig } from "./model-schema.ts";
export type {
  BenchmarkConfig,
  BenchmarkMode,
  GoodputMetric,
  SynthesisConfig,
  TraceConfig,
} from "./workload-schema.ts";
