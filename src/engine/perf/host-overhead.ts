import type { RankWork } from "../perf-model.ts";

/**
 * CPU time of one TensorRT-LLM executor iteration on one rank: Python scheduling, KV bookkeeping, input
 * preparation, sampling, stop checks and responses (`PyExecutor._executor_loop`). With `disable_overlap_scheduler`
 * it runs between GPU steps, so it adds to every iteration; with the overlap scheduler it runs while the GPU works
 * and only what exceeds the GPU step shows. No source gives it for DeepSeek-V3.2 DEP8, so it is assembled from
 * measured component costs (docs/calibration.md, "Host time per iteration") and carries a range.
 */
export interface HostOverhead {
  /** Fixed per iteration: the loop itself, scheduler, KV-manager prepare/update, ADP host collectives. */
  fixedMs: number;
  /** Per decoding request: sampler update, stop checks, the response. */
  perDecodeMs: number;
  /** Per prefill chunk: request setup, block allocation, the first-token response. */
  perChunkMs: number;
  /** Per prefill token: input preparation and its host-to-device copy. */
  perPrefillTokenMs: number;
  /** Model-specific metadata built on the host each iteration (sparse-attention tables). */
  metadataMs: number;
}

/** One rank's host time for its share of an iteration. */
export function rankHostMs(h: HostOverhead, r: RankWork): number {
  let tokens = 0;
  let chunks = 0;
  for (const c of r.prefill)
    if (c.tokens > 0) {
      chunks++;
      tokens += c.tokens;
    }
  return (
    h.fixedMs +
    h.metadataMs +
    h.perDecodeMs * r.decode.length +
    h.perChunkMs * chunks +
    h.perPrefillTokenMs * tokens
  );
}
