import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { deriveAicProfile, PROFILE_PATH } from "../../../scripts/derive-aic-profile.ts";
import { skipWithoutData } from "../../testing/data-dir.ts";
import { SHARED_DATA_DIR } from "../../testing/fixtures.ts";
import { DSV32_GB200_DEP8 as profile } from "./registry.ts";

const dataDir = join(SHARED_DATA_DIR, "aic-gb200");

describe("committed DSV3.2 / GB200 / DEP8 profile", () => {
  it("has a latency for every collected grid point and none beyond AIC's coverage", () => {
    const c = profile.dsaContext;
    for (let p = 0; p < c.prefix.length; p++)
      for (let b = 0; b < c.batch.length; b++)
        for (let i = 0; i < c.isl.length; i++) {
          const covered = c.batch[b]! * c.isl[i]! <= 131072;
          assert.equal(
            c.ms[p]![b]![i] !== null,
            covered,
            `context p=${c.prefix[p]} b=${c.batch[b]} isl=${c.isl[i]}`,
          );
        }
    const g = profile.dsaGeneration;
    for (let b = 0; b < g.batch.length; b++)
      for (let s = 0; s < g.seq.length; s++) {
        const covered = g.batch[b]! * (g.seq[s]! - 1) <= 33_554_432;
        assert.equal(g.ms[b]![s] !== null, covered, `generation b=${g.batch[b]} seq=${g.seq[s]}`);
      }
  });

  it("keeps each curve sorted, positive and as long as its axis", () => {
    const curves = [
      profile.moe.trtllm.minLatency,
      profile.moe.trtllm.cutlass,
      profile.moe.wideep,
      ...Object.values(profile.alltoall.twoSided),
      ...Object.values(profile.alltoall.oneSided),
      ...Object.values(profile.gemm).map((g) => ({ x: g.m, ms: g.ms })),
    ];
    for (const c of curves) {
      assert.equal(c.x.length, c.ms.length);
      for (let i = 1; i < c.x.length; i++) assert.ok(c.x[i]! > c.x[i - 1]!);
      for (const v of c.ms) assert.ok(v > 0);
    }
  });
});

describe("profile derivation from ../shared/data/aic-gb200", {
  skip: skipWithoutData(join(dataDir, "SOURCE.md")),
}, () => {
  it("regenerates the committed profile exactly", async () => {
    const committed = JSON.parse(await readFile(PROFILE_PATH, "utf8"));
    const derived = await deriveAicProfile(dataDir);
    assert.deepEqual(JSON.parse(JSON.stringify(derived)), committed);
  });

  it("carries the published worked-example points", async () => {
    const derived = await deriveAicProfile(dataDir);
    const c = derived.dsaContext;
    // SOURCE.md E3: DSA context at b=1, isl 8192, prefix 0 is 4.0969 ms.
    assert.equal(c.ms[c.prefix.indexOf(0)]![c.batch.indexOf(1)]![c.isl.indexOf(8192)], 4.0969);
    // SOURCE.md E1: wideep at 64 global tokens 0.14922 ms.
    const w = derived.moe.wideep;
    assert.ok(Math.abs(w.ms[w.x.indexOf(64)]! - 0.14922) < 5e-6);
    assert.equal(derived.provenance.upstream.commit, "095f58a51c4ca8e61b66ec108d86f223f8d559ce");
  });
});
