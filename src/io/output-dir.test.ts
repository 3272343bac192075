import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ServelabError } from "../errors.ts";
import { withTempDir } from "../testing/fixtures.ts";
import { buildOutputDir, INCOMPLETE_MARKER, lockOutputDir } from "./output-dir.ts";

const isCode = (code: string) => (e: unknown) => e instanceof ServelabError && e.code === code;

describe("output directories", () => {
  it("lets one run at a time write a directory, naming the owner to the second", async () => {
    await withTempDir(async (dir) => {
      const out = join(dir, "results");
      const lock = await lockOutputDir(out, "servelab sim a");
      await assert.rejects(lockOutputDir(out, "servelab sim b"), (e: unknown) => {
        assert.ok(isCode("OUTPUT_LOCKED")(e));
        assert.match((e as Error).message, new RegExp(`pid ${process.pid}.*servelab sim a`));
        return true;
      });
      await lock.release();
      const again = await lockOutputDir(out, "servelab sim b");
      await again.release();
    });
  });

  it("takes over a lock whose owner is gone", async () => {
    await withTempDir(async (dir) => {
      // A pid that existed and has exited: a finished child's.
      const gone = spawnSync(process.execPath, ["-e", ""]).pid!;
      await writeFile(
        join(dir, ".results.lock"),
        JSON.stringify({ pid: gone, started: "then", command: "x" }),
      );
      const lock = await lockOutputDir(join(dir, "results"), "servelab sim");
      assert.match(await readFile(lock.file, "utf8"), new RegExp(`"pid":${process.pid}`));
      await lock.release();
      await writeFile(join(dir, ".results.lock"), "not a lock");
      await (await lockOutputDir(join(dir, "results"), "servelab sim")).release();
    });
  });

  it("builds beside the directory, marked incomplete, and replaces it only when committed", async () => {
    await withTempDir(async (dir) => {
      const out = join(dir, "arm");
      const first = await buildOutputDir(out);
      await writeFile(join(first.path, "profile_export.jsonl"), "old\n");
      await first.commit();
      assert.deepEqual(await readdir(out), ["profile_export.jsonl"]);
      // A second run that never finishes leaves the first one's files as they were.
      const killed = await buildOutputDir(out);
      await writeFile(join(killed.path, "profile_export.jsonl"), "half");
      assert.ok((await readdir(killed.path)).includes(INCOMPLETE_MARKER));
      assert.equal(await readFile(join(out, "profile_export.jsonl"), "utf8"), "old\n");
      // The next run starts from a fresh directory.
      const next = await buildOutputDir(out);
      assert.deepEqual(await readdir(next.path), [INCOMPLETE_MARKER]);
      await writeFile(join(next.path, "profile_export.jsonl"), "new\n");
      await next.commit();
      assert.deepEqual(await readdir(out), ["profile_export.jsonl"]);
      assert.equal(await readFile(join(out, "profile_export.jsonl"), "utf8"), "new\n");
    });
  });
});
