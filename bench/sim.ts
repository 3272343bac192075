/**
 * Simulator benchmark: each founding arm on the recipe trace (10,000 requests, ~85 simulated minutes) with the step-time
 * models `servelab sim` picks by default (the measured GB200 profile), and the
 * Mooncake conversation trace (12,031 requests) on 8 aggregated workers with the polynomial step-time model, the
 * shape of Dynamo's DynoSim benchmark. Each case runs in a process of its own, as `servelab sim` does, with its trace
 * prepared before the clock starts (its record export thread booting meanwhile, as in `servelab sim`); records stream
 * to profile_export.jsonl in a temp dir as in a real run.
 * `--json` prints `{cases: [{case, requests, wall_s, sim_to_real, peak_rss_mb}], prepare_s}`.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { perfModelChoice } from "../src/engine/perf-models.ts";
import { createBlockHasher } from "../src/kv/block-hash.ts";
import { loadRecipe, parseRecipe } from "../src/recipe/load.ts";
import type { Recipe } from "../src/recipe/schema.ts";
import { prepareTrace } from "../src/sim/cluster.ts";
import { loadRecipeTrace, runSimulation, startSimOutput } from "../src/sim/run-sim.ts";
import { readTrace } from "../src/trace/reader.ts";
import { resolveTraceInput } from "../src/trace/resolve-dataset.ts";

const json = process.argv.includes("--json");
/** `--case SUBSTR` runs only the cases whose name contains it (for profiling one case). */
const caseArg = process.argv.indexOf("--case");
const only = caseArg >= 0 ? (process.argv[caseArg + 1] ?? "") : "";
const wanted = (name: string) => name.includes(only);
const log = (m: string) => {
  if (!json) process.stderr.write(`${m}\n`);
};

const recipePath = join(import.meta.dirname, "../recipes/dsv32-wideep-routing.yaml");
const recipe = await loadRecipe(recipePath);
const hasher = await createBlockHasher();
const dir = await mkdtemp(join(tmpdir(), "servelab-bench-sim-"));
let peakRss = 0;
const sampleRss = () => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
};

/** An 8-worker aggregated cluster in the mocker's shape: 16,384 64-token blocks per worker, KV routing. */
const CONVERSATION_RECIPE = `name: conversation-8-agg
model:
  model_path: mocker
  quantization: { weights: fp8, kv_cache: fp8 }
  architecture: { num_hidden_layers: 4, num_dense_layers: 1, num_moe_layers: 3, hidden_size: 256, intermediate_size: 1024,
    moe_intermediate_size: 128, n_routed_experts: 8, n_shared_experts: 1, num_experts_per_tok: 2, num_attention_heads: 4,
    q_lora_rank: 64, kv_lora_rank: 32, qk_nope_head_dim: 16, qk_rope_head_dim: 8, v_head_dim: 16, vocab_size: 1000 }
  num_parameters: 1000000
  kv_cache_bytes_per_token: 1000
hardware: { gpu: GB200, memory_per_gpu_gb: 192, memory_bandwidth_tb_per_s: 8, gpus_per_node: 4, nodes: 2,
  nvlink: { bandwidth_gb_per_s: 900, domain_gpus: 72 }, scale_out_bandwidth_gb_per_s: 100 }
trace: { source: mooncake/conversation }
arms:
  kv-8:
    router: { mode: kv }
    workers:
      replicas: 8
      kv_block_size: 64
      publish_events_and_metrics: true
      engine: { max_batch_size: 256, max_num_tokens: 8192, enable_chunked_prefill: true,
        kv_cache_config: { tokens_per_block: 64, enable_block_reuse: true, max_tokens: 1048576 } }
`;

async function runCase(
  name: string,
  r: Recipe,
  arm: string,
  prepared: ReturnType<typeof prepareTrace>,
  model: string,
  output: Awaited<ReturnType<typeof startSimOutput>>,
) {
  const t0 = performance.now();
  const timer = setInterval(sampleRss, 200);
  const result = await runSimulation({
    recipe: r,
    recipeDir: dirname(recipePath),
    arm,
    outDir: outDirOf(name),
    perfModel: perfModelChoice(model, r),
    cliCommand: "bench:sim",
    prepared,
    output,
    onProgress: (_v, done) => {
      if (done % 1000 === 0) sampleRss();
    },
  });
  clearInterval(timer);
  sampleRss();
  const wall = (performance.now() - t0) / 1000;
  const c = {
    case: name,
    requests: result.extras.requests,
    wall_s: Math.round(wall * 100) / 100,
    sim_to_real: Math.round(result.extras.simulated_s / wall),
    peak_rss_mb: Math.round(peakRss / 2 ** 20),
  };
  log(
    `${name}: ${c.requests} requests, ${c.wall_s} s wall, ${c.sim_to_real}× real time, peak RSS ${c.peak_rss_mb} MiB`,
  );
  return c;
}

const outDirOf = (name: string) => join(dir, name);

/** The trace a case replays, prepared (synthesized and hashed) before its clock starts. */
async function prepareCase(name: string) {
  const t0 = performance.now();
  if (name.startsWith("recipe/")) {
    const rows = await loadRecipeTrace(recipe, dirname(recipePath), {});
    const output = await startSimOutput(recipe, outDirOf(name), rows.length, "bench:sim");
    const prepared = prepareTrace(rows, hasher, 64, recipe.benchmark.prompt_block_size);
    const prepareS = (performance.now() - t0) / 1000;
    log(`recipe trace prepared (synthesized, hashed) in ${prepareS.toFixed(2)} s`);
    return { r: recipe, arm: name.slice("recipe/".length), model: "auto", prepared, prepareS, output };
  }
  const conversation = parseRecipe(CONVERSATION_RECIPE, "conversation-8-agg");
  const rows = await readTrace(await resolveTraceInput("mooncake/conversation"));
  const output = await startSimOutput(conversation, outDirOf(name), rows.length, "bench:sim");
  const prepared = prepareTrace(rows, hasher, 64, 512);
  const prepareS = (performance.now() - t0) / 1000;
  log(`conversation trace prepared in ${prepareS.toFixed(2)} s`);
  return { r: conversation, arm: "kv-8", model: "polynomial", prepared, prepareS, output };
}

const CASES = [...Object.keys(recipe.arms).map((arm) => `recipe/${arm}`), "conversation/kv-8-polynomial"];
const childArg = process.argv.indexOf("--child");

try {
  if (childArg >= 0) {
    // One case in this process, as `servelab sim` runs it: the heap holds nothing of any other case.
    const name = process.argv[childArg + 1]!;
    const { r, arm, model, prepared, prepareS, output } = await prepareCase(name);
    const c = await runCase(name, r, arm, prepared, model, output);
    process.stdout.write(`${JSON.stringify({ ...c, prepare_s: Math.round(prepareS * 100) / 100 })}\n`);
  } else {
    const cases = [];
    let prepareS = 0;
    for (const name of CASES.filter(wanted)) {
      const child = spawnSync(
        process.execPath,
        [...process.execArgv, import.meta.filename, "--child", name, ...(json ? ["--json"] : [])],
        { stdio: ["ignore", "pipe", "inherit"], encoding: "utf8" },
      );
      if (child.status !== 0) throw new Error(`bench:sim case ${name} failed (exit ${child.status})`);
      const { prepare_s, ...c } = JSON.parse(child.stdout.trim().split("\n").at(-1)!);
      if (name.startsWith("recipe/")) prepareS = prepare_s;
      cases.push(c);
    }
    const out = { cases, prepare_s: prepareS };
    process.stdout.write(`${json ? JSON.stringify(out) : JSON.stringify(out, null, 2)}\n`);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
