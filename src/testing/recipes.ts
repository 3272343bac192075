import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { REPO_ROOT, writeLines } from "./fixtures.ts";
import { randomTrace } from "./random-trace.ts";

/** The founding A/B recipe shipped in the repository. */
export const FOUNDING_RECIPE = join(REPO_ROOT, "recipes/dsv32-wideep-routing.yaml");

/** The smallest valid recipe: only what has no default. */
export const TINY_RECIPE = `name: tiny
model:
  model_path: org/tiny
  quantization: { weights: fp8, kv_cache: fp8 }
  architecture:
    num_hidden_layers: 4
    num_dense_layers: 1
    num_moe_layers: 3
    hidden_size: 256
    intermediate_size: 1024
    moe_intermediate_size: 128
    n_routed_experts: 8
    n_shared_experts: 1
    num_experts_per_tok: 2
    num_attention_heads: 4
    q_lora_rank: 64
    kv_lora_rank: 32
    qk_nope_head_dim: 16
    qk_rope_head_dim: 8
    v_head_dim: 16
    vocab_size: 1000
  num_parameters: 1000000
  kv_cache_bytes_per_token: 1000
hardware: { gpu: GB200, memory_per_gpu_gb: 192, memory_bandwidth_tb_per_s: 8, gpus_per_node: 4, nodes: 2, nvlink: { bandwidth_gb_per_s: 900, domain_gpus: 72 }, scale_out_bandwidth_gb_per_s: 100 }
trace:
  source: mooncake/conversation
arms:
  only:
    workers:
      replicas: 2
`;

/** 1-based line of the first line containing `needle`, to assert error positions without hard-coding them. */
export function lineOf(text: string, needle: string, from = 0): number {
  const at = text.indexOf(needle, from);
  if (at < 0) throw new Error(`fixture has no ${JSON.stringify(needle)}`);
  return text.slice(0, at).split("\n").length;
}

/** Writes the tiny recipe, replaying `requests` random requests (seed `seed`) from `trace.jsonl` beside it, into `dir`. */
export async function writeTinyRecipe(dir: string, seed: number, requests: number): Promise<string> {
  const recipe = join(dir, "tiny.yaml");
  await writeFile(recipe, TINY_RECIPE.replace("  source: mooncake/conversation", "  source: trace.jsonl"));
  await writeLines(dir, "trace.jsonl", randomTrace(seed, requests));
  return recipe;
}
