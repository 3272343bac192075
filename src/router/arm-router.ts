import type { BlockHasher } from "../kv/block-hash.ts";
import type { Arm } from "../recipe/schema.ts";
import type { KvRouterOptions } from "./kv-router.ts";

/**
 * The router settings of a recipe arm (Dynamo's `KvRouterConfig` names), shared by the simulator and the live
 * frontend so both route with the same knobs. Policies that never read the active blocks (round-robin, random)
 * need not track them, as Dynamo's frontend does not.
 */
export function armRouterOptions(
  arm: Pick<Arm, "router">,
  blockSize: number,
  seed: number,
  hasher: BlockHasher,
  opts: { seqAddressedEvents: boolean },
): KvRouterOptions {
  const r = arm.router;
  const base = { blockSize, seed, hasher, seqAddressedEvents: opts.seqAddressedEvents };
  if (r.mode !== "kv") return { ...base, trackActiveBlocks: r.mode === "least-loaded" };
  return {
    ...base,
    overlapScoreWeight: r.overlap_score_weight,
    temperature: r.router_temperature,
    useKvEvents: r.use_kv_events,
    trackActiveBlocks: r.router_track_active_blocks,
    assumeKvReuse: r.router_assume_kv_reuse,
    approx: {
      ttlMs: r.router_ttl_secs * 1000,
      maxEntries: r.router_max_tree_size,
      pruneTargetRatio: r.router_prune_target_ratio,
    },
  };
}
