import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { formatRecordLine } from "../metrics/exporters.ts";
import type { RequestRecord } from "../metrics/record.ts";
import { writeArmDir } from "../testing/arm-dir.ts";
import { withTempDir } from "../testing/fixtures.ts";
import { readArmArtifacts } from "./artifacts.ts";
import { writeReport } from "./report.ts";

/** A non-streamed run: one "chunk", the end of the body; no TTFT, ITL or inter-chunk latencies exist. */
const unary = (speed: number): RequestRecord[] =>
  Array.from({ length: 40 }, (_, i) => ({
    sessionNum: i,
    requestId: `u${i}`,
    conversationId: `u${i}`,
    turnIndex: 0,
    startNs: 1e12 + i * 1e8,
    chunkNs: [1e12 + i * 1e8 + (200 + (i % 7) * 10) * speed * 1e6],
    inputTokens: 500,
    outputTokens: 20,
    streaming: false,
  }));

describe("a report of non-streamed runs", () => {
  it("compares request latency and says nothing of the metrics that need a stream, with no NaN anywhere", async () => {
    await withTempDir(async (dir) => {
      const arms = [];
      for (const [name, speed] of [
        ["a", 1],
        ["b", 0.5],
      ] as const) {
        arms.push(await readArmArtifacts(await writeArmDir(join(dir, name), unary(speed)), name));
      }
      const out = join(dir, "rep");
      const report = await writeReport(out, arms, { title: "unary", command: "test", seed: 1 });
      const md = await readFile(report.md, "utf8");
      assert.doesNotMatch(md, /NaN/);
      assert.doesNotMatch(report.console, /NaN/);
      assert.match(md, /request latency/);
      assert.doesNotMatch(md, /\| TTFT \(ms\) \|/);
    });
  });
});

describe("arms measured with different SLOs", () => {
  it("are named in the report's warnings, with the set it applies", async () => {
    await withTempDir(async (dir) => {
      const arms = [];
      for (const [name, ttft] of [
        ["a", 1000],
        ["b", 2000],
      ] as const) {
        const armDir = await writeArmDir(join(dir, name), unary(1), {
          input_config: { input: { goodput: { request_latency: ttft } } },
        });
        arms.push(await readArmArtifacts(armDir, name));
      }
      const report = await writeReport(join(dir, "rep"), arms, {
        title: "slos",
        command: "test",
        seed: 1,
        slos: [{ tag: "request_latency", threshold: 1000, largerIsBetter: false }],
      });
      assert.match(
        report.console,
        /different goodput SLOs \(a \{"request_latency":1000\}, b \{"request_latency":2000\}\); this report applies one set to all: request_latency ≤ 1000/,
      );
      // Judged each by its own: the same requests (latencies 200–260 ms) meet both, so both attain 100 %; with
      // one set of 100 ms for all, neither would.
      const own = await writeReport(join(dir, "own"), arms, {
        title: "own",
        command: "test",
        seed: 1,
        slos: [{ tag: "request_latency", threshold: 100, largerIsBetter: false }],
        ownSlos: true,
      });
      assert.match(own.console, /each arm is judged by its own/);
      assert.match(own.console, /SLO attainment 100 % → 100 %/);
    });
  });
});

describe("AIPerf exports under a custom prefix", () => {
  it("are found by their stem (--profile-export-prefix), and a zstd export is named for decompression", async () => {
    await withTempDir(async (dir) => {
      const armDir = join(dir, "myrun-dir");
      await mkdir(armDir, { recursive: true });
      await writeFile(
        join(armDir, "myrun.jsonl"),
        `${unary(1)
          .map((r) => formatRecordLine(r))
          .join("\n")}\n`,
      );
      await writeFile(
        join(armDir, "myrun.json"),
        JSON.stringify({ input_config: { endpoint: { model_names: ["m"] } } }),
      );
      await writeFile(join(armDir, "myrun_raw.jsonl"), "");
      const arm = await readArmArtifacts(armDir, "x");
      assert.equal(arm.requests, 40);
      assert.deepEqual((arm.summary.input_config as { endpoint: unknown }).endpoint, { model_names: ["m"] });
      const zst = join(dir, "zst");
      await mkdir(zst, { recursive: true });
      await writeFile(join(zst, "profile_export.jsonl.zst"), "");
      await assert.rejects(readArmArtifacts(zst, "z"), /zstd-compressed[\s\S]*/);
    });
  });
});
