import assert from "node:assert/strict";
import { cp, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { withTempDir, writeLines } from "../testing/fixtures.ts";
import { randomTrace } from "../testing/random-trace.ts";
import { TINY_RECIPE } from "../testing/recipes.ts";
import { runCli, runInProcess } from "../testing/run-cli.ts";

const AB_RECIPE = TINY_RECIPE.replace("  source: mooncake/conversation", "  source: trace.jsonl")
  .replace("hardware:", "benchmark: { goodput: { time_to_first_token: 200 } }\nhardware:")
  .replace(
    "arms:\n  only:\n    workers:\n      replicas: 2\n",
    "arms:\n  rr:\n    workers:\n      replicas: 2\n  kv:\n    router: { mode: kv }\n    workers:\n      replicas: 2\n      publish_events_and_metrics: true\n",
  );

describe("servelab ab and servelab report", () => {
  it("runs the arms, reports the comparison, and rebuilds the same report from the artifacts", async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, "ab.yaml"), AB_RECIPE);
      await writeLines(dir, "trace.jsonl", randomTrace(8, 60));
      const out = join(dir, "out");
      const ab = await runCli(["ab", join(dir, "ab.yaml"), "--out", out, "--perf-model", "polynomial"]);
      assert.equal(ab.code, 0, ab.stderr);
      assert.match(ab.stdout, /^kv vs rr: .* goodput .*SLO attainment/m);
      assert.match(ab.stdout, /^ratio: kv \/ rr\n[^\n]*\n[^\n]*metric \(avg\).*ratio \[95 % CI\]/m);
      assert.match(ab.stdout, /TTFT \(ms\)/);
      assert.match(ab.stdout, /Report: .*report\.html/);
      const md = await readFile(join(out, "report.md"), "utf8");
      assert.match(md, /^# tiny: rr vs kv\n\n## Verdict\n\n\*\*kv vs rr: /);
      assert.match(md, /## kv vs rr/);
      assert.match(md, /\| rr \| 60 \| 0 \|/);
      assert.match(md, /## Trace[\s\S]*\| requests \| 60 \|/);
      const html = await readFile(join(out, "report.html"), "utf8");
      assert.match(html, /<table>/);
      assert.match(html, /Recipe<\/h2>/);
      const again = await runInProcess([
        "report",
        join(out, "arms", "rr"),
        join(out, "arms", "kv"),
        "--out",
        join(dir, "rep"),
      ]);
      assert.equal(again.code, 0, again.stderr);
      const md2 = await readFile(join(dir, "rep", "report.md"), "utf8");
      // A second A/B into the same directory needs --force.
      const again2 = await runInProcess([
        "ab",
        join(dir, "ab.yaml"),
        "--out",
        out,
        "--perf-model",
        "polynomial",
      ]);
      assert.equal(again2.code, 2);
      assert.match(again2.stderr, /^error\[USAGE\]: --out .* is not empty/m);
      // An unfinished run is refused, or reported with a warning when asked for.
      const cut = join(dir, "cut");
      await cp(join(out, "arms", "kv"), cut, { recursive: true });
      const lines = (await readFile(join(cut, "profile_export.jsonl"), "utf8")).split("\n");
      await writeFile(join(cut, "profile_export.jsonl"), lines.slice(0, 20).join("\n"));
      await writeFile(join(cut, "servelab_incomplete"), "");
      const refused = await runInProcess([
        "report",
        join(out, "arms", "rr"),
        cut,
        "--out",
        join(dir, "rep2"),
      ]);
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /^error\[RUN_INCOMPLETE\]: .*cut holds a run that did not finish/m);
      const allowed = await runInProcess([
        "report",
        join(out, "arms", "rr"),
        cut,
        "--out",
        join(dir, "rep2"),
        "--allow-incomplete",
      ]);
      assert.equal(allowed.code, 0, allowed.stderr);
      assert.match(allowed.stdout, /warning: arm cut is an unfinished run: 20 records/);
      assert.match(allowed.stdout, /warning: the arms measured different numbers of requests: rr 60, cut 20/);
      assert.match(await readFile(join(dir, "rep2", "report.md"), "utf8"), /## Before reading on/);
      // Same statistics from the artifacts as from the run (same seed): the comparison section is identical.
      const section = (t: string) => t.slice(t.indexOf("## kv vs rr"), t.indexOf("## Charts"));
      assert.equal(section(md2), section(md));
    });
  });

  it("sweeps the load on several traces, and the report gives each arm's knee and the A/B on each trace", async () => {
    await withTempDir(async (dir) => {
      const recipe = AB_RECIPE.replace(
        "  source: trace.jsonl",
        "  source: trace.jsonl\n  synthesis: { num_requests: 80 }\n  seed: 1",
      );
      await writeFile(join(dir, "ab.yaml"), recipe);
      await writeLines(dir, "trace.jsonl", randomTrace(8, 60));
      const out = join(dir, "out");
      const env = { XDG_CACHE_HOME: join(dir, "cache") };
      const ab = await runCli(
        [
          "ab",
          join(dir, "ab.yaml"),
          "--out",
          out,
          "--perf-model",
          "polynomial",
          "--load",
          "4,1",
          "--seeds",
          "2",
        ],
        env,
      );
      assert.equal(ab.code, 0, ab.stderr);
      assert.match(ab.stdout, /^kv vs rr: .*, knee .* → .*\.$/m);
      assert.match(ab.stdout, /Simulated 8 arm runs in .* \(2 traces\)/);
      const manifest = JSON.parse(await readFile(join(out, "experiment.json"), "utf8"));
      assert.deepEqual(manifest.loads, [1, 4]);
      assert.deepEqual(manifest.seeds, [1, 2]);
      assert.equal(manifest.runs.length, 8);
      // Every run left AIPerf's artifacts where the manifest says.
      for (const run of manifest.runs)
        assert.ok((await readFile(join(out, run.dir, "profile_export_aiperf.json"), "utf8")).length > 0);
      // The two seeds replayed different traces.
      const first = (seed: number) =>
        readFile(join(out, "points", "load-4", `seed-${seed}`, "rr", "profile_export.jsonl"), "utf8");
      assert.notEqual(await first(1), await first(2));
      const md = await readFile(join(out, "report.md"), "utf8");
      for (const heading of [
        "## Verdict",
        "## Headroom: the knee of each arm",
        "## Capacity curves",
        "## Replicates",
      ])
        assert.ok(md.includes(heading), heading);
      assert.match(md, /\| rr \| ×4 \|/);
      assert.match(md, /\| ×4 \| .* → .* \| .* → .* \| .*\[.*\] \|/);
      for (const chart of ["capacity", "latency-vs-load", "pareto"])
        assert.ok((await readFile(join(out, "charts", `${chart}.png`))).length > 1000, chart);
      // The report rebuilds the whole sweep from the directory alone.
      const again = await runInProcess(["report", out, "--out", join(dir, "rep")]);
      assert.equal(again.code, 0, again.stderr);
      const md2 = await readFile(join(dir, "rep", "report.md"), "utf8");
      const capacity = (t: string) => t.slice(t.indexOf("## Headroom"), t.indexOf("## kv vs rr"));
      assert.equal(capacity(md2), capacity(md));
      // Replicates need a trace the recipe synthesizes.
      await writeFile(join(dir, "raw.yaml"), AB_RECIPE);
      const raw = await runInProcess(
        ["ab", join(dir, "raw.yaml"), "--out", join(dir, "o2"), "--seeds", "2"],
        env,
      );
      assert.equal(raw.code, 2);
      assert.match(raw.stderr, /^error\[USAGE\]: --seeds synthesizes the trace/m);
    });
  });

  it("reruns the A/B under the step-time bounds and says the polynomial model is uncalibrated", async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, "ab.yaml"), AB_RECIPE);
      await writeLines(dir, "trace.jsonl", randomTrace(3, 30));
      const out = join(dir, "out");
      const ab = await runCli([
        "ab",
        join(dir, "ab.yaml"),
        "--out",
        out,
        "--perf-bounds",
        "nominal,pessimistic",
      ]);
      assert.equal(ab.code, 0, ab.stderr);
      assert.match(ab.stderr, /warning: uncalibrated step-time model/);
      assert.match(ab.stdout, /How sure: the verdict across the step-time bounds/);
      assert.match(
        ab.stdout,
        /^UNCALIBRATED step-time model[\s\S]*Step-time models:\n {2}rr: aggregated: polynomial/,
      );
      const md = await readFile(join(out, "report.md"), "utf8");
      assert.match(md, /\*\*UNCALIBRATED/);
      assert.match(md, /\| nominal \|[\s\S]*\| pessimistic \|/);
      assert.match(md, /rr: aggregated: polynomial — uncalibrated, bounds nominal/);
      const bad = await runInProcess([
        "ab",
        join(dir, "ab.yaml"),
        "--out",
        join(dir, "x"),
        "--perf-bounds",
        "best",
      ]);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /^error\[USAGE\].*--perf-bounds/m);
    });
  });
});
