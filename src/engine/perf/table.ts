import type { RankWork, StepTimeModel } from "../perf-model.ts";
import {
  type AicProfile,
  type Curve,
  dsaSolMs,
  type GemmOp,
  gemmSolMs,
  memOpMs,
  moeSolMs,
} from "./aic-profile.ts";
import { type HostOverhead, rankHostMs } from "./host-overhead.ts";
import { curveAt, segment, segmentWeight } from "./interp.ts";

/** TRT-LLM `moe_config.backend` of a DEP worker. */
export type MoeBackend = "TRTLLM" | "WIDEEP";

/** How one deployment of the profiled model runs its MoE and CUDA graphs (from the recipe's engine config). */
export interface TableVariant {
  /**
   * TRTLLM: fused MoE (`moe_trtllm.csv`: min-latency kernel up to 128 global tokens, CUTLASS above) with the
   * NVLinkOneSided dispatch/combine that TRT-LLM selects for non-WideEP MoE on SM100 (SOURCE.md §5 item 7).
   * WIDEEP: `moe_wideep.csv` expert compute with NVLinkTwoSided prepare/dispatch/combine, AIC's large-EP graph
   * (SOURCE.md §3.2-3.3).
   */
  moeBackend: MoeBackend;
  /** `use_low_precision_moe_combine`: FP4 combine. Only the TwoSided (WideEP) kernels have such rows. */
  lowPrecisionCombine: boolean;
  /** `cuda_graph_config.max_batch_size`: decode-only steps up to this per-rank batch replay a CUDA graph. */
  cudaGraphMaxBatch: number;
  /** Factor on every per-layer op of a CUDA-graph step (AIC's 0.9 PDL factor on the large-EP path, SOURCE.md §3.3). */
  graphLayerScale: number;
}

/** One step's time and the parts of its critical path (the parts need not sum to the total). */
export interface StepBreakdown {
  totalMs: number;
  /** Slowest rank's attention, over all layers. */
  attentionMs: number;
  /** Routed-expert compute on the busiest EP rank, over all MoE layers. */
  expertMs: number;
  /** MoE all-to-all phases, over all MoE layers. */
  alltoallMs: number;
  /** Tokens entering each MoE layer across all ranks (padding included). */
  moeTokens: number;
  /** Whether the step replays a CUDA graph (decode-only, batch within the captured sizes). */
  cudaGraph: boolean;
  /** The slowest rank's host time for the iteration (0 without a host model); `totalMs` includes what shows. */
  hostMs: number;
}

export interface TableStepTimeModel extends StepTimeModel {
  readonly profile: AicProfile;
  readonly variant: TableVariant;
  breakdown(ranks: readonly RankWork[]): StepBreakdown;
}

/** Multilinear read of a grid: undefined when a corner with non-zero weight was not collected. */
function gridAt(
  axes: readonly (readonly number[])[],
  get: (idx: number[]) => number | null | undefined,
  q: readonly number[],
): number | undefined {
  const lo: number[] = [];
  const w: number[] = [];
  for (let a = 0; a < axes.length; a++) {
    const i = segment(axes[a]!, q[a]!);
    lo.push(i);
    w.push(axes[a]!.length < 2 ? 0 : segmentWeight(axes[a]!, i, q[a]!));
  }
  let sum = 0;
  const idx = new Array<number>(axes.length);
  for (let corner = 0; corner < 1 << axes.length; corner++) {
    let weight = 1;
    for (let a = 0; a < axes.length; a++) {
      const up = (corner >> a) & 1;
      weight *= up ? w[a]! : 1 - w[a]!;
      idx[a] = lo[a]! + up;
    }
    if (weight === 0) continue;
    const v = get(idx);
    if (v === null || v === undefined) return undefined;
    sum += weight * v;
  }
  return sum;
}

const clamp = (x: number, lo: number, hi: number) => Math.min(Math.max(x, lo), hi);

/**
 * How a measured curve's utilization (roofline / measured) changed per doubling of x over its last two points,
 * capped at 1: the rate a `trend` extrapolation keeps falling at, and never a gain.
 */
export function utilizationTrend(c: Curve, sol: (x: number) => number): number {
  const n = c.x.length - 1;
  const u = (i: number) => sol(c.x[i]!) / c.ms[i]!;
  const perDoubling = (u(n) / u(n - 1)) ** (1 / Math.log2(c.x[n]! / c.x[n - 1]!));
  return Math.min(perDoubling, 1);
}

/** Largest token count whose per-token-count kernel times are remembered (steps are far smaller). */
const MEMO_LIMIT = 1 << 20;

/**
 * Remembers a pure function of a token count. A simulation prices millions of steps whose token counts repeat
 * (batch sizes, the chunk budget), and each price reads several measured curves.
 */
function memoByCount(fn: (x: number) => number): (x: number) => number {
  let cache = new Float64Array(0);
  return (x) => {
    if (!Number.isInteger(x) || x < 0 || x >= MEMO_LIMIT) return fn(x);
    if (x >= cache.length) {
      const grown = new Float64Array(Math.min(MEMO_LIMIT, Math.max(1024, 2 * x + 1))).fill(Number.NaN);
      grown.set(cache);
      cache = grown;
    }
    let v = cache[x]!;
    if (Number.isNaN(v)) {
      v = fn(x);
      cache[x] = v;
    }
    return v;
  };
}

/** Throws for work that cannot be real: negative or non-numeric token counts. */
function checkRank(r: RankWork): void {
  for (const c of r.prefill)
    if (!(c.tokens >= 0 && c.pastTokens >= 0))
      throw new RangeError(`prefill chunk needs tokens, pastTokens >= 0, got ${c.tokens}, ${c.pastTokens}`);
  for (const d of r.decode)
    if (!(d.contextTokens >= 0))
      throw new RangeError(`decode contextTokens must be >= 0, got ${d.contextTokens}`);
}

/** Which measured DSA module rows price attention (see `attentionGrids`). */
export type AttentionRows = "checkpoint" | "nvfp4" | "bfloat16" | "fastest" | "slowest";

/** What the table model reads where the measurements leave a choice; the uncertain ones carry ranges elsewhere. */
export interface KernelOptions {
  /**
   * `checkpoint` (default): the real nvidia/DeepSeek-V3.2-NVFP4 mix, BF16 q/kv/indexer projections and an NVFP4
   * o_proj, composed as the BF16 rows with o_proj's BF16 GEMM swapped for its NVFP4 GEMM. `nvfp4`: AIC's own key
   * (every projection NVFP4, SOURCE.md §2.1). `bfloat16`: every projection BF16. `fastest` / `slowest`: the
   * point-wise minimum / maximum of the three, the bracket any mix of these precisions falls in.
   */
  attention?: AttentionRows;
  /**
   * Utilization of the attention work a prefill chunk does beyond the collected prefixes (≤ 128 cached tokens):
   * `anchor` (default) holds the nearest collected point's, as AIC does (SOURCE.md §2.1 util-hold); a number
   * prices the extra roofline time at that utilization instead.
   */
  longPrefixUtilization?: "anchor" | number;
  /**
   * Routed-expert compute beyond the largest collected token count (16,384 global tokens, SOURCE.md §5 item 2):
   * `hold` (default) keeps the last point's utilization, as AIC does; `trend` lets it keep falling by the factor
   * measured over the last collected doubling (never rising).
   */
  moeBeyondGrid?: "hold" | "trend";
}

export interface TableOptions extends KernelOptions {
  name?: string;
  /**
   * Host time per iteration, and whether TRT-LLM's overlap scheduler hides it behind the GPU step
   * (`disable_overlap_scheduler: false`). Without it, steps are GPU time only.
   */
  host?: { overhead: HostOverhead; overlapScheduler: boolean };
  /**
   * Tokens of the context dummy TensorRT-LLM may give each idle attention-DP rank of a disaggregated prefill worker
   * while another rank prefills (`_pad_attention_dp_dummy_request`: about `max_num_tokens`, so that MoE
   * all-to-all sizes stay comparable). Version-dependent, so a bound; 0 (default) models no such dummy.
   */
  idleRankContextDummy?: number;
}

/**
 * The DSA grids the table model reads for an attention-precision choice, built once per model. The checkpoint mix
 * swaps o_proj inside the BF16 module rows: m = tokens in the pass (batch × isl in prefill, batch in decode).
 */
function attentionGrids(
  p: AicProfile,
  rows: AttentionRows,
  oProj: (dtype: "nvfp4" | "bfloat16", m: number) => number,
) {
  const ctx = p.dsaContext;
  const gen = p.dsaGeneration;
  const mixed = (bf16: number | null, m: number) =>
    bf16 === null ? null : bf16 - oProj("bfloat16", m) + oProj("nvfp4", m);
  const ctxMixed = p.dsaContextBf16.map((byBatch) =>
    byBatch.map((byIsl, b) => byIsl.map((v, i) => mixed(v, ctx.batch[b]! * ctx.isl[i]!))),
  );
  const genMixed = p.dsaGenerationBf16.map((bySeq, b) => bySeq.map((v) => mixed(v, gen.batch[b]!)));
  const pick = (vs: (number | null)[], f: (...xs: number[]) => number) =>
    vs.some((v) => v === null) ? null : f(...(vs as number[]));
  const combine = <T>(grids: T[], f: (...xs: number[]) => number): T => {
    const walk = (xs: unknown[]): unknown =>
      Array.isArray(xs[0])
        ? (xs[0] as unknown[]).map((_, i) => walk(xs.map((x) => (x as unknown[])[i])))
        : pick(xs as (number | null)[], f);
    return walk(grids as unknown[]) as T;
  };
  const choose = <T>(nvfp4: T, bf16: T, checkpoint: T): T => {
    if (rows === "nvfp4") return nvfp4;
    if (rows === "bfloat16") return bf16;
    if (rows === "checkpoint") return checkpoint;
    return combine([nvfp4, bf16, checkpoint], rows === "fastest" ? Math.min : Math.max);
  };
  return {
    context: choose(ctx.ms, p.dsaContextBf16, ctxMixed),
    generation: choose(gen.ms, p.dsaGenerationBf16, genMixed),
    /** The roofline the extrapolations follow prices the projections at the chosen rows' precision. */
    projections:
      rows === "nvfp4"
        ? ("nvfp4" as const)
        : rows === "bfloat16"
          ? ("bfloat16" as const)
          : ("checkpoint" as const),
  };
}

/**
 * Per-layer kernel timings of one profile, read at arbitrary shapes. Exposed for tests and the calibration
 * script; the step composition lives in `createTableModel`.
 */
export function createKernels(profile: AicProfile, opts: KernelOptions = {}) {
  const p = profile;
  const d = p.model;
  const ctx = p.dsaContext;
  const gen = p.dsaGeneration;
  const oProj = (dtype: "nvfp4" | "bfloat16", m: number) =>
    gemm(dtype === "nvfp4" ? p.gemm.oProjNvfp4 : p.gemm.oProjBf16, m);
  const grids = attentionGrids(p, opts.attention ?? "checkpoint", oProj);
  const longPrefixUtil = opts.longPrefixUtilization ?? "anchor";
  const sol = (batch: number, isl: number, prefix: number) =>
    dsaSolMs(p, batch, isl, prefix, grids.projections);

  const ctxGrid = (prefix: number, batch: number, isl: number) =>
    gridAt([ctx.prefix, ctx.batch, ctx.isl], ([a, b, c]) => grids.context[a!]?.[b!]?.[c!], [
      prefix,
      batch,
      isl,
    ]);
  const genGrid = (batch: number, seq: number) =>
    gridAt([gen.batch, gen.seq], ([a, b]) => grids.generation[a!]?.[b!], [batch, seq]);

  /**
   * One DSA prefill call for `batch` requests of `isl` new tokens after `prefix` cached ones: returns the latency
   * and the batch it was read at. Inside the grid: multilinear. A batch beyond what AIC collected at this isl is
   * read at the largest collected batch (`readBatch`), so the caller can hold the per-request cost. isl > 32768 is
   * extrapolated by util-hold on `dsaSolMs`; a prefix beyond the collected 128 adds its extra roofline time at the
   * `longPrefixUtilization` (util-hold by default).
   */
  function dsaContext(batch: number, isl: number, prefix: number): { ms: number; readBatch: number } {
    const islA = clamp(isl, ctx.isl[0]!, ctx.isl[ctx.isl.length - 1]!);
    const prefixA = clamp(prefix, ctx.prefix[0]!, ctx.prefix[ctx.prefix.length - 1]!);
    let readBatch = clamp(batch, ctx.batch[0]!, ctx.batch[ctx.batch.length - 1]!);
    let ms = ctxGrid(prefixA, readBatch, islA);
    if (ms === undefined) {
      // Coverage shrinks as batch grows (batch × isl ≤ 131072): fall back to the largest covered batch.
      for (let b = ctx.batch.length - 1; b >= 0 && ms === undefined; b--) {
        if (ctx.batch[b]! > readBatch) continue;
        readBatch = ctx.batch[b]!;
        ms = ctxGrid(prefixA, readBatch, islA);
      }
    }
    if (ms === undefined) throw new Error(`profile ${p.name}: no DSA context point for isl ${isl}`);
    if (islA !== isl) ms *= sol(readBatch, isl, prefixA) / sol(readBatch, islA, prefixA);
    if (prefixA !== prefix) {
      const anchor = sol(readBatch, isl, prefixA);
      const extra = sol(readBatch, isl, prefix) - anchor;
      ms += longPrefixUtil === "anchor" ? (ms * extra) / anchor : extra / longPrefixUtil;
    }
    return { ms, readBatch };
  }

  /**
   * One DSA decode call for `batch` requests whose KV length is `seq`. Beyond the collected context for this batch,
   * or beyond the largest batch, util-hold on `dsaSolMs` (isl 1) from the nearest collected point.
   */
  function dsaGeneration(batch: number, seq: number): number {
    const batchA = clamp(batch, gen.batch[0]!, gen.batch[gen.batch.length - 1]!);
    let seqA = clamp(seq, gen.seq[0]!, gen.seq[gen.seq.length - 1]!);
    let ms = genGrid(batchA, seqA);
    for (let s = gen.seq.length - 1; s >= 0 && ms === undefined; s--) {
      if (gen.seq[s]! > seqA) continue;
      seqA = gen.seq[s]!;
      ms = genGrid(batchA, seqA);
    }
    if (ms === undefined) throw new Error(`profile ${p.name}: no DSA generation point for batch ${batch}`);
    if (batchA !== batch || seqA !== seq)
      ms *= sol(batch, 1, Math.max(0, seq - 1)) / sol(batchA, 1, seqA - 1);
    return ms;
  }

  function gemm(op: GemmOp, m: number): number {
    if (m <= 0) return 0;
    const { n, k } = op.site;
    const ms = curveAt(op.m, op.ms, m, (x) => gemmSolMs(p, op.dtype, x, n, k));
    if (n === op.n && k === op.k) return ms;
    return (ms * gemmSolMs(p, op.dtype, m, op.n, op.k)) / gemmSolMs(p, op.dtype, m, n, k);
  }

  const moeSol = (t: number) => moeSolMs(p, t);
  const trend = opts.moeBeyondGrid === "trend";
  function experts(backend: MoeBackend, globalTokens: number): number {
    if (globalTokens <= 0) return 0;
    const t = p.moe.trtllm;
    const c: Curve =
      backend === "WIDEEP" ? p.moe.wideep : globalTokens <= t.minLatencyMaxTokens ? t.minLatency : t.cutlass;
    const ms = curveAt(c.x, c.ms, globalTokens, moeSol);
    const last = c.x.length - 1;
    if (!trend || globalTokens <= c.x[last]! || last < 1) return ms;
    return ms / utilizationTrend(c, moeSol) ** Math.log2(globalTokens / c.x[last]!);
  }

  /** All-to-all phases per MoE layer for `rankTokens` per rank; linear in size beyond the collected 65536. */
  function alltoall(backend: MoeBackend, lowPrecisionCombine: boolean, rankTokens: number): number {
    if (rankTokens <= 0) return 0;
    const at = (c: Curve) => curveAt(c.x, c.ms, rankTokens);
    if (backend === "WIDEEP") {
      const a = p.alltoall.twoSided;
      return at(a.prepare) + at(a.dispatch) + at(lowPrecisionCombine ? a.combineLowPrecision : a.combine);
    }
    const a = p.alltoall.oneSided;
    return at(a.dispatch) + at(a.combine);
  }

  // Element-wise bytes per token, AIC's tokens × (dim_in·2 + dim_out·2) (SOURCE.md §2.10).
  const h = d.hidden;
  const addNormBytes = 2 * h * 2 + 2 * h * 2;
  const sharedActBytes = 2 * d.moeInter * 2 + d.moeInter * 2;
  const denseActBytes = 2 * d.denseInter * 2 + d.denseInter * 2;
  const reduceAddBytes = 2 * h * 2 + h * 2;
  const embeddingBytes = h * 2;
  const mem = (tokens: number, bytesPerToken: number) =>
    tokens > 0 ? memOpMs(p, tokens * bytesPerToken) : 0;

  return {
    dsaContext,
    dsaGeneration,
    gemm,
    experts,
    alltoall,
    addNorm: (x: number) => mem(x, addNormBytes),
    sharedExpert: (x: number) =>
      x > 0 ? gemm(p.gemm.sharedGateUp, x) + mem(x, sharedActBytes) + gemm(p.gemm.sharedDown, x) : 0,
    denseMlp: (x: number) =>
      x > 0 ? gemm(p.gemm.denseGateUp, x) + mem(x, denseActBytes) + gemm(p.gemm.denseDown, x) : 0,
    router: (x: number) => gemm(p.gemm.router, x),
    reduceAdd: (x: number) => mem(x, reduceAddBytes),
    embedding: (x: number) => mem(x, embeddingBytes),
    logits: (m: number) => gemm(p.gemm.logits, m),
  };
}

export type Kernels = ReturnType<typeof createKernels>;

/**
 * Table step-time model: AIC's per-layer measurements composed into a full-model step as SOURCE.md §3 describes,
 * generalised to in-flight batches and to DEP lockstep.
 *
 * Per rank r with prefill chunks and decode sequences, x_r = its new tokens this step:
 * - attention_r = Σ over chunks of the chunk's share of a DSA prefill call batching all of the rank's chunks
 *   (`dsaContext(n, chunk, past) / n`, exact for uniform batches), plus one DSA decode call for the decode batch
 *   at its mean context (decode attention is close to linear in context, so the mean carries the sum);
 * - local ops at x_r: two add+norms, the router GEMM, the shared expert (gate_up + SwiGLU + down), AIC's
 *   reduce-add on the WideEP path; the first `numDenseLayers` layers run the dense MLP unsharded instead.
 *
 * Every MoE layer's all-to-all is a barrier, so a layer lasts max_r(local_r) plus the collective: the expert
 * compute of the busiest EP rank at the GLOBAL token count Σ x_r and the all-to-all at the largest per-rank
 * count. In a CUDA-graph step (decode only, per-rank batch ≤ `cudaGraphMaxBatch`) TRT-LLM pads every rank to the
 * largest batch, overlaps the shared expert with the routed path (max instead of sum) and AIC applies its PDL
 * factor; eager steps sum everything (SOURCE.md §3.3). Embedding and the logits GEMM run once per step. Ranks
 * beyond `ranks.length` (up to the EP size) are idle but still join the collectives.
 */
export function createTableModel(
  profile: AicProfile,
  variant: TableVariant,
  opts: TableOptions = {},
): TableStepTimeModel {
  const kernels = createKernels(profile, opts);
  const k = {
    ...kernels,
    addNorm: memoByCount(kernels.addNorm),
    reduceAdd: memoByCount(kernels.reduceAdd),
    router: memoByCount(kernels.router),
    sharedExpert: memoByCount(kernels.sharedExpert),
    denseMlp: memoByCount(kernels.denseMlp),
    embedding: memoByCount(kernels.embedding),
    logits: memoByCount(kernels.logits),
  };
  const experts = memoByCount((tokens) => kernels.experts(variant.moeBackend, tokens));
  const alltoall = memoByCount((tokens) =>
    kernels.alltoall(variant.moeBackend, variant.lowPrecisionCombine, tokens),
  );
  const d = profile.model;
  const host = opts.host;
  const dense = d.numDenseLayers;
  const moeLayers = d.numLayers - d.numDenseLayers;
  const dp = profile.epSize;

  function breakdown(ranks: readonly RankWork[]): StepBreakdown {
    if (ranks.length > dp)
      throw new RangeError(`profile ${profile.name} has ${dp} DP ranks, step has ${ranks.length}`);
    let anyPrefill = false;
    let maxDecode = 0;
    for (const r of ranks) {
      checkRank(r);
      for (const c of r.prefill) if (c.tokens > 0) anyPrefill = true;
      if (r.decode.length > maxDecode) maxDecode = r.decode.length;
    }
    const graph = !anyPrefill && maxDecode > 0 && maxDecode <= variant.cudaGraphMaxBatch;
    const empty = {
      totalMs: 0,
      attentionMs: 0,
      expertMs: 0,
      alltoallMs: 0,
      moeTokens: 0,
      cudaGraph: false,
      hostMs: 0,
    };
    if (!anyPrefill && maxDecode === 0) return empty;
    const dummyTokens = opts.idleRankContextDummy ?? 0;
    // Idle ranks (beyond `ranks` too) run the dummy chunk in a prefill step: priced as real work.
    const working: readonly RankWork[] =
      dummyTokens > 0 && anyPrefill
        ? Array.from({ length: dp }, (_, i) => {
            const r = ranks[i];
            return r && (r.prefill.some((c) => c.tokens > 0) || r.decode.length > 0)
              ? r
              : { prefill: [{ tokens: dummyTokens, pastTokens: 0 }], decode: [], kvUsage: 0 };
          })
        : ranks;

    let maxAttn = 0;
    let maxMoeLocal = 0;
    let maxDenseLocal = 0;
    let maxRouter = 0;
    let maxShared = 0;
    let maxOnce = 0;
    let sumTokens = 0;
    let maxTokens = 0;
    for (const r of working) {
      let chunks = 0;
      let chunkTokens = 0;
      for (const c of r.prefill)
        if (c.tokens > 0) {
          chunks++;
          chunkTokens += c.tokens;
        }
      const decodeBatch = r.decode.length === 0 ? 0 : graph ? maxDecode : r.decode.length;
      const x = chunkTokens + decodeBatch;
      if (x === 0) continue;
      let attn = 0;
      for (const c of r.prefill)
        if (c.tokens > 0) {
          const call = k.dsaContext(chunks, c.tokens, c.pastTokens);
          attn += call.ms / call.readBatch;
        }
      if (decodeBatch > 0) {
        let ctxSum = 0;
        for (const s of r.decode) ctxSum += s.contextTokens;
        attn += k.dsaGeneration(decodeBatch, ctxSum / r.decode.length);
      }
      const norms = 2 * k.addNorm(x);
      const reduceAdd = variant.moeBackend === "WIDEEP" ? k.reduceAdd(x) : 0;
      const router = k.router(x);
      const shared = k.sharedExpert(x);
      const moeLocal = attn + norms + reduceAdd + (graph ? 0 : router + shared);
      const denseLocal = attn + norms + k.denseMlp(x);
      const once = k.embedding(x) + k.logits(chunks + decodeBatch);
      if (attn > maxAttn) maxAttn = attn;
      if (moeLocal > maxMoeLocal) maxMoeLocal = moeLocal;
      if (denseLocal > maxDenseLocal) maxDenseLocal = denseLocal;
      if (router > maxRouter) maxRouter = router;
      if (shared > maxShared) maxShared = shared;
      if (once > maxOnce) maxOnce = once;
      sumTokens += x;
      if (x > maxTokens) maxTokens = x;
    }
    const moeTokens = graph ? dp * maxTokens : sumTokens;
    const expertMs = experts(moeTokens);
    const a2a = alltoall(maxTokens);
    const moeLayer = graph
      ? maxMoeLocal + Math.max(maxRouter + a2a + expertMs, maxShared)
      : maxMoeLocal + a2a + expertMs;
    const scale = graph ? variant.graphLayerScale : 1;
    const gpuMs = scale * (dense * maxDenseLocal + moeLayers * moeLayer) + maxOnce;
    // Every rank runs its own executor loop, and the ranks meet in collectives: the slowest host gates the step.
    let hostMs = 0;
    if (host) for (const r of ranks) hostMs = Math.max(hostMs, rankHostMs(host.overhead, r));
    return {
      totalMs: host?.overlapScheduler ? Math.max(gpuMs, hostMs) : gpuMs + hostMs,
      hostMs,
      attentionMs: scale * d.numLayers * maxAttn,
      expertMs: scale * moeLayers * expertMs,
      alltoallMs: scale * moeLayers * a2a,
      moeTokens,
      cudaGraph: graph,
    };
  }

  return {
    name: opts.name ?? `${profile.name}/${variant.moeBackend.toLowerCase()}`,
    profile,
    variant,
    breakdown,
    stepMs: (ranks) => breakdown(ranks).totalMs,
  };
}
