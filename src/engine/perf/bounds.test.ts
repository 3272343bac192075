import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ServelabError } from "../../errors.ts";
import type { RankWork } from "../perf-model.ts";
import {
  applySetting,
  HOST_OVERHEAD,
  lowestLongChunkUtilization,
  PERF_BOUNDS,
  type PerfSetting,
  PROFILE_PARAMETERS,
  parsePerfBounds,
} from "./bounds.ts";
import { rankHostMs } from "./host-overhead.ts";
import { DSV32_GB200_DEP8 as profile, DSV32_GB200_DEP8_VARIANTS as variants } from "./registry.ts";
import { createTableModel, type TableVariant } from "./table.ts";

const idle: RankWork = { prefill: [], decode: [], kvUsage: 0 };
const chunk = (tokens: number, pastTokens: number): RankWork => ({
  prefill: [{ tokens, pastTokens }],
  decode: [],
  kvUsage: 0,
});
const decoding = (n: number, context: number): RankWork => ({
  prefill: [],
  decode: Array.from({ length: n }, () => ({ contextTokens: context })),
  kvUsage: 0,
});
const times = (n: number, r: RankWork) => Array.from({ length: n }, () => r);

/** Steps of the founding arms: long-prefix prefill, full prefill on every rank, mixed, decode. */
const STEPS: RankWork[][] = [
  [chunk(8192, 40000), ...times(7, idle)],
  times(8, chunk(8192, 0)),
  [chunk(8192, 60000), ...times(7, decoding(7, 40000))],
  times(8, decoding(8, 40000)),
];

const model = (setting: PerfSetting, variant: TableVariant, overlapScheduler: boolean) => {
  const { options, variant: v } = applySetting(
    setting,
    { options: { host: { overhead: HOST_OVERHEAD.nominal, overlapScheduler } }, variant },
    profile,
  );
  return createTableModel(profile, v, options);
};

describe("step-time profile bounds", () => {
  it("orders every founding step: optimistic ≤ nominal ≤ pessimistic, in every variant", () => {
    for (const [name, variant] of Object.entries(variants)) {
      const models = PERF_BOUNDS.map((bound) => model({ bound }, variant, name === "decode-wideep"));
      for (const step of STEPS) {
        const [a, b, c] = models.map((m) => m.stepMs(step)) as [number, number, number];
        assert.ok(a <= b && b <= c, `${name}: ${a} ≤ ${b} ≤ ${c}`);
      }
      assert.ok(models[2]!.stepMs(STEPS[0]!) > models[0]!.stepMs(STEPS[0]!), name);
    }
  });

  it("moves one parameter alone when a setting varies it", () => {
    const base = model({ bound: "nominal" }, variants.aggregated, false);
    const slowHost = model(
      { bound: "nominal", vary: { parameter: "host_overhead", bound: "pessimistic" } },
      variants.aggregated,
      false,
    );
    const step = STEPS[3]!;
    const extra = Math.max(...step.map((r) => rankHostMs(HOST_OVERHEAD.pessimistic, r)));
    const nominalHost = Math.max(...step.map((r) => rankHostMs(HOST_OVERHEAD.nominal, r)));
    assert.ok(Math.abs(slowHost.stepMs(step) - base.stepMs(step) - (extra - nominalHost)) < 1e-9);
  });

  it("adds host time in series without the overlap scheduler, hides it behind the GPU step with it", () => {
    const off = model({ bound: "nominal" }, variants.aggregated, false);
    const on = model({ bound: "nominal" }, variants.aggregated, true);
    const step = STEPS[3]!;
    const b = off.breakdown(step);
    assert.ok(b.hostMs > 0);
    assert.ok(Math.abs(b.totalMs - on.breakdown(step).totalMs - b.hostMs) < 1e-9);
    // 8 decodes a rank: 1 ms + 8 × 15 µs of host time, below the ~20 ms GPU step.
    assert.ok(Math.abs(b.hostMs - (1 + 8 * 0.015)) < 1e-12);
  });

  it("at the pessimistic end, idle ranks of a prefill worker run a max_num_tokens dummy while one rank prefills", () => {
    const at = (bound: "nominal" | "pessimistic") => {
      const { options, variant } = applySetting(
        { bound: "nominal", vary: { parameter: "prefill_idle_rank_dummy", bound } },
        { options: {}, variant: variants.prefill, idleDummyTokens: 8192 },
        profile,
      );
      return createTableModel(profile, variant, options);
    };
    const alone = [chunk(8192, 0), ...times(7, idle)];
    const everyRank = times(8, chunk(8192, 0));
    assert.ok(at("nominal").stepMs(alone) < at("nominal").stepMs(everyRank));
    assert.equal(at("pessimistic").stepMs(alone), at("nominal").stepMs(everyRank));
    // Decode-only steps run no context dummy.
    assert.equal(at("pessimistic").stepMs(STEPS[3]!), at("nominal").stepMs(STEPS[3]!));
  });

  it("derives the pessimistic long-prefix utilization from the measured rows", () => {
    const u = lowestLongChunkUtilization(profile);
    assert.ok(u > 0.3 && u < 0.45, `${u}`);
    const p = PROFILE_PARAMETERS.find((x) => x.name === "long_prefix_utilization")!;
    assert.equal(p.values(profile).pessimistic, u.toFixed(3));
  });

  it("names a source for every parameter and a range for each one that the measurements leave open", () => {
    for (const p of PROFILE_PARAMETERS) {
      assert.ok(p.source.length > 40, p.name);
      const v = p.values(profile);
      assert.ok(v.optimistic !== v.pessimistic, `${p.name} has no range`);
    }
  });

  it("parses --perf-bounds lists and refuses anything else", () => {
    assert.deepEqual(parsePerfBounds("nominal"), ["nominal"]);
    assert.deepEqual(parsePerfBounds("optimistic, nominal,pessimistic"), [
      "optimistic",
      "nominal",
      "pessimistic",
    ]);
    for (const bad of ["", "best", "nominal,nominal", "nominal,"])
      assert.throws(
        () => parsePerfBounds(bad),
        (e: unknown) => e instanceof ServelabError && e.code === "USAGE",
        bad,
      );
  });
});
