import assert from "node:assert/strict";
import { access, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ServelabError } from "../errors.ts";
import { loadRecipe } from "../recipe/load.ts";
import { withTempDir, writeLines } from "../testing/fixtures.ts";
import { randomTrace } from "../testing/random-trace.ts";
import { TINY_RECIPE } from "../testing/recipes.ts";
import { readTrace } from "../trace/reader.ts";
import { IN_THREAD_REQUESTS, runArmsInParallel } from "./arm-jobs.ts";
import { prepareSharedTrace, type SharedTrace } from "./shared-trace.ts";

const TWO_ARMS = TINY_RECIPE.replace(
  "arms:\n  only:\n    workers:\n      replicas: 2\n",
  "arms:\n  rr:\n    workers:\n      replicas: 2\n  kv:\n    router: { mode: kv }\n    workers:\n      replicas: 2\n      publish_events_and_metrics: true\n",
);

describe("arms in worker threads", () => {
  it("runs every arm in its own thread and writes each arm's artifacts", async () => {
    await withTempDir(async (dir) => {
      const recipePath = join(dir, "two.yaml");
      await writeFile(recipePath, TWO_ARMS);
      const traceFile = await writeLines(dir, "t.jsonl", randomTrace(5, 30));
      const seen = new Set<string>();
      const results = await runArmsInParallel(
        ["rr", "kv"].map((arm) => ({
          recipePath,
          recipeDir: dir,
          arm,
          traceFile,
          outDir: join(dir, "out", arm),
          perfModel: "polynomial",
          cliCommand: "test",
        })),
        (arm, done, total) => {
          if (done === total) seen.add(arm);
        },
      );
      assert.deepEqual(
        results.map((r) => [r.arm, r.extras.requests]),
        [
          ["rr", 30],
          ["kv", 30],
        ],
      );
      assert.deepEqual([...seen].sort(), ["kv", "rr"]);
      for (const arm of ["rr", "kv"]) await access(join(dir, "out", arm, "profile_export_aiperf.json"));
    });
  });

  it("replays a trace prepared once and shared by the arms' threads, with the same results in one thread, two, or the caller's", async () => {
    await withTempDir(async (dir) => {
      const recipePath = join(dir, "two.yaml");
      await writeFile(recipePath, TWO_ARMS);
      const traceFile = await writeLines(dir, "t.jsonl", randomTrace(7, 40));
      const recipe = await loadRecipe(recipePath);
      const trace = await prepareSharedTrace(recipe, ["rr", "kv"], await readTrace(traceFile));
      assert.ok(trace);
      const run = (out: string, shared?: SharedTrace, parallel?: number, inThreadRequests = 0) =>
        runArmsInParallel(
          ["rr", "kv"].map((arm) => ({
            recipePath,
            recipeDir: dir,
            arm,
            traceFile,
            ...(shared ? { trace: shared } : {}),
            outDir: join(dir, out, arm),
            perfModel: "polynomial",
            cliCommand: "test",
          })),
          () => {},
          parallel,
          undefined,
          undefined,
          { inThreadRequests },
        );
      await run("own");
      await run("shared", trace);
      // One thread takes both jobs in turn: the second run must not depend on what the thread ran before.
      await run("one-thread", trace, 1);
      // A plan this small runs on the calling thread by default, to the same result.
      await run("here", trace, undefined, IN_THREAD_REQUESTS);
      for (const arm of ["rr", "kv"]) {
        const lines = (out: string) => readFile(join(dir, out, arm, "profile_export.jsonl"), "utf8");
        assert.equal(await lines("shared"), await lines("own"), arm);
        assert.equal(await lines("one-thread"), await lines("own"), arm);
        assert.equal(await lines("here"), await lines("own"), arm);
      }
    });
  });

  it("rejects with the arm's error", async () => {
    await withTempDir(async (dir) => {
      const recipePath = join(dir, "two.yaml");
      await writeFile(recipePath, TWO_ARMS);
      const traceFile = await writeLines(dir, "t.jsonl", randomTrace(5, 5));
      await assert.rejects(
        runArmsInParallel(
          [
            {
              recipePath,
              recipeDir: dir,
              arm: "nope",
              traceFile,
              outDir: join(dir, "o"),
              perfModel: "polynomial",
              cliCommand: "t",
            },
          ],
          () => {},
        ),
        (e: unknown) => e instanceof ServelabError && e.code === "USAGE" && /no arm "nope"/.test(e.message),
      );
    });
  });
});
