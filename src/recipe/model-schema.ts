import { z } from "zod";
import { positiveInt, section, whenSectionValid } from "./section.ts";

/** Weight formats the performance tables cover; names follow the checkpoint's quantization config. */
export const WEIGHT_FORMATS = ["nvfp4", "fp8", "bfloat16"] as const;
/** KV-cache element formats; `kv_cache_config.dtype` of every engine must agree with the model's. */
export const KV_CACHE_FORMATS = ["fp8", "bfloat16"] as const;

const quantizationSchema = section({
  weights: z.enum(WEIGHT_FORMATS),
  kv_cache: z.enum(KV_CACHE_FORMATS),
});

/** DeepSeek Sparse Attention's lightning indexer: it scores every cached token and keeps the top `index_topk`. */
const dsaIndexerSchema = section({
  index_n_heads: positiveInt(),
  index_head_dim: positiveInt(),
  index_topk: positiveInt(),
});

/**
 * The shape numbers a step-time model needs. Names follow the Hugging Face `config.json` of DeepSeek-V3 where one
 * exists, so a value can be checked against the checkpoint by eye; the dense/MoE split is spelled out because the
 * config only encodes it as `first_k_dense_replace`.
 */
const architectureSchema = section({
  num_hidden_layers: positiveInt(),
  num_dense_layers: z.int().min(0),
  num_moe_layers: z.int().min(0),
  hidden_size: positiveInt(),
  intermediate_size: positiveInt(),
  moe_intermediate_size: positiveInt(),
  n_routed_experts: z.int().min(0),
  n_shared_experts: z.int().min(0),
  num_experts_per_tok: z.int().min(0),
  num_attention_heads: positiveInt(),
  q_lora_rank: positiveInt(),
  kv_lora_rank: positiveInt(),
  qk_nope_head_dim: positiveInt(),
  qk_rope_head_dim: positiveInt(),
  v_head_dim: positiveInt(),
  vocab_size: positiveInt(),
  // Absent for models without sparse attention (DeepSeek-V3/R1).
  dsa_indexer: dsaIndexerSchema.optional(),
}).superRefine((a, ctx) => {
  if (a.num_dense_layers + a.num_moe_layers !== a.num_hidden_layers) {
    ctx.addIssue({
      code: "custom",
      path: ["num_moe_layers"],
      message: `num_dense_layers (${a.num_dense_layers}) + num_moe_layers (${a.num_moe_layers}) must equal num_hidden_layers (${a.num_hidden_layers})`,
    });
  }
  if (a.num_experts_per_tok > a.n_routed_experts) {
    ctx.addIssue({
      code: "custom",
      path: ["num_experts_per_tok"],
      message: `a token cannot be routed to ${a.num_experts_per_tok} of only ${a.n_routed_experts} routed experts`,
    });
  }
}, whenSectionValid);

export const modelSchema = section({
  /** The HF id or local directory the workers load (Dynamo `--model-path`). */
  model_path: z.string().min(1),
  /** The name clients send in `model`; Dynamo defaults it to the model path. */
  served_model_name: z.string().min(1).optional(),
  quantization: quantizationSchema,
  architecture: architectureSchema,
  num_parameters: positiveInt(),
  /** Parameters touched per token (shared + top-k routed experts + attention); drives GEMM FLOPs and weight reads. */
  num_active_parameters: positiveInt().optional(),
  /** KV-cache bytes one token occupies across all layers, in the engine's cache layout. */
  kv_cache_bytes_per_token: positiveInt(),
}).transform((m) => ({
  model_path: m.model_path,
  served_model_name: m.served_model_name ?? m.model_path,
  quantization: m.quantization,
  architecture: m.architecture,
  num_parameters: m.num_parameters,
  ...(m.num_active_parameters === undefined ? {} : { num_active_parameters: m.num_active_parameters }),
  kv_cache_bytes_per_token: m.kv_cache_bytes_per_token,
}));

const nvlinkSchema = section({
  /** Per GPU, per direction. */
  bandwidth_gb_per_s: z.number().positive(),
  /** GPUs that share one NVLink fabric; with MNNVL this spans trays (72 on a GB200 NVL72 rack). */
  domain_gpus: positiveInt(),
  /** Multi-node NVLink: nodes inside the domain talk over NVLink instead of the scale-out network. */
  mnnvl: z.boolean().default(false),
});

export const hardwareSchema = section({
  gpu: z.string().min(1),
  /** Capacity the engine sees (what nvidia-smi reports), not the marketing number: the KV pool is a fraction of it. */
  memory_per_gpu_gb: z.number().positive(),
  memory_bandwidth_tb_per_s: z.number().positive(),
  gpus_per_node: positiveInt(),
  nodes: positiveInt(),
  /** Optional; always `gpus_per_node × nodes`, written out so a reader need not multiply. */
  total_gpus: positiveInt().optional(),
  nvlink: nvlinkSchema,
  /** Per GPU, per direction, between NVLink domains (InfiniBand/RoCE). */
  scale_out_bandwidth_gb_per_s: z.number().positive(),
})
  .superRefine((h, ctx) => {
    const product = h.gpus_per_node * h.nodes;
    if (h.total_gpus !== undefined && h.total_gpus !== product) {
      ctx.addIssue({
        code: "custom",
        path: ["total_gpus"],
        message: `total_gpus (${h.total_gpus}) must equal gpus_per_node × nodes = ${h.gpus_per_node} × ${h.nodes} = ${product}`,
      });
    }
  }, whenSectionValid)
  .transform((h) => ({
    gpu: h.gpu,
    memory_per_gpu_gb: h.memory_per_gpu_gb,
    memory_bandwidth_tb_per_s: h.memory_bandwidth_tb_per_s,
    gpus_per_node: h.gpus_per_node,
    nodes: h.nodes,
    total_gpus: h.gpus_per_node * h.nodes,
    nvlink: h.nvlink,
    scale_out_bandwidth_gb_per_s: h.scale_out_bandwidth_gb_per_s,
  }));

export type ModelConfig = z.output<typeof modelSchema>;
export type ModelArchitecture = ModelConfig["architecture"];
export type HardwareConfig = z.output<typeof hardwareSchema>;
