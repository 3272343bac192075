import assert from "node:assert/strict";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ServelabError } from "../errors.ts";
import { withTempDir } from "../testing/fixtures.ts";
import { readTrace } from "./reader.ts";
import type { TraceRow } from "./types.ts";
import { serializeTraceRow, writeTrace } from "./writer.ts";

const rows: TraceRow[] = [
  {
    hash_ids: [0],
    output_length: 3,
    input_length: 10,
    timestamp: 0,
    context_len: 0,
    unique_user_prompt_len: 10,
  },
  { timestamp: 5, input_length: 600, output_length: 1, hash_ids: [0, 1] },
];

describe("trace writer", () => {
  it("serializes with a fixed key order", () => {
    assert.equal(
      serializeTraceRow(rows[0]!),
      '{"timestamp":0,"input_length":10,"output_length":3,"hash_ids":[0],"context_len":0,"unique_user_prompt_len":10}',
    );
  });

  it("round-trips through the reader and leaves no temp file", async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, "sub", "out.jsonl");
      await writeTrace(file, rows);
      assert.deepEqual(
        await readTrace(file),
        rows.map((r) => JSON.parse(serializeTraceRow(r))),
      );
      assert.deepEqual(await readdir(join(dir, "sub")), ["out.jsonl"]);
    });
  });

  it("leaves an existing target untouched when writing fails", async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, "out.jsonl");
      await writeFile(file, "old\n");
      const failing = (function* () {
        yield* rows;
        throw new Error("disk on fire");
      })();
      await assert.rejects(
        writeTrace(file, failing),
        (e: unknown) => e instanceof ServelabError && e.code === "FILE_WRITE",
      );
      assert.equal(await readFile(file, "utf8"), "old\n");
      assert.deepEqual(await readdir(dir), ["out.jsonl"]);
    });
  });

  it("reports an unwritable destination", async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, "file"), "");
      await assert.rejects(writeTrace(join(dir, "file", "out.jsonl"), rows), /cannot write/);
    });
  });
});
