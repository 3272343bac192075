import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseRecipe } from "../recipe/load.ts";
import { withTempDir, writeLines } from "../testing/fixtures.ts";
import { randomTrace } from "../testing/random-trace.ts";
import { TINY_RECIPE } from "../testing/recipes.ts";
import { prepareRecipeTrace } from "./recipe-trace.ts";

const withSynthesis = (seed: number) =>
  TINY_RECIPE.replace(
    "  source: mooncake/conversation\n",
    `  source: src.jsonl\n  synthesis: { num_requests: 50, prefix_len_multiplier: 2 }\n  seed: ${seed}\n`,
  );

describe("recipe trace cache", () => {
  it("synthesizes once per content key and reuses the file", async () => {
    await withTempDir(async (dir) => {
      await writeLines(dir, "src.jsonl", randomTrace(1, 80));
      const cacheDir = join(dir, "cache");
      const first = await prepareRecipeTrace(parseRecipe(withSynthesis(1), "r.yaml"), dir, { cacheDir });
      const again = await prepareRecipeTrace(parseRecipe(withSynthesis(1), "r.yaml"), dir, { cacheDir });
      const other = await prepareRecipeTrace(parseRecipe(withSynthesis(2), "r.yaml"), dir, { cacheDir });
      assert.equal(first.cached, false);
      assert.equal(again.cached, true);
      assert.equal(again.file, first.file);
      assert.notEqual(other.key, first.key);
      assert.equal((await readFile(first.file, "utf8")).trim().split("\n").length, 50);
    });
  });

  it("replays a recipe without synthesis from its source", async () => {
    await withTempDir(async (dir) => {
      const src = await writeLines(dir, "src.jsonl", randomTrace(1, 10));
      const plain = TINY_RECIPE.replace("  source: mooncake/conversation", "  source: src.jsonl");
      const t = await prepareRecipeTrace(parseRecipe(plain, "r.yaml"), dir, { cacheDir: join(dir, "c") });
      assert.equal(t.file, src);
    });
  });
});
