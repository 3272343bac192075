import type { Recipe, WorkerGroup } from "../recipe/schema.ts";
import type { EngineSettings } from "./engine-worker.ts";
import { kvCapacityBlocks } from "./kv-capacity.ts";

/** KV kept free at admission (Dynamo mocker's watermark: TRT-LLM documents none, so the mocker's stands). */
export const ENGINE_WATERMARK = 0.01;

/**
 * The engine knobs of a recipe's worker group, as the simulated and the live worker both run them. ADP balance
 * applies only where there are attention-DP ranks to balance.
 */
export function engineSettingsFor(recipe: Recipe, group: WorkerGroup): EngineSettings {
  const e = group.engine;
  const dp = e.enable_attention_dp ? e.tensor_parallel_size : 1;
  const balance = e.attention_dp_config;
  return {
    maxBatchSize: e.max_batch_size,
    maxNumTokens: e.max_num_tokens,
    chunkedPrefill: e.enable_chunked_prefill,
    blockSize: e.kv_cache_config.tokens_per_block,
    prefixCaching: e.kv_cache_config.enable_block_reuse,
    kvCapacityBlocks: kvCapacityBlocks(recipe, group),
    watermark: ENGINE_WATERMARK,
    ...(balance.enable_balance && dp > 1
      ? {
          adpBalance: { timeoutIters: balance.timeout_iters, batchingWaitIters: balance.batching_wait_iters },
        }
      : {}),
  };
}
