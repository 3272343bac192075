import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ServelabError } from "../errors.ts";
import { withTempDir } from "../testing/fixtures.ts";
import { FOUNDING_RECIPE, lineOf, TINY_RECIPE } from "../testing/recipes.ts";
import { formatRecipePath, loadRecipe, parseRecipe, resolvedRecipeYaml } from "./load.ts";

function errorOf(fn: () => unknown): ServelabError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ServelabError, `expected a ServelabError, got ${e}`);
    return e;
  }
  assert.fail("no error was thrown");
}

describe("parseRecipe", () => {
  it("reports YAML syntax errors as RECIPE_PARSE with file:line:col", () => {
    const text = TINY_RECIPE.replace("  model_path: org/tiny", "  model_path: @org/tiny");
    const e = errorOf(() => parseRecipe(text, "r.yaml"));
    assert.equal(e.code, "RECIPE_PARSE");
    assert.equal(
      e.message,
      `r.yaml:${lineOf(text, "model_path")}:15: not valid YAML: Plain value cannot start with reserved character @`,
    );
  });

  it("reports a duplicated key as a YAML error", () => {
    const e = errorOf(() => parseRecipe(`${TINY_RECIPE}name: again\n`, "r.yaml"));
    assert.equal(e.code, "RECIPE_PARSE");
    assert.match(
      e.message,
      new RegExp(`^r\\.yaml:${lineOf(`${TINY_RECIPE}name: again`, "name: again")}:1: .*unique`),
    );
  });

  it("rejects an unknown key anywhere, naming its path and line and the keys allowed there", () => {
    const text = TINY_RECIPE.replace(
      "      replicas: 2\n",
      "      replicas: 2\n      engine:\n        kv_cache_config:\n          tokens_per_blok: 64\n",
    );
    const e = errorOf(() => parseRecipe(text, "r.yaml"));
    assert.equal(e.code, "RECIPE_INVALID");
    assert.equal(e.details.length, 1, e.details.join("\n"));
    assert.equal(
      e.details[0],
      `r.yaml:${lineOf(text, "tokens_per_blok")}:11: arms.only.workers.engine.kv_cache_config.tokens_per_blok: ` +
        "unknown key (did you mean tokens_per_block?); allowed here: dtype, enable_block_reuse, free_gpu_memory_fraction, tokens_per_block, max_tokens",
    );
  });

  it("keeps real TensorRT-LLM options it does not model, apart, and still fails a misspelt one", () => {
    const text = TINY_RECIPE.replace(
      "      replicas: 2\n",
      "      replicas: 2\n      engine:\n        speculative_config: { decoding_type: MTP, num_nextn_predict_layers: 1 }\n        trust_remote_code: true\n",
    );
    const engine = parseRecipe(text, "r.yaml").arms.only!.workers!.engine;
    assert.deepEqual(engine.not_modelled, {
      speculative_config: { decoding_type: "MTP", num_nextn_predict_layers: 1 },
      trust_remote_code: true,
    });
    const typo = errorOf(() => parseRecipe(text.replace("trust_remote_code", "max_batch_sise"), "r.yaml"));
    assert.match(typo.details[0]!, /max_batch_sise: unknown key \(did you mean max_batch_size\?\)/);
  });

  it("gives one line per unknown key, in source order", () => {
    const text = `zeta: 1\n${TINY_RECIPE}alpha: 2\n`;
    const e = errorOf(() => parseRecipe(text, "r.yaml"));
    assert.deepEqual(
      e.details.map((d) => d.split(": ")[0]),
      [`r.yaml:1:1`, `r.yaml:${lineOf(text, "alpha")}:1`],
    );
    assert.match(
      e.details[0]!,
      / zeta: unknown key; allowed here: name, description, model, hardware, trace/,
    );
  });

  it("counts problems in the message", () => {
    const text = TINY_RECIPE.replace("replicas: 2", "replicas: 0").replace(
      "hidden_size: 256",
      "hidden_size: big",
    );
    const e = errorOf(() => parseRecipe(text, "r.yaml"));
    assert.equal(e.message, "r.yaml: recipe does not match the schema (2 problems)");
    assert.match(e.details[0]!, /model\.architecture\.hidden_size: .*expected number/);
    assert.match(e.details[1]!, /arms\.only\.workers\.replicas: /);
  });

  it("rejects an empty file and a file that is not a mapping", () => {
    assert.equal(errorOf(() => parseRecipe("# nothing\n", "r.yaml")).message, "r.yaml: the recipe is empty");
    const list = errorOf(() => parseRecipe("- a\n", "r.yaml"));
    assert.equal(list.code, "RECIPE_INVALID");
    assert.match(list.details[0]!, /^r\.yaml:1:1: \(root\): .*expected object/);
  });

  it("lets groups share settings through merge keys, and locates errors inside merged blocks", () => {
    const arms = `  a:
    workers: &dep
      gpus_per_worker: 4
      engine: { tensor_parallel_size: 4, enable_attention_dp: true }
  b:
    prefill:
      <<: *dep
      publish_events_and_metrics: true
    decode:
      <<: *dep
      replicas: 0
`;
    const text = TINY_RECIPE.slice(0, TINY_RECIPE.indexOf("  only:")) + arms;
    const e = errorOf(() => parseRecipe(text, "r.yaml"));
    assert.deepEqual(e.details, [
      `r.yaml:${lineOf(text, "replicas: 0")}:7: arms.b.decode.replicas: Too small: expected number to be >=1`,
    ]);
    const ok = parseRecipe(text.replace("replicas: 0", "replicas: 1"), "r.yaml");
    assert.equal(ok.arms.b!.prefill!.engine.moe_expert_parallel_size, 4);
    assert.equal(ok.arms.b!.decode!.gpus_per_worker, 4);
    // The resolved form spells every group out instead of pointing at shared nodes.
    assert.doesNotMatch(resolvedRecipeYaml(ok), /[&*<]/);
  });
});

describe("loadRecipe", () => {
  it("reports a missing file as FILE_NOT_FOUND", async () => {
    await assert.rejects(loadRecipe("no/such/recipe.yaml"), (e: unknown) => {
      assert.ok(e instanceof ServelabError);
      assert.equal(e.code, "FILE_NOT_FOUND");
      assert.match(e.message, /no\/such\/recipe\.yaml/);
      return true;
    });
  });

  it("reports a directory as FILE_READ", async () => {
    await withTempDir(async (dir) => {
      await mkdir(join(dir, "r.yaml"));
      await assert.rejects(loadRecipe(join(dir, "r.yaml")), { code: "FILE_READ" });
    });
  });

  it("names the file it was given in every problem", async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, "bad.yaml");
      const text = (await readFile(FOUNDING_RECIPE, "utf8")).replace(
        "max_batch_size: 32\n",
        "max_batch_size: -32\n",
      );
      await writeFile(file, text);
      await assert.rejects(loadRecipe(file), (e: unknown) => {
        assert.ok(e instanceof ServelabError);
        assert.deepEqual(e.details, [
          `${file}:${lineOf(text, "max_batch_size: -32")}:9: arms.disagg-kv.prefill.engine.max_batch_size: ` +
            "Too small: expected number to be >=1",
        ]);
        return true;
      });
    });
  });
});

describe("formatRecipePath", () => {
  it("joins keys with dots and writes list indexes in brackets", () => {
    assert.equal(formatRecipePath([]), "(root)");
    assert.equal(formatRecipePath(["arms", "a", "workers", "replicas"]), "arms.a.workers.replicas");
    assert.equal(formatRecipePath(["list", 2, "x"]), "list[2].x");
  });
});
