import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { dsaProjectionParams, dsaSolMs, gemmSolMs, memOpMs, moeSolMs, sparsePairs } from "./aic-profile.ts";
import { DSV32_GB200_DEP8 as profile } from "./registry.ts";

const near = (actual: number, expected: number, rel: number) =>
  assert.ok(
    Math.abs(actual - expected) <= rel * Math.abs(expected),
    `${actual} vs ${expected} (±${rel * 100}%)`,
  );

describe("DSA roofline", () => {
  it("counts the projection parameters of one module", () => {
    // q_a 7168·1536 + q_b 1536·128·192 + kv_a 7168·576 + kv_b 512·128·256 + o 128·128·7168
    // + indexer wq_b 1536·64·128 + wk 7168·128 + weights_proj 7168·64
    const expected =
      11_010_048 + 37_748_736 + 4_128_768 + 16_777_216 + 117_440_512 + 12_582_912 + 917_504 + 458_752;
    assert.equal(dsaProjectionParams(profile.model), expected);
  });

  it("sums sparse-attention pairs in closed form", () => {
    const brute = (p: number, n: number, k: number) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += Math.min(p + i + 1, k);
      return s;
    };
    for (const [p, n, k] of [
      [0, 0, 4],
      [0, 3, 4],
      [0, 9, 4],
      [2, 5, 4],
      [7, 5, 4],
      [128, 8192, 2048],
      [32768, 8192, 2048],
    ] as const)
      assert.equal(sparsePairs(p, n, k), brute(p, n, k), `p=${p} n=${n} k=${k}`);
  });

  it("matches the SOL values of SOURCE.md worked example E4", () => {
    near(dsaSolMs(profile, 1, 8192, 128), 2.217, 0.001);
    near(dsaSolMs(profile, 1, 8192, 32768), 3.298, 0.001);
  });

  it("turns memory-bound for a short chunk", () => {
    // 16 tokens: math is ~1 µs, reading the module's NVFP4 weights alone is ~14 µs.
    const weightsMs = ((dsaProjectionParams(profile.model) * (0.5 + 1 / 16)) / 8e12) * 1000;
    assert.ok(dsaSolMs(profile, 1, 16, 0) >= weightsMs);
    assert.ok(dsaSolMs(profile, 1, 16, 0) < 1.1 * weightsMs);
  });
});

describe("MoE, GEMM and element-wise rooflines", () => {
  it("prices routed experts at FP4 rate once compute-bound", () => {
    // 16384 tokens · 8 experts · 7168 · 2048 · 3 GEMMs · 2 FLOP / 8 ranks / 1e16 FLOP/s
    near(moeSolMs(profile, 16384), ((16384 * 8 * 7168 * 2048 * 6) / 8 / 1e16) * 1000, 1e-12);
    // One token: the rank's 32 experts' NVFP4 weights over 8 TB/s.
    near(moeSolMs(profile, 1), ((32 * 3 * 7168 * 2048 * 0.5625) / 8e12) * 1000, 1e-12);
  });

  it("prices a large GEMM by FLOPs and a thin one by bytes", () => {
    near(gemmSolMs(profile, "nvfp4", 8192, 7168, 18432), ((2 * 8192 * 7168 * 18432) / 1e16) * 1000, 1e-12);
    const bytes = (8 * 7168 + 8 * 129280) * 2 + 129280 * 7168 * 2;
    near(gemmSolMs(profile, "bfloat16", 8, 129280, 7168), (bytes / 8e12) * 1000, 1e-12);
  });

  it("prices an element-wise op as AIC does (E1's add_norm at 8 tokens)", () => {
    near(memOpMs(profile, 8 * 57344), 0.00307, 0.001);
  });
});
