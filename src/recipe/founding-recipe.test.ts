import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, it } from "node:test";
import { FOUNDING_RECIPE } from "../testing/recipes.ts";
import {
  loadRecipe,
  parseRecipe,
  recipeSynthesisOptions,
  resolvedRecipeJson,
  resolvedRecipeYaml,
} from "./load.ts";
import { armGpuCount } from "./schema.ts";

// Every number here is the one dynamo-spec.md §1 and simulation-anchors.md §3 give for the published recipe.
describe("the founding recipe (dsv32-wideep-routing)", async () => {
  const recipe = await loadRecipe(FOUNDING_RECIPE);

  it("describes DeepSeek-V3.2 NVFP4 with FP8 KV", () => {
    assert.equal(recipe.model.model_path, "nvidia/DeepSeek-V3.2-NVFP4");
    assert.equal(recipe.model.served_model_name, "nvidia/DeepSeek-V3.2-NVFP4");
    assert.deepEqual(recipe.model.quantization, { weights: "nvfp4", kv_cache: "fp8" });
    assert.deepEqual(recipe.model.architecture, {
      num_hidden_layers: 61,
      num_dense_layers: 3,
      num_moe_layers: 58,
      hidden_size: 7168,
      intermediate_size: 18432,
      moe_intermediate_size: 2048,
      n_routed_experts: 256,
      n_shared_experts: 1,
      num_experts_per_tok: 8,
      num_attention_heads: 128,
      q_lora_rank: 1536,
      kv_lora_rank: 512,
      qk_nope_head_dim: 128,
      qk_rope_head_dim: 64,
      v_head_dim: 128,
      vocab_size: 129280,
      dsa_indexer: { index_n_heads: 64, index_head_dim: 128, index_topk: 2048 },
    });
    assert.equal(recipe.model.num_parameters, 671e9);
    assert.equal(recipe.model.num_active_parameters, 37e9);
    // (576 B sparse-MLA latent + 132 B indexer key) × 61 layers.
    assert.equal(recipe.model.kv_cache_bytes_per_token, (576 + 132) * 61);
  });

  it("runs on 32 GB200 GPUs in 8 four-GPU nodes over MNNVL", () => {
    const hw = recipe.hardware;
    assert.equal(hw.gpu, "GB200");
    assert.equal(hw.memory_per_gpu_gb * 1e9, 189_471 * 2 ** 20);
    assert.equal(hw.gpus_per_node, 4);
    assert.equal(hw.nodes, 8);
    assert.equal(hw.total_gpus, 32);
    assert.deepEqual(hw.nvlink, { bandwidth_gb_per_s: 900, domain_gpus: 72, mnnvl: true });
  });

  it("synthesizes the trace with the README's datagen flags", () => {
    assert.equal(recipe.trace.source, "mooncake/conversation");
    assert.deepEqual(recipeSynthesisOptions(recipe), {
      numRequests: 10_000,
      speedupRatio: 1,
      prefixLenMultiplier: 16,
      prefixRootMultiplier: 1,
      promptLenMultiplier: 10,
      oslMultiplier: 1,
      maxIsl: 110_000,
      blockSize: 512,
      seed: 1,
    });
  });

  it("replays on a fixed schedule with the perf.yaml goodput SLOs", () => {
    const b = recipe.benchmark;
    assert.equal(b.mode, "fixed_schedule");
    assert.deepEqual(b.goodput, { time_to_first_token: 20_000, inter_token_latency: 50 });
    assert.equal(b.prompt_block_size, 512);
    assert.equal(b.streaming, true);
    assert.equal(b.random_seed, 42);
    assert.equal(b.request_timeout_s, 1000);
  });

  it("has the aggregated round-robin baseline: 4 × DEP8, no prefix reuse", () => {
    const arm = recipe.arms["agg-round-robin"]!;
    assert.deepEqual(arm.router, { mode: "round-robin" });
    assert.equal(arm.prefill, undefined);
    const w = arm.workers!;
    assert.deepEqual([w.replicas, w.gpus_per_worker, w.nodes_per_worker, w.kv_block_size], [4, 8, 2, 64]);
    assert.equal(w.disaggregation_mode, "prefill_and_decode");
    assert.deepEqual(w.engine, {
      tensor_parallel_size: 8,
      enable_attention_dp: true,
      // Not in aggregated.yaml: TRT-LLM's defaults, ADP balance off.
      attention_dp_config: { enable_balance: false, timeout_iters: 50, batching_wait_iters: 10 },
      moe_expert_parallel_size: 8,
      moe_config: { backend: "TRTLLM", use_low_precision_moe_combine: true },
      max_batch_size: 8,
      cuda_graph_config: { max_batch_size: 8, enable_padding: true },
      max_num_tokens: 8192,
      max_seq_len: 121_000,
      enable_chunked_prefill: true,
      disable_overlap_scheduler: true,
      kv_cache_config: {
        dtype: "fp8",
        enable_block_reuse: false,
        free_gpu_memory_fraction: 0.9,
        tokens_per_block: 64,
      },
      allreduce_strategy: "MNNVL",
      cache_transceiver_config: { backend: "UCX", max_tokens_in_buffer: 120_000 },
      num_postprocess_workers: 8,
      stream_interval: 10,
      print_iter_log: true,
    });
    assert.equal(armGpuCount(arm), 32);
  });

  it("has the disaggregated KV-routed arm: 2 DEP8 prefill + 2 WideEP DEP8 decode", () => {
    const arm = recipe.arms["disagg-kv"]!;
    assert.equal(arm.workers, undefined);
    assert.equal(arm.router.mode, "kv");
    if (arm.router.mode !== "kv") return;
    assert.equal(arm.router.overlap_score_weight, 1);
    assert.equal(arm.router.router_temperature, 0);
    assert.equal(arm.router.use_kv_events, true);
    assert.equal(arm.router.router_track_active_blocks, true);
    assert.equal(arm.router.router_reset_states, true);

    const p = arm.prefill!;
    assert.deepEqual([p.replicas, p.gpus_per_worker, p.disaggregation_mode], [2, 8, "prefill"]);
    assert.equal(p.engine.max_batch_size, 32);
    assert.equal(p.engine.kv_cache_config.enable_block_reuse, true);
    assert.deepEqual(p.engine.moe_config, { backend: "TRTLLM", use_low_precision_moe_combine: false });
    // Not set in prefill.yaml: TRT-LLM defaults.
    assert.equal(p.engine.allreduce_strategy, "AUTO");
    assert.equal(p.engine.stream_interval, 1);

    const d = arm.decode!;
    assert.deepEqual([d.replicas, d.gpus_per_worker, d.disaggregation_mode], [2, 8, "decode"]);
    assert.deepEqual(d.engine.moe_config, { backend: "WIDEEP", use_low_precision_moe_combine: true });
    assert.equal(d.engine.max_batch_size, 8);
    assert.equal(d.engine.kv_cache_config.enable_block_reuse, false);
    assert.equal(d.engine.enable_chunked_prefill, false);
    assert.equal(d.engine.allreduce_strategy, "MNNVL");
    assert.equal(armGpuCount(arm), 32);
  });

  it("prints the same resolved YAML every time, and that YAML parses back to the same recipe", async () => {
    const yaml = resolvedRecipeYaml(recipe);
    assert.equal(resolvedRecipeYaml(await loadRecipe(FOUNDING_RECIPE)), yaml);
    assert.deepEqual(parseRecipe(yaml, "resolved.yaml"), recipe);
    assert.deepEqual(JSON.parse(resolvedRecipeJson(recipe)), recipe);
    // Fully resolved: nothing is left for defaults to fill, and no anchors stand in for repeated blocks.
    assert.doesNotMatch(yaml, /[&*]a\d/);
    assert.equal(resolvedRecipeYaml(parseRecipe(yaml, "resolved.yaml")), yaml);
  });

  it("cites a source for the numbers it sets", async () => {
    const text = await readFile(FOUNDING_RECIPE, "utf8");
    for (const cited of ["config_671B_v3.2.json", "SA §3.2", "SA §3.3", "§1.5", "§1.7", "perf.yaml"]) {
      assert.ok(text.includes(cited), `the recipe should cite ${cited}`);
    }
  });
});
