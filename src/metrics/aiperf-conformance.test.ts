import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { describe, it } from "node:test";
import { runBench } from "../loadgen/run-bench.ts";
import { benchConfig } from "../testing/bench-config.ts";
import { REPO_ROOT, withTempDir } from "../testing/fixtures.ts";
import { writeTinyRecipe } from "../testing/recipes.ts";
import { runCli } from "../testing/run-cli.ts";
import { UUID_PATTERN } from "./record-ids.ts";

const FIXTURE = join(import.meta.dirname, "fixtures", "aiperf-records.jsonl");
const CHECKER = join(REPO_ROOT, "scripts", "check-aiperf-files.py");
const python = spawnSync("python3", ["--version"]).status === 0;

type Line = { metadata: Record<string, unknown>; metrics: Record<string, unknown>; error: unknown };
const lines = async (file: string): Promise<Line[]> =>
  (await readFile(file, "utf8"))
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Line);
function checkWithPython(dir: string) {
  const r = spawnSync("python3", [CHECKER, dir], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stdout + r.stderr);
}
const kind = (v: unknown) => (v === null ? "null" : Number.isInteger(v) ? "int" : typeof v);

/** Our record's metadata keys in the order and with the types of the hand-written AIPerf fixture. */
async function assertLikeFixture(ours: Line, fixtureIndex: number) {
  const fixture = (await lines(FIXTURE))[fixtureIndex]!;
  assert.deepEqual(Object.keys(ours), Object.keys(fixture));
  assert.deepEqual(Object.keys(ours.metadata), Object.keys(fixture.metadata));
  for (const [key, v] of Object.entries(fixture.metadata)) {
    const mine = ours.metadata[key];
    // Nullable in AIPerf's model either way; otherwise the type must match exactly (integers stay integers).
    if (v === null || mine === null) continue;
    assert.equal(kind(mine), kind(v), `metadata.${key}: ${String(mine)}`);
  }
  assert.match(String(ours.metadata.x_request_id), UUID_PATTERN);
  assert.match(String(ours.metadata.worker_id), /^worker_[0-9a-f]{8}$/);
  assert.match(String(ours.metadata.record_processor_id), /^record_processor_[0-9a-f]{8}$/);
}

describe("AIPerf's record model accepts what servelab writes", () => {
  it("simulated records: epoch nanoseconds from the recipe's start, integers, UUIDs, seeded ids, good_request_count", async () => {
    await withTempDir(async (dir) => {
      const recipe = await writeTinyRecipe(dir, 3, 30);
      const text = await readFile(recipe, "utf8");
      await writeFile(
        recipe,
        text.replace("hardware:", "benchmark: { goodput: { time_to_first_token: 200 } }\nhardware:"),
      );
      const run = (out: string) =>
        runCli(["sim", recipe, "--arm", "only", "--out", join(dir, out), "--perf-model", "polynomial"]);
      const a = await run("a");
      assert.equal(a.code, 0, a.stderr);
      const recs = await lines(join(dir, "a", "profile_export.jsonl"));
      await assertLikeFixture(recs[0]!, 0);
      const start = Date.parse("2026-01-01T00:00:00Z") * 1e6;
      for (const r of recs) {
        for (const k of ["request_start_ns", "request_end_ns"]) assert.ok(Number.isInteger(r.metadata[k]), k);
        assert.ok((r.metadata.request_start_ns as number) >= start);
        assert.deepEqual((r.metrics.good_request_count as { unit: string }).unit, "requests");
      }
      const summary = JSON.parse(await readFile(join(dir, "a", "profile_export_aiperf.json"), "utf8"));
      assert.equal(summary.start_time, "2026-01-01T00:00:00");
      assert.match(summary.end_time, /^2026-01-01T00:/);
      assert.deepEqual(summary.input_config.endpoint.model_names, ["org/tiny"]);
      assert.deepEqual(summary.input_config.input.goodput, { time_to_first_token: 200 });
      assert.equal(summary.input_config.input.fixed_schedule, true);
      assert.equal(summary.input_config.servelab.arm, "only");
      // Seeded: the same command gives the same bytes, ids included.
      const b = await run("b");
      assert.equal(b.code, 0, b.stderr);
      assert.equal(
        await readFile(join(dir, "b", "profile_export.jsonl"), "utf8"),
        await readFile(join(dir, "a", "profile_export.jsonl"), "utf8"),
      );
      if (python) checkWithPython(join(dir, "a"));
    });
  });

  it("measured records: an error record carries its end time; the checker passes on a live run", async () => {
    let n = 0;
    const server = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        // The load generator looks for the server's /metrics first, as AIPerf does; this one has none.
        if (req.method !== "POST") {
          res.writeHead(404).end();
          return;
        }
        if (n++ === 1) {
          res.writeHead(500, { "content-type": "text/plain" });
          res.end("boom");
          return;
        }
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: "hi" } }] })}\n\n`);
        res.write(
          `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 5, completion_tokens: 1 } })}\n\n`,
        );
        res.end("data: [DONE]\n\n");
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      await withTempDir(async (dir) => {
        const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
        const rows = [0, 1, 2].map((i) => ({
          timestamp: i * 10,
          input_length: 20,
          output_length: 1,
          hash_ids: [i],
        }));
        await runBench(benchConfig(url, dir, { rows, goodput: [], exportRaw: true, apiKey: "sk-secret" }), {
          prompts: { blockSize: 512, seed: 1 },
        });
        // The raw export: the request as sent (credentials redacted), status, every response message.
        const raw = (await lines(join(dir, "profile_export_raw.jsonl"))) as unknown as {
          metadata: Record<string, unknown>;
          payload: { model: string };
          request_headers: Record<string, string>;
          status: number;
          responses: { perf_ns: number; text: string }[];
        }[];
        assert.equal(raw.length, 3);
        for (const r of raw) {
          assert.equal(r.payload.model, "m");
          assert.equal(r.request_headers.authorization, "<redacted>");
          assert.ok(r.responses.every((x) => Number.isInteger(x.perf_ns)));
          // A success has its messages; a failure its error (the status says which).
          if (r.status === 200) assert.ok(r.responses.length > 0);
        }
        assert.deepEqual(raw.map((r) => r.status).sort(), [200, 200, 500]);
        assert.ok(raw.some((r) => r.responses.some((x) => x.text.includes('"content":"hi"'))));
        const recs = (await lines(join(dir, "profile_export.jsonl"))).sort(
          (x, y) => (x.metadata.session_num as number) - (y.metadata.session_num as number),
        );
        await assertLikeFixture(recs[0]!, 0);
        const failed = recs.find((r) => r.error !== null)!;
        await assertLikeFixture(failed, 1);
        assert.ok((failed.metadata.request_end_ns as number) >= (failed.metadata.request_start_ns as number));
        if (python) checkWithPython(dir);
      });
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it("the checker itself catches what AIPerf's model would reject", {
    skip: !python && "python3 is not installed",
  }, async () => {
    await withTempDir(async (dir) => {
      const good = (await readFile(FIXTURE, "utf8")).trim().split("\n")[0]!;
      const bad = JSON.parse(good);
      bad.metadata.worker_id = null;
      bad.metadata.request_start_ns = 1.5;
      await writeFile(join(dir, "profile_export.jsonl"), `${good}\n${JSON.stringify(bad)}\n`);
      await writeFile(
        join(dir, "profile_export_aiperf.json"),
        JSON.stringify({
          input_config: { endpoint: { model_names: ["m"] } },
          was_cancelled: false,
          error_summary: [],
          start_time: "x",
          end_time: "y",
        }),
      );
      const r = spawnSync("python3", [CHECKER, dir], { encoding: "utf8" });
      assert.equal(r.status, 1);
      assert.match(r.stdout, /profile_export\.jsonl:2: metadata\.request_start_ns must be int/);
      assert.match(r.stdout, /profile_export\.jsonl:2: metadata\.worker_id is required, got null/);
      assert.doesNotMatch(r.stdout, /jsonl:1:/);
    });
  });
});
