import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { ServelabError } from "../../errors.ts";
import { loadRecipe } from "../../recipe/load.ts";
import type { Recipe } from "../../recipe/schema.ts";
import { FOUNDING_RECIPE } from "../../testing/recipes.ts";
import { DEFAULT_KV_LEASE_S, DEFAULT_KV_TRANSFER_BANDWIDTH_GBPS, kvTransferMs } from "./kv-handover.ts";
import { resolveWorkerDisagg } from "./worker-mode.ts";

function usageError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(
    fn,
    (e: unknown) => e instanceof ServelabError && e.code === "USAGE" && pattern.test(e.message),
  );
}

describe("servelab worker's disaggregation flags", () => {
  let recipe: Recipe;
  before(async () => {
    recipe = await loadRecipe(FOUNDING_RECIPE);
  });

  it("take the hand-over from the recipe as the simulator charges it: NVLink bandwidth, the model's KV bytes", () => {
    const d = resolveWorkerDisagg({ disaggregationMode: "decode" }, recipe);
    assert.equal(d.mode, "decode");
    assert.equal(d.group, "decode");
    assert.deepEqual(d.kvTransfer, {
      bandwidthGBps: recipe.hardware.nvlink.bandwidth_gb_per_s,
      bytesPerToken: recipe.model.kv_cache_bytes_per_token,
      leaseS: DEFAULT_KV_LEASE_S,
    });
    assert.match(d.summary, /900 GB\/s \(recipe NVLink\), 43188 bytes per token \(recipe model\)/);
    // 10,000 prompt tokens of DeepSeek-V3.2 over one GB200 NVLink port: 0.48 ms.
    assert.ok(Math.abs(kvTransferMs(10_000, d.kvTransfer!) - 0.4798666) < 1e-6);
  });

  it("derive the mode from --group, and refuse a contradiction", () => {
    assert.equal(resolveWorkerDisagg({ group: "prefill" }, recipe).mode, "prefill");
    assert.equal(resolveWorkerDisagg({ group: "workers" }, recipe).mode, "aggregated");
    usageError(
      () => resolveWorkerDisagg({ group: "prefill", disaggregationMode: "decode" }, recipe),
      /--group prefill/,
    );
  });

  it("take Dynamo's spellings and refuse others", () => {
    for (const m of ["agg", "aggregated", "prefill_and_decode", "AGG"])
      assert.equal(resolveWorkerDisagg({ disaggregationMode: m }).mode, "aggregated");
    usageError(
      () => resolveWorkerDisagg({ disaggregationMode: "split" }),
      /expected prefill, decode or aggregated/,
    );
  });

  it("without a recipe: Dynamo mocker's bandwidth, and the bytes per token must be given", () => {
    usageError(() => resolveWorkerDisagg({ disaggregationMode: "prefill" }), /needs --kv-bytes-per-token/);
    const d = resolveWorkerDisagg({
      disaggregationMode: "prefill",
      kvBytesPerToken: 1000,
      kvLeaseSeconds: 30,
    });
    assert.deepEqual(d.kvTransfer, {
      bandwidthGBps: DEFAULT_KV_TRANSFER_BANDWIDTH_GBPS,
      bytesPerToken: 1000,
      leaseS: 30,
    });
    assert.equal(d.group, undefined);
    assert.match(d.summary, /held up to 30 s.*64 GB\/s \(Dynamo mocker default\)/);
  });

  it("flags override the recipe; hand-over flags on an aggregated worker are refused", () => {
    const d = resolveWorkerDisagg(
      { disaggregationMode: "decode", kvTransferBandwidth: 50, kvBytesPerToken: 7 },
      recipe,
    );
    assert.deepEqual([d.kvTransfer!.bandwidthGBps, d.kvTransfer!.bytesPerToken], [50, 7]);
    usageError(() => resolveWorkerDisagg({ kvTransferBandwidth: 50 }), /--kv-transfer-bandwidth only matter/);
    usageError(
      () => resolveWorkerDisagg({ group: "workers", kvLeaseSeconds: 5 }, recipe),
      /--kv-lease-seconds/,
    );
  });
});
