import assert from "node:assert/strict";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { withTempDir } from "../testing/fixtures.ts";
import { InputsFileWriter } from "./inputs-file.ts";

describe("inputs.json writer", () => {
  it("writes valid JSON with no sessions, and appears only when closed", async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, "inputs.json");
      const w = new InputsFileWriter(file);
      assert.deepEqual(
        (await readdir(dir)).filter((f) => f === "inputs.json"),
        [],
      );
      await w.close();
      assert.equal(await readFile(file, "utf8"), `${JSON.stringify({ data: [] }, null, 2)}\n`);
    });
  });

  it("lays the file out as AIPerf does (indent 2 throughout), and reports a failed write at close", async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, "inputs.json");
      const w = new InputsFileWriter(file);
      const body = JSON.stringify({
        model: "m",
        prompt: 'line\nwith "quotes" ✓',
        max_tokens: 3,
        stream: true,
      });
      // Handed over as requests finish, laid out as they were sent.
      w.add(1, "s2", Buffer.from(body));
      w.add(0, 's"1', body);
      await w.close();
      const expected = {
        data: [
          { session_id: 's"1', payloads: [JSON.parse(body)] },
          { session_id: "s2", payloads: [JSON.parse(body)] },
        ],
      };
      assert.equal(await readFile(file, "utf8"), `${JSON.stringify(expected, null, 2)}\n`);
      // The spool of bodies kept while the run lasted is gone.
      assert.deepEqual(await readdir(dir), ["inputs.json"]);
      // A file where the directory should be: the write fails, and close says which file.
      await writeFile(join(dir, "blocker"), "");
      const bad = new InputsFileWriter(join(dir, "blocker", "inputs.json"));
      bad.add(0, "s", body);
      await assert.rejects(bad.close(), (e: Error & { code?: string }) => {
        assert.equal(e.code, "FILE_WRITE");
        assert.match(e.message, /blocker\/inputs\.json/);
        return true;
      });
    });
  });
});

describe("inputs.json writer, given up", () => {
  it("leaves no file and no temporary file behind", async () => {
    await withTempDir(async (dir) => {
      const w = new InputsFileWriter(join(dir, "inputs.json"));
      w.add(0, "s", JSON.stringify({ model: "m" }));
      await w.abort();
      assert.deepEqual(await readdir(dir), []);
    });
  });
});
