import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { loadRecipe } from "../../recipe/load.ts";
import { withTempDir } from "../../testing/fixtures.ts";
import { FOUNDING_RECIPE } from "../../testing/recipes.ts";
import { runCli } from "../../testing/run-cli.ts";
import { waitFor } from "../../testing/wait.ts";
import { readDiscovery } from "../frontend/discovery.ts";
import { type RunningStack, startStack } from "./run-stack.ts";
import { planStack } from "./stack-plan.ts";

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function metric(stack: RunningStack, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${stack.endpoint}/metrics`)).text();
  const m = pattern.exec(text);
  return m ? Number(m[1]) : 0;
}

describe("servelab up: the founding arms as real processes on loopback", { timeout: 240_000 }, async () => {
  const recipe = await loadRecipe(FOUNDING_RECIPE);

  it("serves the disaggregated arm through prefill → KV hand-over → decode, its index fed by KV events", async () => {
    await withTempDir(async (dir) => {
      const plan = planStack(recipe, "disagg-kv", 0.125);
      const discoveryFile = join(dir, "stack.json");
      const stack = await startStack({
        plan,
        recipePath: FOUNDING_RECIPE,
        speedupRatio: 20,
        port: 0,
        discoveryFile,
      });
      try {
        const discovery = await readDiscovery(discoveryFile);
        assert.equal(discovery.frontend, stack.endpoint);
        assert.deepEqual(
          discovery.workers.map((w) => `${w.id}:${w.role}:${w.kv_events.length}`),
          ["prefill-0:prefill:1", "decode-0:decode:0"],
        );
        const art = join(dir, "bench");
        const r = await runCli([
          "bench",
          "--url",
          stack.endpoint,
          "-m",
          plan.model,
          "--synthetic-input-tokens-mean",
          "600",
          "--synthetic-input-tokens-stddev",
          "0",
          "--output-tokens-mean",
          "4",
          "--output-tokens-stddev",
          "0",
          "--request-count",
          "4",
          "--concurrency",
          "2",
          "--streaming",
          "--ui",
          "none",
          "--random-seed",
          "1",
          "--artifact-dir",
          art,
        ]);
        assert.equal(r.code, 0, r.stderr);
        const records = (await readFile(join(art, "profile_export.jsonl"), "utf8")).trim().split("\n");
        assert.equal(records.length, 4);
        for (const line of records) assert.equal(JSON.parse(line).error, null, line);
        const prefillLog = await (await fetch(`${discovery.workers[0]!.url}/servelab/requests`)).text();
        const decodeLog = await (await fetch(`${discovery.workers[1]!.url}/servelab/requests`)).text();
        assert.equal(
          prefillLog.trim().split("\n").length,
          4,
          "every request's prefill leg ran on the prefill worker",
        );
        assert.equal(decodeLog.trim().split("\n").length, 4);
        const stored = await metric(
          stack,
          /dynamo_component_kv_cache_events_applied\{event_type="stored",status="ok"\} (\d+)/,
        );
        assert.ok(stored >= 1, "the prefill worker's KV events reached the frontend's index");
      } finally {
        await stack.stop();
      }
      for (const p of [stack.frontend, ...stack.workers])
        assert.equal(alive(p.pid), false, `${p.id} still runs`);
    });
  });

  it("serves the aggregated arm, and its processes die with a parent that was killed", async () => {
    await withTempDir(async (dir) => {
      const discoveryFile = join(dir, "stack.json");
      const { spawn } = await import("node:child_process");
      const { REPO_ROOT } = await import("../../testing/fixtures.ts");
      const up = spawn(
        process.execPath,
        [
          join(REPO_ROOT, "bin/servelab.js"),
          "up",
          FOUNDING_RECIPE,
          "--arm",
          "agg-round-robin",
          "--scale",
          "0.125",
          "--port",
          "0",
          "--speedup-ratio",
          "20",
          "--discovery-file",
          discoveryFile,
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      let out = "";
      up.stdout.on("data", (c) => {
        out += String(c);
      });
      up.stderr.on("data", (c) => {
        out += String(c);
      });
      await waitFor(
        () => {
          if (up.exitCode !== null) assert.fail(`up exited:\n${out}`);
          return /servelab up: endpoint (\S+)\/v1/.test(out);
        },
        "up to come up",
        180_000,
        100,
      );
      const endpoint = /servelab up: endpoint (\S+)\/v1/.exec(out)![1]!;
      const res = await fetch(`${endpoint}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: recipe.model.served_model_name,
          prompt: "a live aggregated worker",
          max_tokens: 3,
        }),
      });
      assert.equal(res.status, 200);
      assert.equal(
        ((await res.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens,
        3,
      );
      const discovery = await readDiscovery(discoveryFile);
      const pids = discovery.workers.map((w) => w.pid!);
      assert.equal(pids.length, 1);
      up.kill("SIGKILL");
      await waitFor(() => !pids.some(alive), "the workers to exit with their parent", 15_000, 100);
    });
  });
});
