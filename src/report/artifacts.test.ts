import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { computeRecordMetrics } from "../metrics/aiperf-metrics.ts";
import { formatRecordLine } from "../metrics/exporters.ts";
import type { RequestRecord } from "../metrics/record.ts";
import { withTempDir } from "../testing/fixtures.ts";
import { readArmArtifacts, recordFromJsonl } from "./artifacts.ts";

const record = (i: number, error = false): RequestRecord => ({
  sessionNum: i,
  requestId: `r${i}`,
  conversationId: `r${i}`,
  turnIndex: 0,
  startNs: 1e12 + i * 1e9,
  chunkNs: error ? [] : [1e12 + i * 1e9 + 120e6, 1e12 + i * 1e9 + 150e6, 1e12 + i * 1e9 + 175e6],
  inputTokens: 500,
  outputTokens: 3,
  streaming: true,
  ...(error ? { error: { code: 500, type: "Internal Server Error", message: "boom" } } : {}),
});

describe("artifact directories", () => {
  it("rebuilds records from JSONL lines with the same metrics", () => {
    const original = record(3);
    const rebuilt = recordFromJsonl(JSON.parse(formatRecordLine(original)), 0);
    const a = computeRecordMetrics(original).values;
    const b = computeRecordMetrics(rebuilt).values;
    for (const k of [
      "time_to_first_token",
      "inter_token_latency",
      "request_latency",
      "time_to_second_token",
    ] as const) {
      assert.ok(Math.abs(a[k]! - b[k]!) < 1e-6, `${k}: ${a[k]} vs ${b[k]}`);
    }
    assert.equal(rebuilt.inputTokens, 500);
  });

  it("reads an arm's records, errors included, and reports bad lines with file:line", async () => {
    await withTempDir(async (dir) => {
      const arm = join(dir, "arm");
      await mkdir(arm);
      const lines = [record(0), record(1), record(2, true)].map((r) => formatRecordLine(r));
      await writeFile(join(arm, "profile_export.jsonl"), `${lines.join("\n")}\n`);
      const a = await readArmArtifacts(arm);
      assert.equal(a.name, "arm");
      assert.equal(a.requests, 3);
      assert.equal(a.errors, 1);
      assert.equal(a.values.time_to_first_token.length, 2);
      assert.deepEqual(a.sendTimesS, [0, 1]);
      await writeFile(join(arm, "profile_export.jsonl"), `${lines[0]}\n{oops\n[1]\n`);
      await assert.rejects(
        readArmArtifacts(arm),
        (e: Error & { details?: string[] }) =>
          /profile_export\.jsonl:2: malformed JSON/.test(e.details?.[0] ?? "") &&
          /:3: not an AIPerf record/.test(e.details?.[1] ?? ""),
      );
    });
  });
});
