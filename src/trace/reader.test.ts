import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ServelabError } from "../errors.ts";
import { withTempDir, writeLines } from "../testing/fixtures.ts";
import { readTrace, streamTrace } from "./reader.ts";

const row = (timestamp: number, ids = [0]) => ({
  timestamp,
  input_length: ids.length * 512,
  output_length: 1,
  hash_ids: ids,
});

async function rejection(p: Promise<unknown>): Promise<ServelabError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ServelabError, `expected a ServelabError, got ${e}`);
    return e;
  }
  assert.fail("expected a rejection");
}

describe("trace reader", () => {
  it("reads plain and gzipped JSONL, skipping blank lines", async () => {
    await withTempDir(async (dir) => {
      for (const name of ["t.jsonl", "t.jsonl.gz"]) {
        const file = await writeLines(dir, name, [row(0), "", row(5, [0, 1]), "   "]);
        const rows = await readTrace(file);
        assert.deepEqual(
          rows.map((r) => r.timestamp),
          [0, 5],
        );
      }
    });
  });

  it("streams rows with their line numbers", async () => {
    await withTempDir(async (dir) => {
      const file = await writeLines(dir, "t.jsonl", [row(0), "", row(1)]);
      const lines: number[] = [];
      for await (const r of streamTrace(file)) lines.push(r.line);
      assert.deepEqual(lines, [1, 3]);
    });
  });

  it("collects every bad line into one error naming file, line and field", async () => {
    await withTempDir(async (dir) => {
      const file = await writeLines(dir, "bad.jsonl", [
        row(0),
        "{oops",
        { ...row(1), input_length: -1 },
        row(2),
      ]);
      const e = await rejection(readTrace(file));
      assert.equal(e.code, "TRACE_INVALID");
      assert.match(e.message, /2 invalid lines/);
      assert.match(e.details[0]!, /bad\.jsonl:2: malformed JSON/);
      assert.match(e.details[1]!, /bad\.jsonl:3: field 'input_length' must not be negative/);
    });
  });

  it("rejects timestamps that go backwards unless sorting, which warns", async () => {
    await withTempDir(async (dir) => {
      const file = await writeLines(dir, "t.jsonl", [row(0), row(10), row(5), row(20)]);
      const e = await rejection(readTrace(file));
      assert.match(e.details[0]!, /t\.jsonl:3: field 'timestamp' goes backwards: 5 ms after 10 ms on line 2/);
      const warnings: string[] = [];
      const rows = await readTrace(file, { sort: true, onWarning: (w) => warnings.push(w) });
      assert.deepEqual(
        rows.map((r) => r.timestamp),
        [0, 5, 10, 20],
      );
      assert.equal(warnings.length, 1);
    });
  });

  it("rejects an empty file and a missing file", async () => {
    await withTempDir(async (dir) => {
      const empty = await writeLines(dir, "empty.jsonl", [""]);
      assert.equal((await rejection(readTrace(empty))).code, "TRACE_EMPTY");
      assert.equal((await rejection(readTrace(`${dir}/nope.jsonl`))).code, "FILE_NOT_FOUND");
      assert.equal((await rejection(readTrace(dir))).code, "FILE_READ");
    });
  });

  it("reports a corrupt gzip file as a read error", async () => {
    await withTempDir(async (dir) => {
      const file = await writeLines(dir, "t.jsonl", ["not gzip at all"]);
      const { rename } = await import("node:fs/promises");
      await rename(file, `${file}.gz`);
      assert.equal((await rejection(readTrace(`${file}.gz`))).code, "FILE_READ");
    });
  });
});
