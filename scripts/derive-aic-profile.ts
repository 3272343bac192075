/**
 * Derives the compact DeepSeek-V3.2 NVFP4 / GB200 / DEP8 step-time profile from AIConfigurator's GB200 tables
 * (../shared/data/aic-gb200) and the founding recipe's architecture block, keeping only the grid points the table
 * model reads. Output is deterministic: same inputs, same bytes.
 *
 *   node --import tsx scripts/derive-aic-profile.ts [--data DIR] [--out FILE]
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { parse } from "yaml";
import type { AicProfile, Curve, GemmOp, ModelDims, SystemSpec } from "../src/engine/perf/aic-profile.ts";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const DEFAULT_DATA_DIR = resolve(
  process.env.SERVELAB_DATA_DIR ?? resolve(REPO_ROOT, "../shared/data"),
  "aic-gb200",
);
export const RECIPE_PATH = join(REPO_ROOT, "recipes/dsv32-wideep-routing.yaml");
export const PROFILE_PATH = join(REPO_ROOT, "src/engine/perf/profiles/deepseek-v3.2-nvfp4-gb200-dep8.json");

/** AIC's DEP8 tuple: 128 local heads (attention TP 1), EP 8 (SOURCE.md §3.1). */
const HEADS_PER_RANK = 128;
const EP_SIZE = 8;
/** AIC's DeepSeek routing default (SOURCE.md §2.4, §2.5). */
const DISTRIBUTION = "power_law_1.01";
/** AIC reads the min-latency MoE kernel up to 128 global tokens, CUTLASS above (SOURCE.md §2.4). */
const MIN_LATENCY_MAX_TOKENS = 128;
/** Six significant digits (relative rounding at most 5e-6) keep the file small; SOURCE.md's examples still hold. */
const SIGNIFICANT_DIGITS = 6;

type Row = Record<string, string>;

interface Source {
  file: string;
  sha256: string;
  rows: Row[];
}

async function readCsv(dataDir: string, file: string): Promise<Source> {
  const bytes = await readFile(join(dataDir, file));
  const lines = bytes
    .toString("utf8")
    .split(/\r?\n/)
    .filter((l) => l !== "");
  const header = lines[0]?.split(",") ?? [];
  const rows = lines.slice(1).map((line) => {
    const cells = line.split(",");
    if (cells.length !== header.length) throw new Error(`${file}: ragged row ${JSON.stringify(line)}`);
    return Object.fromEntries(header.map((h, i) => [h, cells[i]!]));
  });
  return { file, sha256: createHash("sha256").update(bytes).digest("hex"), rows };
}

const num = (r: Row, key: string): number => {
  const v = Number(r[key]);
  if (!Number.isFinite(v)) throw new Error(`column ${key} is not a number: ${r[key]}`);
  return v;
};
const round = (v: number): number => Number(v.toPrecision(SIGNIFICANT_DIGITS));
const sortedUnique = (vs: number[]): number[] => [...new Set(vs)].sort((a, b) => a - b);

function where(rows: Row[], filter: Record<string, string>): Row[] {
  const entries = Object.entries(filter);
  return rows.filter((r) => entries.every(([k, v]) => r[k] === v));
}

const describe = (filter: Record<string, string>): string =>
  Object.entries(filter)
    .map(([k, v]) => `${k}==${v}`)
    .join(" & ");

/** A 1-D curve over `key`; a repeated key would make the table ambiguous, so it is an error. */
function curve(rows: Row[], key: string, what: string): Curve {
  const points = rows.map((r) => [num(r, key), num(r, "latency")] as const).sort((a, b) => a[0] - b[0]);
  if (points.length === 0) throw new Error(`${what}: no rows`);
  for (let i = 1; i < points.length; i++)
    if (points[i]![0] === points[i - 1]![0]) throw new Error(`${what}: duplicate ${key} ${points[i]![0]}`);
  return { x: points.map((p) => p[0]), ms: points.map((p) => round(p[1])) };
}

const DSA_FILTER = {
  model: "deepseek-ai/DeepSeek-V3.2",
  mla_dtype: "bfloat16",
  kv_cache_dtype: "fp8",
  gemm_type: "nvfp4",
  num_heads: String(HEADS_PER_RANK),
  tp_size: "1",
};
/**
 * The same module with every projection in BF16. With the NVFP4 rows it brackets the real checkpoint, which keeps
 * q_a/q_b/kv_a/kv_b and the indexer in BF16 and quantizes only o_proj (SOURCE.md §2.1, §5 item 5).
 */
const DSA_BF16_FILTER = { ...DSA_FILTER, gemm_type: "bfloat16" };

function sameAxes(
  a: Record<string, unknown>,
  b: Record<string, unknown>,
  keys: string[],
  what: string,
): void {
  for (const k of keys)
    if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) throw new Error(`${what}: the ${k} axes differ`);
}

function dsaContext(src: Source, filter: Record<string, string>): AicProfile["dsaContext"] {
  const rows = where(src.rows, filter);
  const prefix = sortedUnique(rows.map((r) => num(r, "step")));
  const batch = sortedUnique(rows.map((r) => num(r, "batch_size")));
  const isl = sortedUnique(rows.map((r) => num(r, "isl")));
  const ms = prefix.map(() => batch.map(() => isl.map((): number | null => null)));
  for (const r of rows) {
    const cell = ms[prefix.indexOf(num(r, "step"))]![batch.indexOf(num(r, "batch_size"))]!;
    const i = isl.indexOf(num(r, "isl"));
    if (cell[i] !== null) throw new Error(`${src.file}: duplicate grid point`);
    cell[i] = round(num(r, "latency"));
  }
  return { prefix, batch, isl, ms };
}

/** AIC keys decode rows by KV length seq = isl + step (SOURCE.md §2.2). */
function dsaGeneration(src: Source, filter: Record<string, string>): AicProfile["dsaGeneration"] {
  const rows = where(src.rows, filter);
  const seqOf = (r: Row) => num(r, "isl") + num(r, "step");
  const batch = sortedUnique(rows.map((r) => num(r, "batch_size")));
  const seq = sortedUnique(rows.map(seqOf));
  const ms = batch.map(() => seq.map((): number | null => null));
  for (const r of rows) {
    const cell = ms[batch.indexOf(num(r, "batch_size"))]!;
    const s = seq.indexOf(seqOf(r));
    if (cell[s] !== null) throw new Error(`${src.file}: duplicate grid point`);
    cell[s] = round(num(r, "latency"));
  }
  return { batch, seq, ms };
}

/**
 * The GEMM at (n, k), priced from the nearest collected site in log2(n), log2(k) (AIC's site transfer,
 * SOURCE.md §2.9); the exact shape when it was collected.
 */
function gemm(src: Source, dtype: GemmOp["dtype"], n: number, k: number): GemmOp {
  const rows = where(src.rows, { gemm_dtype: dtype });
  const sites = new Map<string, { n: number; k: number }>();
  for (const r of rows) sites.set(`${r.n}x${r.k}`, { n: num(r, "n"), k: num(r, "k") });
  let best: { n: number; k: number; d: number } | undefined;
  for (const s of sites.values()) {
    const d = Math.hypot(Math.log2(s.n / n), Math.log2(s.k / k));
    if (!best || d < best.d || (d === best.d && (s.n < best.n || (s.n === best.n && s.k < best.k))))
      best = { ...s, d };
  }
  if (!best) throw new Error(`${src.file}: no ${dtype} GEMM sites`);
  const c = curve(
    rows.filter((r) => num(r, "n") === best.n && num(r, "k") === best.k),
    "m",
    `${src.file} n=${best.n} k=${best.k}`,
  );
  return { dtype, n, k, site: { n: best.n, k: best.k }, m: c.x, ms: c.ms };
}

function versions(rows: Row[]): string {
  return [...new Set(rows.map((r) => r.version ?? ""))].sort().join(", ");
}

function architecture(recipeText: string): ModelDims {
  const recipe = parse(recipeText) as {
    model: { architecture: Record<string, unknown>; kv_cache_bytes_per_token: number };
  };
  const a = recipe.model.architecture;
  const get = (key: string): number => {
    const v = a[key];
    if (typeof v !== "number") throw new Error(`recipe model.architecture.${key} is not a number`);
    return v;
  };
  const idx = a.dsa_indexer as Record<string, number>;
  const numLayers = get("num_hidden_layers");
  return {
    numLayers,
    numDenseLayers: get("num_dense_layers"),
    hidden: get("hidden_size"),
    denseInter: get("intermediate_size"),
    moeInter: get("moe_intermediate_size"),
    experts: get("n_routed_experts"),
    topk: get("num_experts_per_tok"),
    heads: get("num_attention_heads"),
    qLoraRank: get("q_lora_rank"),
    kvLoraRank: get("kv_lora_rank"),
    qkNopeDim: get("qk_nope_head_dim"),
    qkRopeDim: get("qk_rope_head_dim"),
    vHeadDim: get("v_head_dim"),
    indexHeads: idx.index_n_heads!,
    indexHeadDim: idx.index_head_dim!,
    indexTopk: idx.index_topk!,
    vocab: get("vocab_size"),
    kvBytesPerTokenLayer: recipe.model.kv_cache_bytes_per_token / numLayers,
  };
}

function system(yamlText: string): SystemSpec {
  const gpu = (parse(yamlText) as { gpu: Record<string, number> }).gpu;
  return {
    memBwBytesPerS: gpu.mem_bw!,
    memBwScale: gpu.mem_bw_empirical_scaling_factor!,
    memConstantLatencyS: gpu.mem_empirical_constant_latency!,
    flops: { bfloat16: gpu.bfloat16_tc_flops!, fp8: gpu.fp8_tc_flops!, fp4: gpu.fp4_tc_flops! },
  };
}

/** Reads the AIC tables under `dataDir` and the recipe, and returns the profile. */
export async function deriveAicProfile(
  dataDir: string = DEFAULT_DATA_DIR,
  recipePath: string = RECIPE_PATH,
): Promise<AicProfile> {
  const sourceMd = await readFile(join(dataDir, "SOURCE.md"), "utf8");
  const commit = /\|\s*commit\s*\|\s*`([0-9a-f]{40})`/.exec(sourceMd)?.[1];
  if (!commit) throw new Error(`${dataDir}/SOURCE.md names no upstream commit`);
  const dataRoot = /\|\s*data root in repo\s*\|\s*`([^`]+)`/.exec(sourceMd)?.[1] ?? "";

  const [ctx, gen, moeT, moeW, a2a, fp4, bf16] = await Promise.all([
    readCsv(dataDir, "dsa_context_module.csv"),
    readCsv(dataDir, "dsa_generation_module.csv"),
    readCsv(dataDir, "moe_trtllm.csv"),
    readCsv(dataDir, "moe_wideep.csv"),
    readCsv(dataDir, "trtllm_alltoall.csv"),
    readCsv(dataDir, "gemm_nvfp4.csv"),
    readCsv(dataDir, "gemm_bf16.csv"),
  ]);
  const systemBytes = await readFile(join(dataDir, "gb200-system.yaml"));
  const recipeBytes = await readFile(recipePath);
  const model = architecture(recipeBytes.toString("utf8"));
  const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

  // The MoE tables' shape columns, from the recipe's architecture (SOURCE.md §1.2 filters on the same shape).
  const moeShape = {
    hidden_size: String(model.hidden),
    inter_size: String(model.moeInter),
    topk: String(model.topk),
    num_experts: String(model.experts),
  };
  const ctxFilter = { op_name: "dsa_context_module", ...DSA_FILTER };
  const genFilter = { op_name: "dsa_generation_module", ...DSA_FILTER };
  const ctxBf16Filter = { op_name: "dsa_context_module", ...DSA_BF16_FILTER };
  const genBf16Filter = { op_name: "dsa_generation_module", ...DSA_BF16_FILTER };
  const dsaCtx = dsaContext(ctx, ctxFilter);
  const dsaGen = dsaGeneration(gen, genFilter);
  const dsaCtxBf16 = dsaContext(ctx, ctxBf16Filter);
  const dsaGenBf16 = dsaGeneration(gen, genBf16Filter);
  sameAxes(dsaCtx, dsaCtxBf16, ["prefix", "batch", "isl"], "DSA context nvfp4 / bfloat16");
  sameAxes(dsaGen, dsaGenBf16, ["batch", "seq"], "DSA generation nvfp4 / bfloat16");
  const moeTFilter = {
    moe_dtype: "nvfp4",
    distribution: DISTRIBUTION,
    moe_tp_size: "1",
    moe_ep_size: String(EP_SIZE),
    ...moeShape,
  };
  const moeWFilter = {
    op_name: "wideep_moe",
    moe_dtype: "nvfp4",
    distribution: DISTRIBUTION,
    // One slot per expert: no redundant (EPLB) replicas, as AIC reads it for TRT-LLM (SOURCE.md §2.5).
    num_slots: String(model.experts),
    moe_tp_size: "1",
    moe_ep_size: String(EP_SIZE),
    ...moeShape,
  };
  const a2aFilter = {
    moe_ep_size: String(EP_SIZE),
    moe_dtype: "nvfp4",
    hidden_size: moeShape.hidden_size,
    topk: moeShape.topk,
    num_experts: moeShape.num_experts,
  };
  const phase = (kernel: string, op: string): Curve =>
    curve(
      where(a2a.rows, { ...a2aFilter, kernel_source: kernel, op_name: op }),
      "num_tokens",
      `${a2a.file} ${kernel} ${op}`,
    );

  const minLatency = curve(
    where(moeT.rows, { ...moeTFilter, kernel_source: "moe_torch_flow_min_latency" }).filter(
      (r) => num(r, "num_tokens") <= MIN_LATENCY_MAX_TOKENS,
    ),
    "num_tokens",
    `${moeT.file} min_latency`,
  );
  const cutlass = curve(
    where(moeT.rows, { ...moeTFilter, kernel_source: "moe_torch_flow_cutlass" }),
    "num_tokens",
    `${moeT.file} cutlass`,
  );
  const d = model;
  const sharedInter = d.moeInter;
  const profile: AicProfile = {
    name: "deepseek-v3.2-nvfp4/gb200/dep8",
    provenance: {
      description:
        "DeepSeek-V3.2 NVFP4, TRT-LLM, GB200, DEP8 (attention TP 1 x DP 8, MoE EP 8), FP8 KV: per-layer " +
        "latencies resampled from AIConfigurator's measured GB200 database by scripts/derive-aic-profile.ts.",
      upstream: { repository: "ai-dynamo/aiconfigurator", commit, dataRoot },
      versions: {
        dsaContext: versions(where(ctx.rows, ctxFilter)),
        dsaGeneration: versions(where(gen.rows, genFilter)),
        moeTrtllm: versions(where(moeT.rows, moeTFilter)),
        moeWideep: versions(where(moeW.rows, moeWFilter)),
        alltoall: versions(where(a2a.rows, a2aFilter)),
        gemm: versions([...fp4.rows, ...bf16.rows]),
      },
      files: [
        {
          file: ctx.file,
          sha256: ctx.sha256,
          filter: `${describe(ctxFilter)}; and the same with gemm_type==bfloat16`,
        },
        {
          file: gen.file,
          sha256: gen.sha256,
          filter: `${describe(genFilter)}; and the same with gemm_type==bfloat16; keyed by seq = isl + step`,
        },
        {
          file: moeT.file,
          sha256: moeT.sha256,
          filter: `${describe(moeTFilter)}; kernel_source moe_torch_flow_min_latency (num_tokens <= ${MIN_LATENCY_MAX_TOKENS}) and moe_torch_flow_cutlass`,
        },
        { file: moeW.file, sha256: moeW.sha256, filter: describe(moeWFilter) },
        {
          file: a2a.file,
          sha256: a2a.sha256,
          filter: `${describe(a2aFilter)}; NVLinkTwoSided prepare/dispatch/combine/combine_low_precision, NVLinkOneSided dispatch/combine`,
        },
        {
          file: fp4.file,
          sha256: fp4.sha256,
          filter: "gemm_dtype==nvfp4; the (n,k) sites listed under gemm",
        },
        {
          file: bf16.file,
          sha256: bf16.sha256,
          filter: "gemm_dtype==bfloat16; the (n,k) sites listed under gemm",
        },
        { file: "gb200-system.yaml", sha256: sha(systemBytes), filter: "gpu bandwidth and FLOPS keys" },
        {
          // Hash the values read, not the file, so edits elsewhere in the recipe leave the profile unchanged.
          file: relative(REPO_ROOT, recipePath),
          sha256: createHash("sha256").update(JSON.stringify(model)).digest("hex"),
          filter: "model.architecture and model.kv_cache_bytes_per_token (sha256 of the values read)",
        },
      ],
      notes: [
        "Latencies are ms per call of one layer's op on one GPU, rounded to 6 significant digits.",
        "dsaContext/dsaGeneration use gemm_type nvfp4, AIC's key for the mixed NVFP4 checkpoint (SOURCE.md §2.1); " +
          "dsaContextBf16/dsaGenerationBf16 the bfloat16 rows; gemm.oProj prices o_proj at both precisions, so " +
          "the table model composes the checkpoint's own mix (BF16 projections, NVFP4 o_proj).",
        "MoE num_tokens are global tokens over all 8 DP ranks; all-to-all num_tokens are per rank (SOURCE.md §2.4-2.6).",
        "A GEMM whose site differs from (n,k) is priced by roofline transfer from that site (SOURCE.md §2.9).",
      ],
    },
    system: system(systemBytes.toString("utf8")),
    model,
    epSize: EP_SIZE,
    dsaContext: dsaCtx,
    dsaGeneration: dsaGen,
    dsaContextBf16: dsaCtxBf16.ms,
    dsaGenerationBf16: dsaGenBf16.ms,
    moe: {
      trtllm: { minLatency, cutlass, minLatencyMaxTokens: MIN_LATENCY_MAX_TOKENS },
      wideep: curve(where(moeW.rows, moeWFilter), "num_tokens", `${moeW.file} wideep`),
    },
    alltoall: {
      twoSided: {
        prepare: phase("NVLinkTwoSided", "alltoall_prepare"),
        dispatch: phase("NVLinkTwoSided", "alltoall_dispatch"),
        combine: phase("NVLinkTwoSided", "alltoall_combine"),
        combineLowPrecision: phase("NVLinkTwoSided", "alltoall_combine_low_precision"),
      },
      oneSided: {
        dispatch: phase("NVLinkOneSided", "alltoall_dispatch"),
        combine: phase("NVLinkOneSided", "alltoall_combine"),
      },
    },
    gemm: {
      // Shared expert: SwiGLU gate+up (2 × moe_intermediate) then down (SOURCE.md §3.3).
      sharedGateUp: gemm(fp4, "nvfp4", 2 * sharedInter, d.hidden),
      sharedDown: gemm(fp4, "nvfp4", d.hidden, sharedInter),
      // Dense MLP of the first layers, unsharded under attention DP (TRT-LLM mlp_tp_size = 1).
      denseGateUp: gemm(fp4, "nvfp4", 2 * d.denseInter, d.hidden),
      denseDown: gemm(fp4, "nvfp4", d.hidden, d.denseInter),
      router: gemm(bf16, "bfloat16", d.experts, d.hidden),
      // Attention output projection, heads × v_head_dim → hidden, at the two precisions the DSA rows use.
      oProjNvfp4: gemm(fp4, "nvfp4", d.hidden, d.heads * d.vHeadDim),
      oProjBf16: gemm(bf16, "bfloat16", d.hidden, d.heads * d.vHeadDim),
      logits: gemm(bf16, "bfloat16", d.vocab, d.hidden),
    },
  };
  return profile;
}

/**
 * Writes the profile as JSON, then lets the repository's formatter lay it out so `biome check` passes on the
 * committed file; the regeneration test compares parsed values, so layout never decides equality.
 */
export async function writeProfile(profile: AicProfile, out: string): Promise<void> {
  await writeFile(out, `${JSON.stringify(profile, null, 2)}\n`);
  await promisify(execFile)(join(REPO_ROOT, "node_modules/.bin/biome"), ["format", "--write", out], {
    cwd: REPO_ROOT,
  });
}

async function main(argv: string[]): Promise<void> {
  let dataDir = DEFAULT_DATA_DIR;
  let out = PROFILE_PATH;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if ((flag === "--data" || flag === "--out") && value !== undefined) {
      if (flag === "--data") dataDir = resolve(value);
      else out = resolve(value);
      i++;
    } else {
      throw new Error(`usage: derive-aic-profile.ts [--data DIR] [--out FILE] (got ${flag})`);
    }
  }
  await writeProfile(await deriveAicProfile(dataDir), out);
  process.stdout.write(`wrote ${relative(process.cwd(), out)}\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main(process.argv.slice(2));
}
