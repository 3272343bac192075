import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { RequestRecord } from "../metrics/record.ts";
import { writeArmDir } from "../testing/arm-dir.ts";
import { withTempDir } from "../testing/fixtures.ts";
import { readArmArtifacts } from "./artifacts.ts";

const hasZstdCli = (() => {
  try {
    execFileSync("zstd", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

const streamed = (n: number): RequestRecord[] =>
  Array.from({ length: n }, (_, i) => ({
    sessionNum: i,
    requestId: `s${i}`,
    conversationId: `s${i}`,
    turnIndex: 0,
    startNs: 1e12 + i * 1e8,
    chunkNs: [1e12 + i * 1e8 + 50e6, 1e12 + i * 1e8 + 60e6 + (i % 5) * 1e6],
    inputTokens: 300,
    outputTokens: 2,
    streaming: true,
  }));

describe("a report arm whose AIPerf exports are zstd-compressed", () => {
  it("reads the same requests and summary as from the plain files", {
    skip: hasZstdCli ? false : "no zstd CLI to compress the fixture",
  }, async () => {
    await withTempDir(async (dir) => {
      const records = streamed(25);
      const summary = { input_config: { endpoint: { model_names: ["m"] } } };
      const plainDir = await writeArmDir(join(dir, "plain"), records, summary);
      const zstDir = await writeArmDir(join(dir, "zst"), records, summary);
      for (const f of ["profile_export.jsonl", "profile_export_aiperf.json"]) {
        execFileSync("zstd", ["-q", "--rm", join(zstDir, f)]);
      }
      const plain = await readArmArtifacts(plainDir, "p");
      const zst = await readArmArtifacts(zstDir, "z");
      assert.equal(zst.requests, 25);
      assert.deepEqual(zst.values, plain.values);
      assert.deepEqual(zst.summary, summary);
      assert.deepEqual(zst.records, plain.records);
      await rm(join(zstDir, "profile_export.jsonl.zst"));
      await assert.rejects(readArmArtifacts(zstDir, "z"), /no profile_export\.jsonl/);
    });
  });
});
