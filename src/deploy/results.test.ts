import assert from "node:assert/strict";
import { cp, mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { resolveArtifactDir } from "../experiment/artifacts.ts";
import { deploySettings } from "../recipe/deploy-schema.ts";
import { loadRecipe } from "../recipe/load.ts";
import { withTempDir } from "../testing/fixtures.ts";
import { FOUNDING_RECIPE } from "../testing/recipes.ts";
import { runInProcess } from "../testing/run-cli.ts";
import { effectiveDeploy } from "./render.ts";
import { armOfRun, nextSteps, resultsCommands } from "./results.ts";

// Two run directories as the perf Jobs leave them on the volume (`<epoch>_<job-name>/`), copied back.
const RESULTS = join(import.meta.dirname, "fixtures", "cluster-results");
const AGG_RUN = join(RESULTS, "1767225600_agg-round-robin-dsv32-nvfp4-bench");
const DISAGG_RUN = join(RESULTS, "1767232800_disagg-kv-dsv32-nvfp4-bench");
const TRACE_DIR = "conversation_trace_synth_16.00x1+10.00_speedup1_maxisl110000";

const recipe = await loadRecipe(FOUNDING_RECIPE);

describe("deploy results", () => {
  it("prints kubectl commands copying every run of each arm's perf Job off the volume", () => {
    const lines = resultsCommands(recipe, effectiveDeploy(recipe, { namespace: "bench" }), {
      out: "results/cluster",
      recipeFile: "recipes/dsv32-wideep-routing.yaml",
    });
    const text = lines.join("\n");
    assert.match(text, /kubectl -n bench run servelab-volume .*"claimName":"model-cache"/);
    assert.match(
      text,
      /kubectl -n bench exec servelab-volume -- ls \/model-cache\/perf \| grep '_disagg-kv-dsv32-nvfp4-bench\$'\); do kubectl -n bench cp servelab-volume:\/model-cache\/perf\/\$run results\/cluster\/\$run/,
    );
    assert.match(text, /_agg-round-robin-dsv32-nvfp4-bench\$/);
    assert.match(text, /kubectl -n bench delete pod servelab-volume/);
    assert.match(text, /servelab report --recipe recipes\/dsv32-wideep-routing\.yaml results\/cluster\/\*$/);
    const generic = resultsCommands(undefined, deploySettings(undefined), { out: "out" }).join("\n");
    assert.match(generic, /grep -- '-bench\$'/);
    assert.doesNotMatch(generic, / -n /);
  });

  it("lists the steps after render: secret, model cache, trace onto the volume, each arm and its Job", () => {
    const steps = nextSteps(effectiveDeploy(recipe), {
      out: "m",
      recipeFile: "r.yaml",
      traceName: "t.jsonl",
      traceDir: "/model-cache/traces",
      arms: ["agg-round-robin", "disagg-kv"],
    });
    const at = (re: RegExp) => steps.findIndex((l) => re.test(l));
    assert.ok(at(/create secret generic hf-token-secret/) === 0);
    assert.ok(
      at(/apply -f m\/model-cache\//) < at(/servelab trace synthesize --recipe r\.yaml --output t\.jsonl/),
    );
    assert.ok(
      at(/cp t\.jsonl servelab-volume:\/model-cache\/traces\/t\.jsonl/) <
        at(/apply -f m\/agg-round-robin\/deploy\.yaml/),
    );
    assert.ok(
      at(/apply -f m\/agg-round-robin\/perf\.yaml/) < at(/logs -f job\/agg-round-robin-dsv32-nvfp4-bench/),
    );
    assert.ok(at(/delete -f m\/agg-round-robin\/deploy\.yaml/) < at(/apply -f m\/disagg-kv\/deploy\.yaml/));
    assert.equal(steps.at(-1), "servelab deploy results r.yaml");
  });

  it("`servelab deploy results` prints them for the chosen arm", async () => {
    const r = await runInProcess(["deploy", "results", FOUNDING_RECIPE, "--arm", "disagg-kv"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /disagg-kv-dsv32-nvfp4-bench/);
    assert.doesNotMatch(r.stdout, /agg-round-robin-dsv32-nvfp4-bench/);
    const bad = await runInProcess(["deploy", "results", FOUNDING_RECIPE, "--arm", "nope"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /error\[USAGE\]/);
  });

  it("finds the AIPerf exports inside a copied run directory, with what the Job recorded", async () => {
    const run = await resolveArtifactDir(DISAGG_RUN);
    assert.equal(run.exportDir, join(DISAGG_RUN, TRACE_DIR));
    assert.deepEqual(run.run, { deployment: "disagg-kv-dsv32-nvfp4" });
    assert.equal(armOfRun(recipe, effectiveDeploy(recipe), run.run!), "disagg-kv");
    assert.equal(armOfRun(recipe, effectiveDeploy(recipe), { deployment: "other" }), undefined);
    const plain = await resolveArtifactDir(join(DISAGG_RUN, TRACE_DIR));
    assert.deepEqual(plain, { dir: join(DISAGG_RUN, TRACE_DIR), exportDir: join(DISAGG_RUN, TRACE_DIR) });
    await withTempDir(async (dir) => {
      await cp(DISAGG_RUN, dir, { recursive: true });
      await mkdir(join(dir, "second"));
      await cp(join(dir, TRACE_DIR, "profile_export.jsonl"), join(dir, "second", "profile_export.jsonl"));
      await assert.rejects(resolveArtifactDir(dir), /2 AIPerf export directories/);
    });
  });

  it("`servelab report --recipe` reads the run directories as the recipe's arms, in its order", async () => {
    await withTempDir(async (out) => {
      // Given disagg first, as a glob might; the recipe's order makes agg the baseline.
      const r = await runInProcess([
        "report",
        "--recipe",
        FOUNDING_RECIPE,
        DISAGG_RUN,
        AGG_RUN,
        "--out",
        out,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /disagg-kv vs agg-round-robin/);
      const md = await readFile(join(out, "report.md"), "utf8");
      assert.match(md, /dsv32-wideep-routing: agg-round-robin vs disagg-kv/);
      const html = await readFile(join(out, "report.html"), "utf8");
      assert.match(html, /<h2>Recipe<\/h2>/);
    });
  });
});
