import { z } from "zod";
import { nonNegativeInt, positiveInt, section, whenSectionValid } from "./section.ts";

/*
 * TensorRT-LLM engine knobs as Dynamo's TRT-LLM workers pass them (`--extra-engine-args <file>.yaml`): the key
 * names are TRT-LLM's LLM-API names so an engine block can be pasted from a Dynamo recipe ConfigMap unchanged.
 * Defaults are TRT-LLM's own (tensorrt_llm/llmapi/llm_args.py, 1.x), so an omitted knob means what it means there.
 */

export const MOE_BACKENDS = ["CUTLASS", "TRTLLM", "WIDEEP", "DEEPGEMM"] as const;

export const ALLREDUCE_STRATEGIES = [
  "AUTO",
  "NCCL",
  "NCCL_SYMMETRIC",
  "UB",
  "MINLATENCY",
  "ONESHOT",
  "TWOSHOT",
  "LOWPRECISION",
  "MNNVL",
] as const;

export const CACHE_TRANSCEIVER_BACKENDS = ["DEFAULT", "UCX", "NIXL", "MPI", "MOONCAKE"] as const;

/** `auto` takes the checkpoint's KV format (FP8 for nvidia/*-NVFP4 checkpoints). */
export const KV_CACHE_DTYPES = ["auto", "fp8", "bfloat16"] as const;

const moeConfigSchema = section({
  // CUTLASS is the 1.x default; later releases add an AUTO choice that resolves per model.
  backend: z.enum(MOE_BACKENDS).default("CUTLASS"),
  use_low_precision_moe_combine: z.boolean().default(false),
});

const cudaGraphConfigSchema = section({
  // 0 in TRT-LLM means "128"; the resolved value is written out so the recipe states what actually runs.
  max_batch_size: positiveInt().default(128),
  enable_padding: z.boolean().default(false),
});

const kvCacheConfigSchema = section({
  dtype: z.enum(KV_CACHE_DTYPES).default("auto"),
  enable_block_reuse: z.boolean().default(true),
  free_gpu_memory_fraction: z.number().gt(0).max(1).default(0.9),
  tokens_per_block: positiveInt().default(32),
  /** Cap on KV tokens per GPU; with the memory fraction, the smaller of the two applies (TRT-LLM semantics). */
  max_tokens: positiveInt().optional(),
});

/**
 * `attention_dp_config` (TRT-LLM `AttentionDpConfig`, llm_args.py): ADP balance holds context work until every
 * attention-DP rank has some (up to `timeout_iters` iterations), then lets it gather for up to
 * `batching_wait_iters` more while every rank decodes, so all ranks prefill in the same iterations (TRT-LLM tech
 * blog 10). Defaults are TRT-LLM's; balance is off unless enabled.
 */
const attentionDpConfigSchema = section({
  enable_balance: z.boolean().default(false),
  timeout_iters: nonNegativeInt().default(50),
  batching_wait_iters: nonNegativeInt().default(10),
});

const cacheTransceiverConfigSchema = section({
  backend: z.enum(CACHE_TRANSCEIVER_BACKENDS).default("DEFAULT"),
  max_tokens_in_buffer: positiveInt().optional(),
});

const engineFields = section({
  tensor_parallel_size: positiveInt().default(1),
  enable_attention_dp: z.boolean().default(false),
  attention_dp_config: attentionDpConfigSchema.prefault({}),
  // Omitted: with attention DP, experts spread over every rank (DEP); without it, MoE is tensor-parallel.
  moe_expert_parallel_size: positiveInt().optional(),
  moe_config: moeConfigSchema.prefault({}),
  // With attention DP both batch limits apply per DP rank, not per worker.
  max_batch_size: positiveInt().default(2048),
  // `null` turns CUDA graphs off; TRT-LLM captures them by default.
  cuda_graph_config: cudaGraphConfigSchema.nullable().prefault({}),
  max_num_tokens: positiveInt().default(8192),
  // Omitted: the model's maximum context.
  max_seq_len: positiveInt().optional(),
  enable_chunked_prefill: z.boolean().default(false),
  disable_overlap_scheduler: z.boolean().default(false),
  kv_cache_config: kvCacheConfigSchema.prefault({}),
  allreduce_strategy: z.enum(ALLREDUCE_STRATEGIES).default("AUTO"),
  // Only disaggregated workers move KV; omitted means TRT-LLM's unset (None) config.
  cache_transceiver_config: cacheTransceiverConfigSchema.optional(),
  num_postprocess_workers: nonNegativeInt().default(0),
  stream_interval: positiveInt().default(1),
  print_iter_log: z.boolean().default(false),
  /** TensorRT-LLM options kept as written but not modelled (see TRTLLM_NOT_MODELLED_KEYS). */
  not_modelled: z.record(z.string(), z.unknown()).optional(),
});

/**
 * TensorRT-LLM `LlmArgs` options (tensorrt_llm/llmapi/llm_args.py, the PyTorch backend's) that servelab does not
 * model. A recipe copied from a Dynamo deployment may set them: they are kept (under `not_modelled`, and in the
 * resolved recipe) and reported by `recipe validate`, instead of failing the recipe the way a misspelt key does.
 */
export const TRTLLM_NOT_MODELLED_KEYS = [
  "backend",
  "trust_remote_code",
  "skip_tokenizer_init",
  "tokenizer_mode",
  "dtype",
  "revision",
  "load_format",
  "pipeline_parallel_size",
  "context_parallel_size",
  "gpus_per_node",
  "moe_tensor_parallel_size",
  "moe_cluster_parallel_size",
  "enable_lm_head_tp_in_adp",
  "max_input_len",
  "max_beam_width",
  "speculative_config",
  "scheduler_config",
  "peft_cache_config",
  "lora_config",
  "enable_lora",
  "guided_decoding_backend",
  "reasoning_parser",
  "sampler_type",
  "attn_backend",
  "enable_iter_perf_stats",
  "enable_iter_req_stats",
  "return_perf_metrics",
  "iter_stats_max_iterations",
  "request_stats_max_iterations",
  "torch_compile_config",
  "enable_autotuner",
  "enable_layerwise_nvtx_marker",
  "enable_min_latency",
  "force_dynamic_quantization",
  "garbage_collection_gen0_threshold",
  "batch_wait_timeout_ms",
  "batch_wait_timeout_iters",
  "batch_wait_max_tokens_ratio",
  "kv_connector_config",
  "checkpoint_format",
  "gather_generation_logits",
  "postprocess_tokenizer_dir",
] as const;

/** The engine block with the unmodelled TensorRT-LLM options moved under `not_modelled`. */
function setAside(raw: unknown): unknown {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return raw;
  const kept: Record<string, unknown> = {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    if ((TRTLLM_NOT_MODELLED_KEYS as readonly string[]).includes(k)) kept[k] = v;
    else out[k] = v;
  }
  if (Object.keys(kept).length > 0) out.not_modelled = { ...((out.not_modelled as object) ?? {}), ...kept };
  return out;
}

const engineObject = z.preprocess(setAside, engineFields);

export const engineSchema = engineObject
  .transform((e) => ({
    tensor_parallel_size: e.tensor_parallel_size,
    enable_attention_dp: e.enable_attention_dp,
    attention_dp_config: e.attention_dp_config,
    moe_expert_parallel_size:
      e.moe_expert_parallel_size ?? (e.enable_attention_dp ? e.tensor_parallel_size : 1),
    moe_config: e.moe_config,
    max_batch_size: e.max_batch_size,
    cuda_graph_config: e.cuda_graph_config,
    max_num_tokens: e.max_num_tokens,
    ...(e.max_seq_len === undefined ? {} : { max_seq_len: e.max_seq_len }),
    enable_chunked_prefill: e.enable_chunked_prefill,
    disable_overlap_scheduler: e.disable_overlap_scheduler,
    kv_cache_config: e.kv_cache_config,
    allreduce_strategy: e.allreduce_strategy,
    ...(e.cache_transceiver_config === undefined
      ? {}
      : { cache_transceiver_config: e.cache_transceiver_config }),
    num_postprocess_workers: e.num_postprocess_workers,
    stream_interval: e.stream_interval,
    print_iter_log: e.print_iter_log,
    ...(e.not_modelled === undefined ? {} : { not_modelled: e.not_modelled }),
  }))
  .superRefine((e, ctx) => {
    const tp = e.tensor_parallel_size;
    const ep = e.moe_expert_parallel_size;
    if (e.enable_attention_dp && ep !== tp) {
      ctx.addIssue({
        code: "custom",
        path: ["moe_expert_parallel_size"],
        message: `enable_attention_dp (DEP) spreads experts over all ${tp} ranks, so moe_expert_parallel_size must equal tensor_parallel_size (${tp}), not ${ep}`,
      });
    } else if (tp % ep !== 0) {
      ctx.addIssue({
        code: "custom",
        path: ["moe_expert_parallel_size"],
        message: `moe_expert_parallel_size (${ep}) must divide tensor_parallel_size (${tp}): MoE ranks are split into expert groups × MoE tensor-parallel shards`,
      });
    }
  }, whenSectionValid);

export type EngineConfig = z.output<typeof engineSchema>;
export type EngineConfigInput = z.input<typeof engineSchema>;
export type MoeBackend = (typeof MOE_BACKENDS)[number];
export type AllreduceStrategy = (typeof ALLREDUCE_STRATEGIES)[number];
