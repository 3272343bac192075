import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RankWork } from "../perf-model.ts";
import { type AicProfile, dsaSolMs, type GemmOp, gemmSolMs } from "./aic-profile.ts";
import { lerp } from "./interp.ts";
import { DSV32_GB200_DEP8 as profile, DSV32_GB200_DEP8_VARIANTS as variants } from "./registry.ts";
import { type AttentionRows, createKernels, createTableModel, type TableVariant } from "./table.ts";

const near = (actual: number, expected: number, rel: number) =>
  assert.ok(
    Math.abs(actual - expected) <= rel * Math.abs(expected),
    `${actual} vs ${expected} (±${rel * 100}%)`,
  );

const idle: RankWork = { prefill: [], decode: [], kvUsage: 0 };
const chunks = (...c: [tokens: number, past: number][]): RankWork => ({
  prefill: c.map(([tokens, pastTokens]) => ({ tokens, pastTokens })),
  decode: [],
  kvUsage: 0,
});
const decoding = (...contexts: number[]): RankWork => ({
  prefill: [],
  decode: contexts.map((contextTokens) => ({ contextTokens })),
  kvUsage: 0,
});
const times = <T>(n: number, v: T): T[] => Array.from({ length: n }, () => v);
// AIC's own DSA key (every projection NVFP4): the worked examples of SOURCE.md §4 read those rows.
const k = createKernels(profile, { attention: "nvfp4" });
const ctxGrid = (prefix: number, batch: number, isl: number) =>
  profile.dsaContext.ms[profile.dsaContext.prefix.indexOf(prefix)]![profile.dsaContext.batch.indexOf(batch)]![
    profile.dsaContext.isl.indexOf(isl)
  ]!;
const genGrid = (batch: number, seq: number) =>
  profile.dsaGeneration.ms[profile.dsaGeneration.batch.indexOf(batch)]![
    profile.dsaGeneration.seq.indexOf(seq)
  ]!;

describe("table model reproduces the AIC data's worked examples (SOURCE.md §4)", () => {
  // AIC prices all 61 layers as MoE layers; the examples follow that convention.
  const aic: AicProfile = { ...profile, model: { ...profile.model, numDenseLayers: 0 } };
  const largeEp: TableVariant = {
    moeBackend: "WIDEEP",
    lowPrecisionCombine: true,
    cudaGraphMaxBatch: 8,
    graphLayerScale: 0.9,
  };
  const decode = createTableModel(aic, largeEp, { attention: "nvfp4" });
  // AIC's context graph combines in BF16.
  const prefill = createTableModel(aic, { ...largeEp, lowPrecisionCombine: false }, { attention: "nvfp4" });

  it("E1: decode, 8 requests per rank at 40k context, large EP ≈ 22.5 ms", () => {
    near(decode.stepMs(times(8, decoding(...times(8, 40001)))), 22.5, 0.005);
  });

  it("E3: first 8192-token chunk on every rank ≈ 672 ms", () => {
    near(prefill.stepMs(times(8, chunks([8192, 0]))), 672, 0.005);
  });

  it("E4: 8192-token chunk after a 32768-token prefix ≈ 795 ms", () => {
    near(prefill.stepMs(times(8, chunks([8192, 32768]))), 795, 0.005);
  });

  it("E5: one request per rank at 8k context, large EP ≈ 20.6 ms", () => {
    near(decode.stepMs(times(8, decoding(8193))), 20.6, 0.005);
  });
});

describe("table kernels inside the measured grid", () => {
  it("reads collected DSA points exactly", () => {
    assert.equal(k.dsaContext(1, 8192, 0).ms, ctxGrid(0, 1, 8192));
    near(k.dsaContext(1, 8192, 0).ms, 4.0969, 1e-4);
    assert.equal(k.dsaGeneration(64, 32769), genGrid(64, 32769));
  });

  it("interpolates linearly along context, prefix and batch", () => {
    const g = profile.dsaGeneration;
    const row = g.ms[g.batch.indexOf(8)]!.map((v) => v!);
    assert.equal(k.dsaGeneration(8, 40001), lerp(g.seq, row, 40001));
    near(k.dsaGeneration(8, 40001), 0.19426, 0.001);
    near(k.dsaContext(1, 8192, 64).ms, (ctxGrid(0, 1, 8192) + ctxGrid(128, 1, 8192)) / 2, 1e-12);
    near(k.dsaContext(3, 1024, 0).ms, (ctxGrid(0, 2, 1024) + ctxGrid(0, 4, 1024)) / 2, 1e-12);
  });

  it("switches the fused MoE from the min-latency kernel to CUTLASS above 128 global tokens", () => {
    const t = profile.moe.trtllm;
    assert.equal(k.experts("TRTLLM", 128), t.minLatency.ms[t.minLatency.x.indexOf(128)]);
    assert.equal(k.experts("TRTLLM", 160), t.cutlass.ms[t.cutlass.x.indexOf(160)]);
    assert.equal(k.experts("WIDEEP", 64), profile.moe.wideep.ms[profile.moe.wideep.x.indexOf(64)]);
  });

  it("sums the all-to-all phases of each backend", () => {
    const two = profile.alltoall.twoSided;
    const one = profile.alltoall.oneSided;
    const i = two.prepare.x.indexOf(8);
    assert.equal(
      k.alltoall("WIDEEP", true, 8),
      two.prepare.ms[i]! + two.dispatch.ms[i]! + two.combineLowPrecision.ms[i]!,
    );
    assert.equal(
      k.alltoall("WIDEEP", false, 8),
      two.prepare.ms[i]! + two.dispatch.ms[i]! + two.combine.ms[i]!,
    );
    const j = one.dispatch.x.indexOf(8);
    assert.equal(k.alltoall("TRTLLM", true, 8), one.dispatch.ms[j]! + one.combine.ms[j]!);
  });

  it("transfers an uncollected GEMM shape from its nearest site by roofline", () => {
    const op = profile.gemm.denseDown;
    assert.deepEqual(op.site, { n: 7168, k: 16384 });
    const site = op.ms[op.m.indexOf(8192)]!;
    // Compute-bound at m = 8192: the ratio is k / k' = 18432 / 16384.
    near(k.gemm(op, 8192), (site * 18432) / 16384, 1e-12);
    // E1's logits GEMM (n = 129280 from the n = 65536 site, memory-bound) ≈ 0.2596 ms.
    near(k.gemm(profile.gemm.logits, 8), 0.2596, 0.002);
  });
});

describe("table kernels outside the measured grid", () => {
  it("extrapolates a chunk over a long cached prefix along the DSA roofline", () => {
    const anchor = ctxGrid(128, 1, 8192);
    const at = k.dsaContext(1, 8192, 32768).ms;
    near(at, (anchor * dsaSolMs(profile, 1, 8192, 32768)) / dsaSolMs(profile, 1, 8192, 128), 1e-12);
    near(at, 6.12, 0.005); // SOURCE.md E4
    let last = anchor;
    for (const prefix of [1024, 8192, 32768, 65536, 110000]) {
      const ms = k.dsaContext(1, 8192, prefix).ms;
      assert.ok(ms > last, `prefix ${prefix}`);
      last = ms;
    }
  });

  it("extrapolates chunks longer than the largest collected isl", () => {
    const ms = k.dsaContext(1, 65536, 0).ms;
    near(ms, (ctxGrid(0, 1, 32768) * dsaSolMs(profile, 1, 65536, 0)) / dsaSolMs(profile, 1, 32768, 0), 1e-12);
  });

  it("reads a batch beyond the collected coverage at the largest covered batch", () => {
    // 16 × 16384 tokens exceeds AIC's 131072-token coverage; batch 8 is the largest collected at that isl.
    const call = k.dsaContext(16, 16384, 0);
    assert.equal(call.readBatch, 8);
    assert.equal(call.ms, ctxGrid(0, 8, 16384));
  });

  it("extrapolates decode beyond the collected context and batch", () => {
    const top = genGrid(8, 131073);
    const beyond = k.dsaGeneration(8, 262145);
    near(beyond, (top * dsaSolMs(profile, 8, 1, 262144)) / dsaSolMs(profile, 8, 1, 131072), 1e-12);
    assert.ok(beyond > top);
    // Batch 512 was collected up to seq 65537 only.
    const b512 = k.dsaGeneration(512, 131073);
    near(
      b512,
      (genGrid(512, 65537) * dsaSolMs(profile, 512, 1, 131072)) / dsaSolMs(profile, 512, 1, 65536),
      1e-12,
    );
    const b2048 = k.dsaGeneration(2048, 1025);
    near(
      b2048,
      (genGrid(1024, 1025) * dsaSolMs(profile, 2048, 1, 1024)) / dsaSolMs(profile, 1024, 1, 1024),
      1e-12,
    );
  });

  it("extends MoE beyond 16384 global tokens at the measured utilization (compute-bound: linear)", () => {
    near(k.experts("WIDEEP", 65536), 4 * k.experts("WIDEEP", 16384), 1e-12);
    near(k.experts("WIDEEP", 65536), 4.2405, 0.001); // SOURCE.md E3
    near(k.experts("TRTLLM", 32768), 2 * k.experts("TRTLLM", 16384), 1e-12);
  });

  it("extends all-to-all and GEMMs linearly in size beyond their grids", () => {
    near(k.alltoall("TRTLLM", false, 131072), 2 * k.alltoall("TRTLLM", false, 65536), 1e-12);
    const op = profile.gemm.sharedGateUp;
    const last = op.ms.at(-1)!;
    near(
      k.gemm(op, 65536),
      (last * gemmSolMs(profile, "nvfp4", 65536, 4096, 7168)) /
        gemmSolMs(profile, "nvfp4", 32768, 4096, 7168),
      1e-12,
    );
  });
});

describe("table step composition", () => {
  // Read at AIC's rows, as `k` is, so the composition is checked against the grid values themselves.
  const nvfp4 = { attention: "nvfp4" } as const;
  const agg = createTableModel(profile, variants.aggregated, nvfp4);
  const wide = createTableModel(profile, variants["decode-wideep"], nvfp4);
  const moeLayers = profile.model.numLayers - profile.model.numDenseLayers;

  it("costs nothing without work", () => {
    assert.equal(agg.stepMs([]), 0);
    assert.equal(agg.stepMs(times(8, idle)), 0);
    assert.equal(agg.stepMs([chunks([0, 100])]), 0);
  });

  it("rejects more ranks than the profile's DP size, and impossible work", () => {
    assert.throws(() => agg.stepMs(times(9, decoding(10))), RangeError);
    assert.throws(() => agg.stepMs([chunks([-1, 0])]), RangeError);
    assert.throws(() => agg.stepMs([chunks([10, Number.NaN])]), RangeError);
    assert.throws(() => agg.stepMs([decoding(-5)]), RangeError);
  });

  it("does not depend on rank order, and missing ranks count as idle", () => {
    const a = chunks([4096, 0]);
    const b = decoding(1000, 2000);
    assert.equal(agg.stepMs([a, b]), agg.stepMs([b, a]));
    assert.equal(agg.stepMs([a, b]), agg.stepMs([a, b, ...times(6, idle)]));
  });

  it("prices a lighter rank only through the MoE tokens it adds (lockstep)", () => {
    const heavy = chunks([4096, 0]);
    const light = chunks([1024, 0]);
    const alone = agg.breakdown([heavy]);
    const both = agg.breakdown([heavy, light]);
    assert.equal(both.moeTokens, 4096 + 1024);
    const delta = moeLayers * (k.experts("TRTLLM", 5120) - k.experts("TRTLLM", 4096));
    near(both.totalMs - alone.totalMs, delta, 1e-9);
  });

  it("lasts as long as the slowest rank's attention", () => {
    const early = chunks([4096, 0]);
    const late = chunks([4096, 60000]);
    const step = agg.breakdown([early, late]);
    near(step.attentionMs, agg.breakdown([late]).attentionMs, 1e-12);
    assert.ok(step.totalMs > agg.stepMs([early, early]));
  });

  it("shares a batched DSA call among a rank's chunks", () => {
    const uniform = agg.breakdown([chunks([2048, 0], [2048, 0], [2048, 0], [2048, 0])]);
    near(uniform.attentionMs / profile.model.numLayers, ctxGrid(0, 4, 2048), 1e-12);
    const mixed = agg.breakdown([chunks([3072, 0], [1024, 0])]);
    const share = (isl: number) => ctxGrid(0, 2, isl) / 2;
    near(mixed.attentionMs / profile.model.numLayers, share(3072) + share(1024), 1e-12);
  });

  it("prices a decode batch at its mean context", () => {
    const step = agg.breakdown([decoding(1000, 3000)]);
    near(step.attentionMs / profile.model.numLayers, k.dsaGeneration(2, 2000), 1e-12);
  });

  it("replays CUDA graphs for decode-only steps within the captured batch, padding every rank", () => {
    const graph = wide.breakdown([decoding(...times(8, 4096)), decoding(4096)]);
    assert.equal(graph.cudaGraph, true);
    assert.equal(graph.moeTokens, 8 * 8);
    const eager = wide.breakdown([decoding(...times(9, 4096)), decoding(4096)]);
    assert.equal(eager.cudaGraph, false);
    assert.equal(eager.moeTokens, 10);
    const mixed = wide.breakdown([decoding(4096), chunks([16, 0])]);
    assert.equal(mixed.cudaGraph, false);
  });

  it("applies the graph-step layer factor to per-layer ops only", () => {
    const unscaled = createTableModel(profile, { ...variants["decode-wideep"], graphLayerScale: 1 }, nvfp4);
    const work = times(8, decoding(...times(4, 9000)));
    const once = k.embedding(4) + k.logits(4);
    near(wide.stepMs(work) - once, 0.9 * (unscaled.stepMs(work) - once), 1e-12);
  });

  it("runs the first dense layers without MoE or all-to-all", () => {
    const allMoe = createTableModel(
      { ...profile, model: { ...profile.model, numDenseLayers: 0 } },
      variants.prefill,
      nvfp4,
    );
    const withDense = createTableModel(profile, variants.prefill, nvfp4);
    const work = times(8, chunks([8192, 0]));
    const a = allMoe.breakdown(work);
    const b = withDense.breakdown(work);
    near(b.expertMs, (a.expertMs * moeLayers) / profile.model.numLayers, 1e-12);
    near(b.alltoallMs, (a.alltoallMs * moeLayers) / profile.model.numLayers, 1e-12);
    assert.equal(b.attentionMs, a.attentionMs);
  });

  it("prices the backends differently at the same work", () => {
    const work = times(8, decoding(...times(8, 8192)));
    assert.notEqual(agg.stepMs(work), wide.stepMs(work));
  });
});

describe("attention at the checkpoint's precision", () => {
  const at = (rows: AttentionRows) => createKernels(profile, { attention: rows });
  const o = (op: GemmOp, m: number) => k.gemm(op, m);

  it("swaps o_proj's BF16 GEMM for its NVFP4 GEMM inside the BF16 module rows", () => {
    const bf16Row = (prefix: number, batch: number, isl: number) =>
      profile.dsaContextBf16[profile.dsaContext.prefix.indexOf(prefix)]![
        profile.dsaContext.batch.indexOf(batch)
      ]![profile.dsaContext.isl.indexOf(isl)]!;
    const m = 8192;
    near(
      at("checkpoint").dsaContext(1, 8192, 0).ms,
      bf16Row(0, 1, 8192) - o(profile.gemm.oProjBf16, m) + o(profile.gemm.oProjNvfp4, m),
      1e-12,
    );
    const genBf16 =
      profile.dsaGenerationBf16[profile.dsaGeneration.batch.indexOf(8)]![
        profile.dsaGeneration.seq.indexOf(32769)
      ]!;
    near(
      at("checkpoint").dsaGeneration(8, 32769),
      genBf16 - o(profile.gemm.oProjBf16, 8) + o(profile.gemm.oProjNvfp4, 8),
      1e-12,
    );
  });

  it("prices an 8K prefill chunk between AIC's NVFP4 key and all-BF16 (SOURCE.md §4 cross-checks)", () => {
    const nv = at("nvfp4").dsaContext(1, 8192, 0).ms;
    const bf = at("bfloat16").dsaContext(1, 8192, 0).ms;
    const mix = at("checkpoint").dsaContext(1, 8192, 0).ms;
    near(nv, 4.0969, 0.001);
    near(bf, 5.78, 0.002);
    assert.ok(nv < mix && mix < bf, `${nv} < ${mix} < ${bf}`);
  });

  it("brackets every precision point by point with fastest / slowest", () => {
    for (const [b, isl, prefix] of [
      [1, 8192, 0],
      [4, 2048, 128],
      [16, 512, 0],
      [1, 8192, 40000],
    ] as const) {
      const vs = (["nvfp4", "bfloat16", "checkpoint"] as const).map(
        (r) => at(r).dsaContext(b, isl, prefix).ms,
      );
      assert.ok(at("fastest").dsaContext(b, isl, prefix).ms <= Math.min(...vs) + 1e-12);
      assert.ok(at("slowest").dsaContext(b, isl, prefix).ms >= Math.max(...vs) - 1e-12);
    }
    for (const [b, seq] of [
      [8, 40001],
      [1, 8193],
    ] as const) {
      const vs = (["nvfp4", "bfloat16", "checkpoint"] as const).map((r) => at(r).dsaGeneration(b, seq));
      near(at("fastest").dsaGeneration(b, seq), Math.min(...vs), 1e-9);
      near(at("slowest").dsaGeneration(b, seq), Math.max(...vs), 1e-9);
    }
  });

  it("prices the work beyond the collected prefixes at the utilization it is given", () => {
    const held = createKernels(profile, { attention: "nvfp4" });
    const peak = createKernels(profile, { attention: "nvfp4", longPrefixUtilization: 1 });
    const anchor = held.dsaContext(1, 8192, 128).ms;
    const extra = dsaSolMs(profile, 1, 8192, 32768) - dsaSolMs(profile, 1, 8192, 128);
    near(peak.dsaContext(1, 8192, 32768).ms, anchor + extra, 1e-12);
    near(
      held.dsaContext(1, 8192, 32768).ms,
      (anchor * dsaSolMs(profile, 1, 8192, 32768)) / dsaSolMs(profile, 1, 8192, 128),
      1e-12,
    );
    // Inside the collected prefixes the choice changes nothing.
    assert.equal(peak.dsaContext(1, 8192, 64).ms, held.dsaContext(1, 8192, 64).ms);
  });
});
