import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { perfModelChoice } from "../engine/perf-models.ts";
import { loadRecipe } from "../recipe/load.ts";
import { withTempDir } from "../testing/fixtures.ts";
import { writeTinyRecipe } from "../testing/recipes.ts";
import { runSimulation, simProcessIds, startSimOutput } from "./run-sim.ts";

describe("simulation runs", () => {
  it("export into a record export the caller started (a thread booting while the trace is prepared)", async () => {
    await withTempDir(async (dir) => {
      const recipePath = await writeTinyRecipe(dir, 5, 80);
      const recipe = await loadRecipe(recipePath);
      const run = async (out: string, output?: Awaited<ReturnType<typeof startSimOutput>>) =>
        runSimulation({
          recipe,
          recipeDir: dir,
          arm: "only",
          outDir: join(dir, out),
          perfModel: perfModelChoice("polynomial", recipe),
          cliCommand: "test",
          ...(output ? { output } : {}),
        });
      const inline = await run("inline");
      // Told to expect a long run, the export takes a thread of its own.
      const output = await startSimOutput(
        recipe,
        join(dir, "threaded"),
        1e6,
        "test",
        simProcessIds(recipe, "only"),
      );
      const thread = output.exporter;
      let added = 0;
      const threaded = await run("threaded", {
        ...output,
        exporter: {
          add: (r) => {
            added++;
            thread.add(r);
          },
          finish: () => thread.finish(),
        },
      });
      assert.equal(added, 80);
      assert.equal(threaded.extras.requests, 80);
      assert.deepEqual(threaded.summary, inline.summary);
      const lines = (out: string) => readFile(join(dir, out, "profile_export.jsonl"), "utf8");
      assert.equal((await lines("threaded")).split("\n").length, 81);
      assert.equal(await lines("threaded"), await lines("inline"));
    });
  });
});
