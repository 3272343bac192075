import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ServelabError } from "../errors.ts";
import { lineOf, TINY_RECIPE } from "../testing/recipes.ts";
import { DEFAULT_SYNTHESIS_OPTIONS } from "../trace/types.ts";
import { parseRecipe, recipeSynthesisOptions } from "./load.ts";

const FILE = "tiny.yaml";
const BEFORE_ARMS = TINY_RECIPE.slice(0, TINY_RECIPE.indexOf("arms:\n"));

/** The tiny recipe with its `arms:` block replaced (`arms` is given without the `arms:` line). */
function withArms(arms: string, extra = ""): string {
  return `${BEFORE_ARMS}${extra}arms:\n${arms}`;
}

/** Parses text that must be rejected and returns the error. */
function rejected(text: string): ServelabError {
  try {
    parseRecipe(text, FILE);
  } catch (e) {
    assert.ok(e instanceof ServelabError, `expected a ServelabError, got ${e}`);
    return e;
  }
  assert.fail("the recipe was accepted");
}

/** Asserts one RECIPE_INVALID detail names `path` at the line of `needle` and matches `reason`. */
function assertProblem(text: string, path: string, needle: string, reason: RegExp): void {
  const error = rejected(text);
  assert.equal(error.code, "RECIPE_INVALID", error.message);
  const line = lineOf(text, needle);
  const detail = error.details.find((d) => d.includes(` ${path}: `));
  assert.ok(detail, `no detail for ${path} in:\n${error.details.join("\n")}`);
  assert.match(detail, new RegExp(`^${FILE}:${line}:\\d+: `), detail);
  assert.match(detail, reason);
}

const DEP4_WORKERS = `  dep:
    workers:
      replicas: 2
      gpus_per_worker: 4
      kv_block_size: 64
      engine:
        tensor_parallel_size: 4
        enable_attention_dp: true
        kv_cache_config: { tokens_per_block: 64 }
`;

const DISAGG = `  split:
    router: { mode: kv }
    prefill:
      publish_events_and_metrics: true
      engine: { cache_transceiver_config: { backend: UCX } }
    decode:
      engine: { cache_transceiver_config: { backend: UCX } }
`;

describe("recipe defaults", () => {
  const recipe = parseRecipe(TINY_RECIPE, FILE);

  it("fills TRT-LLM's engine defaults and Dynamo's worker defaults", () => {
    const arm = recipe.arms.only!;
    assert.deepEqual(arm.router, { mode: "round-robin" });
    const w = arm.workers!;
    assert.deepEqual(
      {
        replicas: w.replicas,
        gpus_per_worker: w.gpus_per_worker,
        nodes_per_worker: w.nodes_per_worker,
        kv_block_size: w.kv_block_size,
        publish_events_and_metrics: w.publish_events_and_metrics,
        disaggregation_mode: w.disaggregation_mode,
      },
      {
        replicas: 2,
        gpus_per_worker: 1,
        nodes_per_worker: 1,
        kv_block_size: 32,
        publish_events_and_metrics: false,
        disaggregation_mode: "prefill_and_decode",
      },
    );
    assert.deepEqual(w.engine, {
      tensor_parallel_size: 1,
      enable_attention_dp: false,
      attention_dp_config: { enable_balance: false, timeout_iters: 50, batching_wait_iters: 10 },
      moe_expert_parallel_size: 1,
      moe_config: { backend: "CUTLASS", use_low_precision_moe_combine: false },
      max_batch_size: 2048,
      cuda_graph_config: { max_batch_size: 128, enable_padding: false },
      max_num_tokens: 8192,
      enable_chunked_prefill: false,
      disable_overlap_scheduler: false,
      kv_cache_config: {
        dtype: "auto",
        enable_block_reuse: true,
        free_gpu_memory_fraction: 0.9,
        tokens_per_block: 32,
      },
      allreduce_strategy: "AUTO",
      num_postprocess_workers: 0,
      stream_interval: 1,
      print_iter_log: false,
    });
  });

  it("fills the model, hardware, trace and benchmark defaults", () => {
    assert.equal(recipe.model.served_model_name, "org/tiny");
    assert.equal(recipe.hardware.total_gpus, 8);
    assert.equal(recipe.hardware.nvlink.mnnvl, false);
    assert.deepEqual(recipe.trace, { source: "mooncake/conversation", seed: 0 });
    assert.deepEqual(recipe.benchmark, {
      mode: "fixed_schedule",
      auto_offset: false,
      goodput: {},
      prompt_block_size: 512,
      streaming: true,
      random_seed: 42,
      request_timeout_s: 1000,
      start_time: "2026-01-01T00:00:00Z",
    });
    assert.equal(recipeSynthesisOptions(recipe), undefined);
  });

  it("fills the KV router's defaults", () => {
    const r = parseRecipe(withArms(DISAGG), FILE).arms.split!.router;
    assert.deepEqual(r, {
      mode: "kv",
      overlap_score_weight: 1,
      router_temperature: 0,
      use_kv_events: true,
      router_replica_sync: false,
      router_track_active_blocks: true,
      router_track_output_blocks: false,
      router_assume_kv_reuse: true,
      router_snapshot_threshold: 1_000_000,
      router_reset_states: false,
      router_ttl_secs: 120,
      router_max_tree_size: 2 ** 20,
      router_prune_target_ratio: 0.8,
      router_queue_threshold: 2,
      router_queue_policy: "fcfs",
      router_event_threads: 4,
    });
  });

  it("spreads experts over every rank when attention DP is on and EP is not given", () => {
    const engine = parseRecipe(withArms(DEP4_WORKERS), FILE).arms.dep!.workers!.engine;
    assert.equal(engine.moe_expert_parallel_size, 4);
  });

  it("maps an empty synthesis block to the synthesizer's defaults and the trace seed", () => {
    const text = TINY_RECIPE.replace(
      "  source: mooncake/conversation\n",
      "  source: x.jsonl\n  synthesis: {}\n  seed: 7\n",
    );
    assert.deepEqual(recipeSynthesisOptions(parseRecipe(text, FILE)), {
      ...DEFAULT_SYNTHESIS_OPTIONS,
      seed: 7,
    });
  });

  it("maps every synthesis field to its camelCase option", () => {
    const synthesis = `  synthesis:
    num_requests: 50
    speedup_ratio: 2.5
    prefix_len_multiplier: 4
    prefix_root_multiplier: 3
    prompt_len_multiplier: 0.5
    osl_multiplier: 2
    max_isl: 9000
    min_isl: 100
    min_osl: 1
    max_osl: 300
    block_size: 256
  seed: 11
benchmark: { prompt_block_size: 256 }
`;
    const text = TINY_RECIPE.replace("  source: mooncake/conversation\n", `  source: x.jsonl\n${synthesis}`);
    assert.deepEqual(recipeSynthesisOptions(parseRecipe(text, FILE)), {
      numRequests: 50,
      speedupRatio: 2.5,
      prefixLenMultiplier: 4,
      prefixRootMultiplier: 3,
      promptLenMultiplier: 0.5,
      oslMultiplier: 2,
      maxIsl: 9000,
      minIsl: 100,
      minOsl: 1,
      maxOsl: 300,
      blockSize: 256,
      seed: 11,
    });
  });

  it("accepts closed-loop benchmark modes with their numbers", () => {
    const c = parseRecipe(
      `${TINY_RECIPE}benchmark: { mode: concurrency, concurrency: 16 }\n`,
      FILE,
    ).benchmark;
    assert.equal(c.mode, "concurrency");
    assert.equal(c.mode === "concurrency" && c.concurrency, 16);
    const r = parseRecipe(
      `${TINY_RECIPE}benchmark: { mode: request_rate, request_rate: 2.5 }\n`,
      FILE,
    ).benchmark;
    assert.deepEqual(r.mode === "request_rate" && [r.request_rate, r.request_rate_mode], [2.5, "poisson"]);
  });
});

describe("recipe validation", () => {
  it("rejects a negative replica count", () => {
    const text = TINY_RECIPE.replace("replicas: 2", "replicas: -2");
    assertProblem(text, "arms.only.workers.replicas", "replicas: -2", />=1/);
  });

  it("rejects a value outside an enum, listing the allowed ones", () => {
    const text = TINY_RECIPE.replace(
      "      replicas: 2\n",
      "      replicas: 2\n      engine:\n        moe_config: { backend: FAST }\n",
    );
    assertProblem(text, "arms.only.workers.engine.moe_config.backend", "backend: FAST", /"TRTLLM"\|"WIDEEP"/);
  });

  it("rejects an unknown router mode", () => {
    const text = withArms("  a:\n    router: { mode: sticky }\n    workers: {}\n");
    assertProblem(
      text,
      "arms.a.router.mode",
      "router:",
      /must be one of: round-robin, random, least-loaded, kv/,
    );
  });

  it("rejects a KV knob on a router that has none", () => {
    const text = withArms(
      "  a:\n    router:\n      mode: random\n      overlap_score_weight: 2\n    workers: {}\n",
    );
    assertProblem(
      text,
      "arms.a.router.overlap_score_weight",
      "overlap_score_weight",
      /unknown key; allowed here: mode/,
    );
  });

  it("rejects a KV block size that differs from the engine's tokens_per_block", () => {
    const text = withArms(
      "  a:\n    workers:\n      kv_block_size: 64\n      engine: { kv_cache_config: { tokens_per_block: 32 } }\n",
    );
    assertProblem(
      text,
      "arms.a.workers.kv_block_size",
      "kv_block_size: 64",
      /must equal engine.kv_cache_config.tokens_per_block \(32\)/,
    );
  });

  it("rejects a disaggregated arm without decode workers", () => {
    const text = withArms("  a:\n    prefill: { replicas: 1 }\n");
    assertProblem(text, "arms.a.decode", "  a:", /needs both prefill and decode/);
  });

  it("rejects an arm that is both aggregated and disaggregated", () => {
    const text = withArms("  a:\n    workers: {}\n    prefill: {}\n    decode: {}\n");
    assertProblem(text, "arms.a.prefill", "prefill: {}", /either aggregated \(workers\) or disaggregated/);
  });

  it("rejects an arm with no workers at all", () => {
    assertProblem(withArms("  a:\n    router: { mode: random }\n"), "arms.a.workers", "  a:", /missing/);
  });

  it("rejects an arm that needs more GPUs than the hardware has", () => {
    const text = withArms(DEP4_WORKERS.replace("replicas: 2", "replicas: 3"));
    assertProblem(text, "arms.dep", "  dep:", /needs 12 GPUs \(workers 3 × 4\) but the hardware has 8/);
  });

  it("rejects a worker wider than its nodes", () => {
    const text = withArms(DEP4_WORKERS.replace("replicas: 2", "replicas: 1").replaceAll(": 4", ": 8"));
    assertProblem(
      text,
      "arms.dep.workers.nodes_per_worker",
      "    workers:",
      /8 GPUs over 1 node\(s\) is 8 per node, but a GB200 node has 4/,
    );
  });

  it("rejects attention DP whose expert parallelism does not cover every rank", () => {
    const text = withArms(
      DEP4_WORKERS.replace(
        "enable_attention_dp: true",
        "enable_attention_dp: true\n        moe_expert_parallel_size: 2",
      ),
    );
    assertProblem(
      text,
      "arms.dep.workers.engine.moe_expert_parallel_size",
      "moe_expert_parallel_size: 2",
      /must equal tensor_parallel_size \(4\), not 2/,
    );
  });

  it("rejects a GPU count that is not the tensor-parallel size", () => {
    const text = withArms("  a:\n    workers:\n      gpus_per_worker: 2\n");
    assertProblem(
      text,
      "arms.a.workers.gpus_per_worker",
      "gpus_per_worker: 2",
      /must equal engine.tensor_parallel_size \(1\)/,
    );
  });

  it("rejects an engine KV dtype that contradicts the model's", () => {
    const text = withArms(
      "  a:\n    workers:\n      engine:\n        kv_cache_config: { dtype: bfloat16 }\n",
    );
    assertProblem(
      text,
      "arms.a.workers.engine.kv_cache_config.dtype",
      "dtype: bfloat16",
      /stores KV as bfloat16 but model.quantization.kv_cache is fp8/,
    );
  });

  it("rejects a group whose declared disaggregation mode contradicts its place", () => {
    const text = withArms(
      DISAGG.replace("    decode:\n", "    decode:\n      disaggregation_mode: prefill\n"),
    );
    assertProblem(
      text,
      "arms.split.decode.disaggregation_mode",
      "disaggregation_mode: prefill",
      /runs as "decode"/,
    );
  });

  it("rejects a KV router whose workers publish no KV events", () => {
    const text = withArms(DISAGG.replace("      publish_events_and_metrics: true\n", ""));
    assertProblem(text, "arms.split.prefill.publish_events_and_metrics", "prefill:", /must publish them/);
  });

  it("rejects prefill and decode that move KV over different backends", () => {
    const text = withArms(DISAGG.replace("backend: UCX } }\n", "backend: NIXL } }\n"));
    assertProblem(
      text,
      "arms.split.decode.engine.cache_transceiver_config.backend",
      "backend: UCX",
      /NIXL but decode receives over UCX/,
    );
  });

  it("rejects a recipe without arms, and arm names that would break paths", () => {
    assertProblem(`${BEFORE_ARMS}arms: {}\n`, "arms", "arms: {}", /at least one arm/);
    assertProblem(withArms("  a.b:\n    workers: {}\n"), "arms.a.b", "a.b:", /letters, digits/);
  });

  it("names a missing required field", () => {
    const text = TINY_RECIPE.replace("  model_path: org/tiny\n", "");
    assertProblem(text, "model.model_path", "model:", /missing \(expected string\)/);
  });

  it("checks the hardware's GPU total and the model's layer split", () => {
    assertProblem(
      TINY_RECIPE.replace("nodes: 2,", "nodes: 2, total_gpus: 9,"),
      "hardware.total_gpus",
      "hardware:",
      /must equal gpus_per_node × nodes = 4 × 2 = 8/,
    );
    assertProblem(
      TINY_RECIPE.replace("num_moe_layers: 3", "num_moe_layers: 2"),
      "model.architecture.num_moe_layers",
      "num_moe_layers",
      /must equal num_hidden_layers \(4\)/,
    );
  });

  it("checks the trace and benchmark knobs against each other", () => {
    const synth = TINY_RECIPE.replace(
      "  source: mooncake/conversation\n",
      "  source: t.jsonl\n  synthesis: { min_isl: 10, max_isl: 5 }\n",
    );
    assertProblem(synth, "trace.synthesis.min_isl", "synthesis:", /exceeds max_isl/);
    const blocks = TINY_RECIPE.replace(
      "  source: mooncake/conversation\n",
      "  source: t.jsonl\n  synthesis: { block_size: 64 }\n",
    );
    assertProblem(blocks, "trace.synthesis.block_size", "synthesis:", /expands them to 512 tokens/);
    assertProblem(
      `${TINY_RECIPE}benchmark: { mode: concurrency }\n`,
      "benchmark.concurrency",
      "benchmark:",
      /missing \(expected number\)/,
    );
    assertProblem(
      `${TINY_RECIPE}benchmark: { auto_offset: true, start_offset_ms: 5 }\n`,
      "benchmark.start_offset_ms",
      "benchmark:",
      /use one/,
    );
    assertProblem(
      `${TINY_RECIPE}benchmark: { goodput: { ttft: 5 } }\n`,
      "benchmark.goodput.ttft",
      "benchmark:",
      /unknown metric; allowed here: time_to_first_token,/,
    );
  });
});
