import { z } from "zod";
import { engineSchema } from "./engine-schema.ts";
import { positiveInt, section, whenSectionValid } from "./section.ts";

/*
 * One arm of an A/B experiment: how the frontend routes (`python3 -m dynamo.frontend --router-mode ...`) and which
 * TRT-LLM workers it routes to (`python3 -m dynamo.trtllm ...`).
 */

export const ROUTER_MODES = ["round-robin", "random", "least-loaded", "kv"] as const;
export const QUEUE_POLICIES = ["fcfs", "wspt"] as const;

/**
 * Dynamo's KV router knobs under their `KvRouterConfig` names, with its defaults (dynamo-spec §2.9). The frontend of
 * the founding recipe passes none of them, so these defaults are what ran there.
 */
const kvRouterSchema = section({
  mode: z.literal("kv"),
  // Cost = overlap_score_weight × uncached prefill blocks + active decode blocks; lowest wins.
  overlap_score_weight: z.number().min(0).default(1),
  // 0 picks the cheapest worker deterministically; above 0, softmax sampling over negated costs.
  router_temperature: z.number().min(0).default(0),
  // Off: the router predicts cache contents from its own routing decisions (approximate mode, TTL-pruned).
  use_kv_events: z.boolean().default(true),
  router_replica_sync: z.boolean().default(false),
  router_track_active_blocks: z.boolean().default(true),
  router_track_output_blocks: z.boolean().default(false),
  router_assume_kv_reuse: z.boolean().default(true),
  router_snapshot_threshold: positiveInt().default(1_000_000),
  router_reset_states: z.boolean().default(false),
  // The next three only govern approximate mode's predicted cache.
  router_ttl_secs: z.number().positive().default(120),
  router_max_tree_size: positiveInt().default(2 ** 20),
  router_prune_target_ratio: z.number().gt(0).max(1).default(0.8),
  // Requests wait in the router once every worker's load exceeds this multiple of its batch budget; null: no queue.
  router_queue_threshold: z.number().positive().nullable().default(2),
  router_queue_policy: z.enum(QUEUE_POLICIES).default("fcfs"),
  router_event_threads: positiveInt().default(4),
});

// Load-blind or load-only policies carry no knobs, so any extra key is a mistake (e.g. a KV knob under round-robin).
const plainRouterSchema = (mode: "round-robin" | "random" | "least-loaded") =>
  section({ mode: z.literal(mode) });

export const routerSchema = z.discriminatedUnion(
  "mode",
  [
    plainRouterSchema("round-robin"),
    plainRouterSchema("random"),
    plainRouterSchema("least-loaded"),
    kvRouterSchema,
  ],
  {
    error: (issue) =>
      issue.code === "invalid_union" ? `must be one of: ${ROUTER_MODES.join(", ")}` : undefined,
  },
);

/** Dynamo's `--disaggregation-mode` values; which one a group runs is fixed by where it sits in the arm. */
export const DISAGGREGATION_MODES = ["prefill_and_decode", "prefill", "decode"] as const;
export type DisaggregationMode = (typeof DISAGGREGATION_MODES)[number];

const workerGroupFields = section({
  replicas: positiveInt().default(1),
  gpus_per_worker: positiveInt().default(1),
  // A worker wider than one node spans nodes (Dynamo `multinode.nodeCount`), each node contributing equal GPUs.
  nodes_per_worker: positiveInt().default(1),
  // Dynamo `--kv-block-size` (default 32): the block size the router hashes prompts with.
  kv_block_size: positiveInt().default(32),
  // Dynamo `--publish-events-and-metrics`: without it a KV router that listens for events never hears any.
  publish_events_and_metrics: z.boolean().default(false),
  // Implied by the group's place in the arm; may be written out, but must then agree.
  disaggregation_mode: z.enum(DISAGGREGATION_MODES).optional(),
  engine: engineSchema.prefault({}),
}).superRefine((g, ctx) => {
  const engine = g.engine;
  if (g.kv_block_size !== engine.kv_cache_config.tokens_per_block) {
    ctx.addIssue({
      code: "custom",
      path: ["kv_block_size"],
      message: `kv_block_size (${g.kv_block_size}) must equal engine.kv_cache_config.tokens_per_block (${engine.kv_cache_config.tokens_per_block}): the router hashes the blocks the engine caches`,
    });
  }
  if (g.gpus_per_worker !== engine.tensor_parallel_size) {
    ctx.addIssue({
      code: "custom",
      path: ["gpus_per_worker"],
      message: `gpus_per_worker (${g.gpus_per_worker}) must equal engine.tensor_parallel_size (${engine.tensor_parallel_size}): a worker is one tensor-parallel engine`,
    });
  }
  if (g.gpus_per_worker % g.nodes_per_worker !== 0) {
    ctx.addIssue({
      code: "custom",
      path: ["nodes_per_worker"],
      message: `gpus_per_worker (${g.gpus_per_worker}) must split evenly over nodes_per_worker (${g.nodes_per_worker})`,
    });
  }
}, whenSectionValid);

type WorkerGroupFields = z.output<typeof workerGroupFields>;

const GROUP_MODE = { workers: "prefill_and_decode", prefill: "prefill", decode: "decode" } as const;
export type GroupRole = keyof typeof GROUP_MODE;

function resolveGroup(g: WorkerGroupFields, role: GroupRole) {
  return {
    replicas: g.replicas,
    gpus_per_worker: g.gpus_per_worker,
    nodes_per_worker: g.nodes_per_worker,
    kv_block_size: g.kv_block_size,
    publish_events_and_metrics: g.publish_events_and_metrics,
    disaggregation_mode: GROUP_MODE[role] as DisaggregationMode,
    engine: g.engine,
  };
}

export const armSchema = section({
  description: z.string().optional(),
  router: routerSchema.prefault({ mode: "round-robin" }),
  /** Aggregated serving: every worker runs prefill and decode. */
  workers: workerGroupFields.optional(),
  /** Disaggregated serving: prefill workers hand the KV cache to decode workers. */
  prefill: workerGroupFields.optional(),
  decode: workerGroupFields.optional(),
})
  .superRefine((arm, ctx) => {
    const disaggregated = arm.prefill !== undefined || arm.decode !== undefined;
    if (arm.workers !== undefined && disaggregated) {
      ctx.addIssue({
        code: "custom",
        path: [arm.prefill !== undefined ? "prefill" : "decode"],
        message: "an arm is either aggregated (workers) or disaggregated (prefill + decode), not both",
      });
      return;
    }
    if (!disaggregated && arm.workers === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["workers"],
        message:
          "missing: an arm needs aggregated `workers` or disaggregated `prefill` + `decode` worker groups",
      });
      return;
    }
    for (const role of ["prefill", "decode"] as const) {
      if (disaggregated && arm[role] === undefined) {
        const other = role === "prefill" ? "decode" : "prefill";
        ctx.addIssue({
          code: "custom",
          path: [role],
          message: `missing: a disaggregated arm needs both prefill and decode groups; only ${other} is given`,
        });
      }
    }
    for (const role of ["workers", "prefill", "decode"] as const) {
      const declared = arm[role]?.disaggregation_mode;
      if (declared !== undefined && declared !== GROUP_MODE[role]) {
        ctx.addIssue({
          code: "custom",
          path: [role, "disaggregation_mode"],
          message: `the ${role} group runs as "${GROUP_MODE[role]}", not "${declared}"`,
        });
      }
    }
    const prefillLink = arm.prefill?.engine.cache_transceiver_config;
    const decodeLink = arm.decode?.engine.cache_transceiver_config;
    if (prefillLink && decodeLink && prefillLink.backend !== decodeLink.backend) {
      ctx.addIssue({
        code: "custom",
        path: ["decode", "engine", "cache_transceiver_config", "backend"],
        message: `prefill sends KV over ${prefillLink.backend} but decode receives over ${decodeLink.backend}; both ends must use one backend`,
      });
    }
    if (arm.router.mode === "kv" && arm.router.use_kv_events) {
      // Only the groups the KV router scores by prefix overlap need to publish: in a disaggregated arm, decode is
      // chosen by load alone.
      const routed = arm.workers !== undefined ? "workers" : "prefill";
      if (arm[routed] && !arm[routed].publish_events_and_metrics) {
        ctx.addIssue({
          code: "custom",
          path: [routed, "publish_events_and_metrics"],
          message: `the KV router listens for KV events (router.use_kv_events), so the ${routed} group must publish them`,
        });
      }
    }
  }, whenSectionValid)
  .transform((arm) => ({
    ...(arm.description === undefined ? {} : { description: arm.description }),
    router: arm.router,
    ...(arm.workers === undefined ? {} : { workers: resolveGroup(arm.workers, "workers") }),
    ...(arm.prefill === undefined ? {} : { prefill: resolveGroup(arm.prefill, "prefill") }),
    ...(arm.decode === undefined ? {} : { decode: resolveGroup(arm.decode, "decode") }),
  }));

export type Router = z.output<typeof routerSchema>;
export type KvRouterConfig = Extract<Router, { mode: "kv" }>;
export type RouterMode = (typeof ROUTER_MODES)[number];
export type Arm = z.output<typeof armSchema>;
export type WorkerGroup = ReturnType<typeof resolveGroup>;

/** The worker groups of an arm with their roles, aggregated first then prefill, decode. */
export function armWorkerGroups(arm: Arm): { role: GroupRole; group: WorkerGroup }[] {
  const groups: { role: GroupRole; group: WorkerGroup }[] = [];
  for (const role of ["workers", "prefill", "decode"] as const) {
    const group = arm[role];
    if (group) groups.push({ role, group });
  }
  return groups;
}

/** GPUs an arm occupies: every replica of every group. */
export function armGpuCount(arm: Arm): number {
  return armWorkerGroups(arm).reduce((sum, { group }) => sum + group.replicas * group.gpus_per_worker, 0);
}
