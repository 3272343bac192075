import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { withTempDir } from "../testing/fixtures.ts";
import { MetricsCollector } from "./collector.ts";
import { ExportThread, startRecordExport } from "./export-thread.ts";
import { JsonlRecordWriter } from "./exporters.ts";
import { parseGoodput } from "./goodput.ts";
import type { RequestRecord } from "./record.ts";
import { makeRecord, smallRun } from "./record-fixtures.ts";

/** Enough records for several hand-overs, some with Float64Array chunk times (moved to the thread). */
function records(): RequestRecord[] {
  const out: RequestRecord[] = [...smallRun()];
  for (let i = 0; i < 150; i++) {
    const r = makeRecord({ session: 10 + i, startMs: i, chunksMs: [i + 50, i + 60 + (i % 7), i + 75] });
    out.push(i % 2 === 0 ? r : { ...r, chunkNs: [...r.chunkNs] });
  }
  return out;
}

describe("export thread", () => {
  it("writes the same lines and summary as an in-thread collector and writer", async () => {
    await withTempDir(async (dir) => {
      const goodput = parseGoodput("time_to_first_token:90");
      const collector = new MetricsCollector({ goodput });
      const writer = await JsonlRecordWriter.open(join(dir, "direct.jsonl"));
      for (const r of records()) writer.write(r, collector.add(r));
      await writer.close();

      const thread = await ExportThread.start({ jsonlPath: join(dir, "threaded.jsonl"), goodput });
      for (const r of records()) thread.add(r);
      const { summary, errorSummary } = await thread.finish();
      assert.deepEqual(summary, collector.finish());
      assert.deepEqual(errorSummary, collector.errorSummary());
      assert.equal(
        await readFile(join(dir, "threaded.jsonl"), "utf8"),
        await readFile(join(dir, "direct.jsonl"), "utf8"),
      );
      // A short run exports on its own thread, with the same results.
      const small = await startRecordExport({ jsonlPath: join(dir, "small.jsonl"), goodput }, 10);
      assert.ok(!(small instanceof ExportThread));
      for (const r of records()) small.add(r);
      assert.deepEqual(await small.finish(), { summary, errorSummary });
      assert.equal(
        await readFile(join(dir, "small.jsonl"), "utf8"),
        await readFile(join(dir, "direct.jsonl"), "utf8"),
      );
      const big = await startRecordExport({ jsonlPath: join(dir, "big.jsonl"), goodput }, 1e6);
      assert.ok(big instanceof ExportThread);
      await big.finish();
    });
  });

  it("fails at start on a path it cannot write, and reports a bad record at finish", async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, "blocker"), "");
      await assert.rejects(
        ExportThread.start({ jsonlPath: join(dir, "blocker", "x.jsonl"), goodput: [] }),
        (e: Error & { code?: string }) => e.code === "FILE_WRITE" && /blocker\/x\.jsonl/.test(e.message),
      );
      const thread = await ExportThread.start({ jsonlPath: join(dir, "bad.jsonl"), goodput: [] });
      thread.add(makeRecord({ startMs: 10, chunksMs: [5, 1] }));
      await assert.rejects(thread.finish(), /earlier than startNs/);
    });
  });
});
