/**
 * The compact step-time profile that `scripts/derive-aic-profile.ts` resamples from AIConfigurator's GB200 tables
 * (../shared/data/aic-gb200, described in its SOURCE.md), and the analytic rooflines the table model uses to
 * extrapolate beyond them. All latencies are milliseconds for one call of one layer's op on one GPU.
 */

/** A measured latency curve over one token axis, `x` ascending. */
export interface Curve {
  x: number[];
  ms: number[];
}

/** A TRT-LLM Linear GEMM of shape (m × k) · (k × n), priced from the measured curve of a collected `site`. */
export interface GemmOp {
  dtype: "nvfp4" | "bfloat16";
  n: number;
  k: number;
  /** The collected (n, k) whose m-curve prices this GEMM; equal to (n, k) when that shape was measured. */
  site: { n: number; k: number };
  m: number[];
  ms: number[];
}

export interface ProfileProvenance {
  description: string;
  upstream: { repository: string; commit: string; dataRoot: string };
  /** TRT-LLM (or NCCL) version that actually ran, per table. */
  versions: Record<string, string>;
  /** One entry per source file: the sha256 of the file read, and the rows kept. */
  files: { file: string; sha256: string; filter: string }[];
  notes: string[];
}

export interface ModelDims {
  numLayers: number;
  numDenseLayers: number;
  hidden: number;
  denseInter: number;
  moeInter: number;
  experts: number;
  topk: number;
  heads: number;
  qLoraRank: number;
  kvLoraRank: number;
  qkNopeDim: number;
  qkRopeDim: number;
  vHeadDim: number;
  indexHeads: number;
  indexHeadDim: number;
  indexTopk: number;
  vocab: number;
  /** KV-cache bytes per token per layer (FP8 latent + indexer key). */
  kvBytesPerTokenLayer: number;
}

export interface SystemSpec {
  memBwBytesPerS: number;
  /** AIC's empirical factor on memory bandwidth for analytic memory ops. */
  memBwScale: number;
  /** AIC's constant latency added to every analytic memory op, seconds. */
  memConstantLatencyS: number;
  flops: { bfloat16: number; fp8: number; fp4: number };
}

export interface AicProfile {
  name: string;
  provenance: ProfileProvenance;
  system: SystemSpec;
  model: ModelDims;
  /** Expert-parallel degree = attention-DP ranks the MoE tables were collected for. */
  epSize: number;
  /**
   * DSA attention module, prefill: `ms[p][b][i]` for prefix `prefix[p]`, batch `batch[b]` requests of `isl[i]` new
   * tokens each; null where AIC did not collect (batch × isl > 131072).
   */
  dsaContext: { prefix: number[]; batch: number[]; isl: number[]; ms: (number | null)[][][] };
  /** DSA attention module, decode: `ms[b][s]` for `batch[b]` requests of KV length `seq[s]`, null where absent. */
  dsaGeneration: { batch: number[]; seq: number[]; ms: (number | null)[][] };
  /** `dsaContext.ms` measured with every projection in BF16 (same axes). */
  dsaContextBf16: (number | null)[][][];
  /** `dsaGeneration.ms` measured with every projection in BF16 (same axes). */
  dsaGenerationBf16: (number | null)[][];
  /** Routed-expert compute on the busiest rank, over GLOBAL tokens (all DP ranks). */
  moe: {
    trtllm: { minLatency: Curve; cutlass: Curve; minLatencyMaxTokens: number };
    wideep: Curve;
  };
  /** NVLink all-to-all phases, over tokens per EP rank. */
  alltoall: {
    twoSided: { prepare: Curve; dispatch: Curve; combine: Curve; combineLowPrecision: Curve };
    oneSided: { dispatch: Curve; combine: Curve };
  };
  gemm: {
    sharedGateUp: GemmOp;
    sharedDown: GemmOp;
    denseGateUp: GemmOp;
    denseDown: GemmOp;
    router: GemmOp;
    logits: GemmOp;
    /** o_proj (heads·v_head_dim → hidden) in NVFP4 and in BF16: the one projection the checkpoint quantizes. */
    oProjNvfp4: GemmOp;
    oProjBf16: GemmOp;
  };
}

/** NVFP4 storage: 4-bit values plus one 1-byte scale per 16 (SOURCE.md §2.6: 7168/2 + 7168/16 B per token). */
export const NVFP4_BYTES = 0.5 + 1 / 16;
/** BF16 activations and outputs. */
export const BF16_BYTES = 2;

/** Parameters of one DSA attention module's projections, indexer included (SA §3.1 shapes). */
export function dsaProjectionParams(d: ModelDims): number {
  return dsaProjectionParamsSplit(d).total;
}

/** The module's projection parameters: o_proj, the rest, and both. */
function dsaProjectionParamsSplit(d: ModelDims): { oProj: number; rest: number; total: number } {
  const qA = d.hidden * d.qLoraRank;
  const qB = d.qLoraRank * d.heads * (d.qkNopeDim + d.qkRopeDim);
  const kvA = d.hidden * (d.kvLoraRank + d.qkRopeDim);
  const kvB = d.kvLoraRank * d.heads * (d.qkNopeDim + d.vHeadDim);
  const o = d.heads * d.vHeadDim * d.hidden;
  const idxQ = d.qLoraRank * d.indexHeads * d.indexHeadDim;
  const idxK = d.hidden * d.indexHeadDim;
  const idxW = d.hidden * d.indexHeads;
  const rest = qA + qB + kvA + kvB + idxQ + idxK + idxW;
  return { oProj: o, rest, total: rest + o };
}

/**
 * Precision of a DSA module's projections: all NVFP4 (AIC's row key), all BF16, or the NVFP4 checkpoint's mix
 * (BF16 except o_proj, SOURCE.md §2.1).
 */
export type ProjectionPrecision = "nvfp4" | "bfloat16" | "checkpoint";

/** Σ_{i<n} min(p + i + 1, k): key/value pairs the sparse attention visits for n new tokens after p cached ones. */
export function sparsePairs(p: number, n: number, k: number): number {
  if (n <= 0) return 0;
  if (p >= k) return n * k;
  if (p + n <= k) return n * p + (n * (n + 1)) / 2;
  return (k * (k + 1)) / 2 - (p * (p + 1)) / 2 + (p + n - k) * k;
}

/**
 * Speed-of-light of one DSA module call (ms): `batch` requests, each `isl` new tokens after `prefix` cached ones.
 * Mirrors the structure of AIC's `dsa_context_sol` (SOURCE.md §2.1): max(math, memory), with math = projection
 * GEMMs at the rate of their precision (FP4 for AIC's key) + FP8 indexer logits over the whole KV (only once it exceeds the top-k) + BF16 sparse MLA over
 * the top-k pairs. Checked against SOURCE.md E4 (2.217 ms at prefix 128, 3.298 ms at prefix 32768, isl 8192).
 * Decode is the same call with isl 1.
 */
export function dsaSolMs(
  p: AicProfile,
  batch: number,
  isl: number,
  prefix: number,
  projections: ProjectionPrecision = "nvfp4",
): number {
  const d = p.model;
  const f = p.system.flops;
  const tokens = batch * isl;
  const split = dsaProjectionParamsSplit(d);
  const fp4Params = projections === "nvfp4" ? split.total : projections === "checkpoint" ? split.oProj : 0;
  const bf16Params = split.total - fp4Params;
  const kv = prefix + isl;
  const gemmS = (2 * tokens * fp4Params) / f.fp4 + (2 * tokens * bf16Params) / f.bfloat16;
  const indexerS = kv > d.indexTopk ? (2 * tokens * d.indexHeads * d.indexHeadDim * kv) / f.fp8 : 0;
  // Absorbed MLA: QK over the 576-wide latent+rope, PV over the 512-wide latent, for every head.
  const pairFlops = 2 * d.heads * (2 * d.kvLoraRank + d.qkRopeDim);
  const attnS = (batch * sparsePairs(prefix, isl, d.indexTopk) * pairFlops) / f.bfloat16;
  const bytes =
    fp4Params * NVFP4_BYTES +
    bf16Params * BF16_BYTES +
    batch * kv * d.kvBytesPerTokenLayer +
    2 * tokens * d.hidden * BF16_BYTES;
  const memS = bytes / p.system.memBwBytesPerS;
  return Math.max(gemmS + indexerS + attnS, memS) * 1000;
}

/** Routed-expert roofline on one EP rank (ms) for `globalTokens` (SOURCE.md §2.4): max(FP4 math, expert weights). */
export function moeSolMs(p: AicProfile, globalTokens: number): number {
  const d = p.model;
  const flops = (globalTokens * d.topk * d.hidden * d.moeInter * 3 * 2) / p.epSize;
  const weightBytes = (d.experts / p.epSize) * 3 * d.hidden * d.moeInter * NVFP4_BYTES;
  return Math.max(flops / p.system.flops.fp4, weightBytes / p.system.memBwBytesPerS) * 1000;
}

/** GEMM roofline (ms), AIC's form max(2mnk / FLOPS, bytes / bandwidth) (SOURCE.md §2.9). */
export function gemmSolMs(p: AicProfile, dtype: GemmOp["dtype"], m: number, n: number, k: number): number {
  const fp4 = dtype === "nvfp4";
  const flops = fp4 ? p.system.flops.fp4 : p.system.flops.bfloat16;
  const wBytes = fp4 ? NVFP4_BYTES : BF16_BYTES;
  const bytes = (m * k + m * n) * BF16_BYTES + n * k * wBytes;
  return Math.max((2 * m * n * k) / flops, bytes / p.system.memBwBytesPerS) * 1000;
}

/** AIC's analytic element-wise op (ms): bytes / (bandwidth × 0.8) + 3 µs (SOURCE.md §2.10). */
export function memOpMs(p: AicProfile, bytes: number): number {
  const s = p.system;
  return (bytes / (s.memBwBytesPerS * s.memBwScale) + s.memConstantLatencyS) * 1000;
}
