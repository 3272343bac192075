import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { withTempDir } from "../testing/fixtures.ts";
import { writeTinyRecipe } from "../testing/recipes.ts";
import { runCli } from "../testing/run-cli.ts";

describe("servelab sim", () => {
  it("runs an arm end to end and writes AIPerf's artifacts, byte-identical on rerun", async () => {
    await withTempDir(async (dir) => {
      const recipe = await writeTinyRecipe(dir, 3, 60);
      const run = (out: string) =>
        runCli(["sim", recipe, "--arm", "only", "--out", join(dir, out), "--json"]);
      const a = await run("a");
      assert.equal(a.code, 0, a.stderr);
      const summary = JSON.parse(a.stdout);
      assert.equal(summary.request_count.avg, 60);
      assert.equal(summary.time_to_first_token.unit, "ms");
      assert.ok(summary.time_to_first_token.p99 >= summary.time_to_first_token.p50);
      assert.equal(summary.servelab.arm, "only");
      assert.equal(summary.servelab.requests, 60);
      const lines = (await readFile(join(dir, "a", "profile_export.jsonl"), "utf8")).trim().split("\n");
      assert.equal(lines.length, 60);
      assert.ok(JSON.parse(lines[0]!).metrics.time_to_first_token.value > 0);
      const csv = await readFile(join(dir, "a", "profile_export_aiperf.csv"), "utf8");
      assert.match(csv, /^Metric,avg,min,max,p1,p5,p10,p25,p50,p75,p90,p95,p99,std/);
      await run("b");
      const read = (out: string, f: string) => readFile(join(dir, out, f), "utf8");
      for (const f of ["profile_export.jsonl", "profile_export_aiperf.csv"])
        assert.equal(await read("a", f), await read("b", f), f);
      // The JSON records the command line, which names the output directory; everything else is identical.
      const withoutCommand = async (out: string) =>
        (await read(out, "profile_export_aiperf.json")).replace(/"cli_command": ".*"/, "");
      assert.equal(await withoutCommand("a"), await withoutCommand("b"));
    });
  });

  it("names the arms when asked for one that does not exist", async () => {
    await withTempDir(async (dir) => {
      const recipe = await writeTinyRecipe(dir, 3, 5);
      const r = await runCli(["sim", recipe, "--arm", "nope", "--out", join(dir, "o")]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /^error\[USAGE\]: recipe tiny has no arm "nope"; arms: only/);
    });
  });
});
