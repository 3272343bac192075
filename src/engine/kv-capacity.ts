import { ServelabError } from "../errors.ts";
import type { Recipe, WorkerGroup } from "../recipe/schema.ts";

/** NVFP4 weights: 4-bit values plus one FP8 scale per 16 (simulation-anchors §3.4: ≈ 0.5625 bytes/param). */
const NVFP4_BYTES_PER_PARAM = 0.5625;
/**
 * Attention, dense and shared-expert weights stay in BF16/FP8 and are replicated on every attention-DP rank:
 * simulation-anchors §3.4 puts them at 20–25 GB per GPU for ~17B params; 22.5 GB / 17B ≈ 1.32 bytes/param.
 */
const NON_EXPERT_BYTES_PER_PARAM = 22.5 / 17;

/**
 * KV blocks per attention-DP rank: GPU memory minus the weights the rank holds, times TRT-LLM's
 * `free_gpu_memory_fraction`, over the bytes one block of KV takes. An estimate (activation workspace is not
 * modelled); for the founding recipe it gives about 2.7 M tokens per GPU, near simulation-anchors §3.4's ~2 M.
 */
export function kvCapacityBlocks(recipe: Recipe, group: WorkerGroup): number {
  const a = recipe.model.architecture;
  const e = group.engine;
  const routed = a.num_moe_layers * a.n_routed_experts * 3 * a.hidden_size * a.moe_intermediate_size;
  const nonExpert = Math.max(recipe.model.num_parameters - routed, 0);
  const ep = Math.max(e.moe_expert_parallel_size, 1);
  const tp = e.enable_attention_dp ? 1 : e.tensor_parallel_size;
  const weightBytes = (routed * NVFP4_BYTES_PER_PARAM) / ep + (nonExpert * NON_EXPERT_BYTES_PER_PARAM) / tp;
  const free =
    (recipe.hardware.memory_per_gpu_gb * 1e9 - weightBytes) * e.kv_cache_config.free_gpu_memory_fraction;
  if (!(free > 0))
    throw new ServelabError(
      "RECIPE_INVALID",
      `${recipe.name}: the weights a GPU holds (${(weightBytes / 1e9).toFixed(1)} GB) leave no memory for KV cache in hardware.memory_per_gpu_gb ${recipe.hardware.memory_per_gpu_gb} GB`,
    );
  // Without attention DP one sequence's KV is split over the tensor-parallel GPUs, so a rank pools their memory.
  const bytesPerToken = recipe.model.kv_cache_bytes_per_token / tp;
  let tokens = Math.max(free / bytesPerToken, 0);
  if (e.kv_cache_config.max_tokens !== undefined)
    tokens = Math.min(tokens, e.kv_cache_config.max_tokens * tp);
  return Math.max(Math.floor(tokens / e.kv_cache_config.tokens_per_block), 1);
}
