import { ServelabError } from "../../errors.ts";
import type { GroupRole } from "../../recipe/arm-schema.ts";
import { pickArm } from "../../recipe/pick-arm.ts";
import type { Recipe } from "../../recipe/schema.ts";

/** One worker process of the stack. */
export interface PlannedWorker {
  id: string;
  /** The arm's worker group the process serves. */
  group: GroupRole;
  role: "aggregated" | "prefill" | "decode";
  dpSize: number;
  /** Publishes KV events (the arm's KV router listens and the group publishes). */
  kvEvents: boolean;
}

export interface StackPlan {
  recipe: string;
  arm: string;
  model: string;
  blockSize: number;
  workers: PlannedWorker[];
  /** What `--scale` changed, one line per group ("workers: 4 → 1 replicas, 8 → 2 DP ranks"); empty at scale 1. */
  scaling: string[];
}

const ROLE = { workers: "aggregated", prefill: "prefill", decode: "decode" } as const;

/** `n × scale`, rounded, at least 1: a scaled-down stack keeps every group. */
export function scaled(n: number, scale: number): number {
  return Math.max(1, Math.round(n * scale));
}

/**
 * The processes `servelab up` starts for one arm: one per worker replica, each with the group's attention-DP
 * ranks, shrunk by `scale` for small machines (replicas and ranks each multiplied and rounded, never below one),
 * plus the frontend. Pure: the runner spawns what this lists.
 */
export function planStack(recipe: Recipe, armName: string | undefined, scale = 1): StackPlan {
  if (!(Number.isFinite(scale) && scale > 0 && scale <= 1))
    throw new ServelabError("USAGE", `--scale must be in (0, 1], got ${scale}`);
  const { name, arm } = pickArm(recipe, armName);
  const groups: GroupRole[] = arm.workers ? ["workers"] : ["prefill", "decode"];
  const listens = arm.router.mode === "kv" && arm.router.use_kv_events;
  const workers: PlannedWorker[] = [];
  const scaling: string[] = [];
  let blockSize = 0;
  for (const g of groups) {
    const group = arm[g]!;
    blockSize ||= group.kv_block_size;
    const dp = group.engine.enable_attention_dp ? group.engine.tensor_parallel_size : 1;
    const replicas = scaled(group.replicas, scale);
    const dpSize = scaled(dp, scale);
    if (replicas !== group.replicas || dpSize !== dp)
      scaling.push(`${g}: ${group.replicas} → ${replicas} replicas, ${dp} → ${dpSize} DP ranks each`);
    const role = ROLE[g];
    // Dynamo's prefill router scores prefill workers only; decode workers' events would feed nothing.
    const kvEvents = listens && group.publish_events_and_metrics && role !== "decode";
    for (let i = 0; i < replicas; i++) {
      workers.push({ id: `${role === "aggregated" ? "agg" : role}-${i}`, group: g, role, dpSize, kvEvents });
    }
  }
  return {
    recipe: recipe.name,
    arm: name,
    model: recipe.model.served_model_name,
    blockSize,
    workers,
    scaling,
  };
}
