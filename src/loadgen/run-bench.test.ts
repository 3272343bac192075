import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { describe, it } from "node:test";
import { UUID_PATTERN } from "../metrics/record-ids.ts";
import { benchConfig } from "../testing/bench-config.ts";
import { withTempDir } from "../testing/fixtures.ts";
import { loadCorpus, loadDeepSeekTokenizer, PromptSynthesizer } from "./prompts.ts";
import { connectionLimitFromEnv, runBench } from "./run-bench.ts";

const tokenizer = await loadDeepSeekTokenizer();
const prompts = new PromptSynthesizer(tokenizer, await loadCorpus(), { seed: 1 });
/** The same prompts, built by the load generator's own thread. */
const PROMPTS = { blockSize: 512, seed: 1 };

/** A streaming chat server: first token after `ttftMs`, then one every `itlMs`; logs what it received. */
async function sseServer(ttftMs: number, itlMs: number) {
  const received: { id: string; prompt: string; body: string }[] = [];
  const streams = { active: 0, peak: 0 };
  const server: Server = createServer((req, res) => {
    // The load generator looks for the server's /metrics first, as AIPerf does; this one has none.
    if (req.method !== "POST") {
      res.writeHead(404).end();
      return;
    }
    streams.active++;
    streams.peak = Math.max(streams.peak, streams.active);
    res.on("close", () => streams.active--);
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", async () => {
      const json = JSON.parse(body);
      received.push({
        id: String(req.headers["x-request-id"]),
        prompt: json.messages[0].content,
        body,
      });
      res.writeHead(200, { "content-type": "text/event-stream" });
      const n = json.max_completion_tokens ?? 4;
      await new Promise((r) => setTimeout(r, ttftMs));
      for (let i = 0; i < n; i++) {
        res.write(
          `data: ${JSON.stringify({ object: "chat.completion.chunk", choices: [{ index: 0, delta: { content: " x" } }] })}\n\n`,
        );
        if (i < n - 1) await new Promise((r) => setTimeout(r, itlMs));
      }
      res.write(
        `data: ${JSON.stringify({ object: "chat.completion.chunk", choices: [], usage: { prompt_tokens: 10, completion_tokens: n } })}\n\n`,
      );
      res.end("data: [DONE]\n\n");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, received, streams, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe("servelab bench runner", () => {
  it("replays a fixed schedule on time and measures what the server did", async () => {
    const server = await sseServer(30, 5);
    try {
      await withTempDir(async (dir) => {
        const rows = [0, 1, 2, 3, 4, 5].map((i) => ({
          timestamp: 1000 + i * 40,
          input_length: 600,
          output_length: 5,
          hash_ids: i % 2 === 0 ? [7, 8] : [7, 9],
        }));
        const result = await runBench(
          benchConfig(server.url, dir, { rows, sliceDurationS: 0.08, useServerTokenCount: false }),
          {
            prompts: PROMPTS,
          },
        );
        assert.equal(result.summary.request_count?.avg, 6);
        // AIPerf's timeslices: each request in the window its start falls in; together they hold every request.
        const sliced = JSON.parse(await readFile(join(dir, "profile_export_aiperf_timeslices.json"), "utf8"));
        assert.ok(sliced.timeslices.length >= 2, JSON.stringify(sliced.timeslices.length));
        assert.deepEqual(
          sliced.timeslices.map((t: { timeslice_index: number }) => t.timeslice_index),
          sliced.timeslices.map((_: unknown, i: number) => i),
        );
        assert.equal(
          sliced.timeslices.reduce(
            (n: number, t: { request_count: { avg: number } }) => n + t.request_count.avg,
            0,
          ),
          6,
        );
        assert.match(
          await readFile(join(dir, "profile_export_aiperf_timeslices.csv"), "utf8"),
          /^Timeslice,Metric,Unit,Stat,Value\r\n0,/,
        );
        // Sends follow the schedule, 40 ms apart: in order, none before its time (the span from the first send to the
        // last is at least the scheduled 200 ms less the first send's lag). How late a send may be is load, not
        // the load generator: the lag targets live in bench:loadgen.
        assert.ok(result.lag !== null && result.lag.p50 >= 0, `lag ${JSON.stringify(result.lag)}`);
        const sends = (await readFile(join(dir, "profile_export.jsonl"), "utf8"))
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l).metadata.request_start_ns / 1e6)
          .sort((a, b) => a - b);
        assert.ok(sends.at(-1)! - sends[0]! >= 200 - result.lag!.max - 1, `sends ${sends}`);
        const ttft = result.summary.time_to_first_token!;
        assert.ok(ttft.min >= 30, JSON.stringify(ttft));
        assert.equal(result.summary.output_sequence_length?.avg, 5);
        // Identical hash ids give identical prompt prefixes.
        const [a, b, c] = server.received.map((r) => r.prompt);
        assert.equal(a, c);
        assert.notEqual(a, b);
        const shared = prompts.prompt([7], 512);
        assert.ok(a!.startsWith(shared) && b!.startsWith(shared));
        const lines = (await readFile(join(dir, "profile_export.jsonl"), "utf8")).trim().split("\n");
        assert.equal(lines.length, 6);
        // ISL as AIPerf counts it: the prompt the server received, encoded again.
        const islOf = new Map(
          lines.map((l) => {
            const r = JSON.parse(l);
            return [r.metadata.x_request_id, r.metrics.input_sequence_length.value];
          }),
        );
        for (const r of server.received) assert.equal(islOf.get(r.id), tokenizer.encode(r.prompt).length);
        // inputs.json holds every body exactly as the server received it, in AIPerf's layout.
        const text = await readFile(join(dir, "inputs.json"), "utf8");
        assert.ok(text.startsWith('{\n  "data": [\n    {\n      "session_id": "'), text.slice(0, 80));
        const inputs = JSON.parse(text) as { data: { session_id: string; payloads: unknown[] }[] };
        // Request ids are uuid4s, as AIPerf's; inputs.json lists the sessions in send order.
        const bySend = lines
          .map((l) => JSON.parse(l).metadata)
          .sort((x, y) => x.session_num - y.session_num)
          .map((m) => m.conversation_id);
        assert.deepEqual(
          inputs.data.map((d) => d.session_id),
          bySend,
        );
        for (const id of bySend) assert.match(id, UUID_PATTERN);
        for (const r of server.received) {
          const entry = inputs.data.find((d) => d.session_id === r.id)!;
          assert.deepEqual(entry.payloads, [JSON.parse(r.body)]);
        }
      });
    } finally {
      await server.close();
    }
  });

  it("opens at most the connection limit's sockets for a burst due at one timestamp", async () => {
    const server = await sseServer(20, 1);
    try {
      await withTempDir(async (dir) => {
        const rows = Array.from({ length: 6 }, (_, i) => ({
          timestamp: 0,
          input_length: 100,
          output_length: 3,
          hash_ids: [i],
        }));
        const result = await runBench(benchConfig(server.url, dir, { rows, connectionLimit: 2 }), {
          prompts: PROMPTS,
        });
        assert.equal(result.summary.request_count?.avg, 6);
        assert.equal(server.streams.peak, 2);
      });
    } finally {
      await server.close();
    }
  });

  it("reads AIPERF_HTTP_CONNECTION_LIMIT as AIPerf does", () => {
    assert.equal(connectionLimitFromEnv({}), 2500);
    assert.equal(connectionLimitFromEnv({ AIPERF_HTTP_CONNECTION_LIMIT: "200" }), 200);
    assert.throws(() => connectionLimitFromEnv({ AIPERF_HTTP_CONNECTION_LIMIT: "0" }), /positive integer/);
  });

  it("caps concurrency and records a refused connection as an error", async () => {
    const server = await sseServer(20, 1);
    try {
      await withTempDir(async (dir) => {
        const rows = [{ input_length: 100, output_length: 3, hash_ids: [1] }];
        const result = await runBench(
          benchConfig(server.url, dir, {
            rows,
            mode: { kind: "concurrency", concurrency: 2, count: 6 },
            warmupCount: 1,
          }),
          { prompts: PROMPTS },
        );
        assert.equal(result.summary.request_count?.avg, 6);
        assert.equal(server.received.length, 7, "one warmup request, then six measured");
        const inputs = JSON.parse(await readFile(join(dir, "inputs.json"), "utf8"));
        assert.equal(inputs.data.length, 6, "warmup requests are not profiled inputs");
        assert.equal(server.streams.peak, 2);
        const bad = await runBench(
          benchConfig("http://127.0.0.1:1", join(dir, "bad"), {
            rows,
            mode: { kind: "concurrency", concurrency: 1, count: 2 },
          }),
          { prompts: PROMPTS },
        );
        assert.equal(bad.summary.error_request_count?.avg, 2);
        assert.equal(bad.errors[0]?.error_details.code, 0);
      });
    } finally {
      await server.close();
    }
  });

  it("stops a closed loop at the benchmark duration", async () => {
    const server = await sseServer(5, 1);
    try {
      await withTempDir(async (dir) => {
        const rows = [{ input_length: 100, output_length: 2, hash_ids: [1] }];
        // An unbounded closed loop: that it returns at all is the duration at work.
        const result = await runBench(
          benchConfig(server.url, dir, {
            rows,
            mode: { kind: "concurrency", concurrency: 2, count: Number.POSITIVE_INFINITY },
            durationS: 0.3,
          }),
          { prompts: PROMPTS },
        );
        assert.ok((result.summary.request_count?.avg ?? 0) >= 4);
        assert.equal(result.sent, server.received.length);
      });
    } finally {
      await server.close();
    }
  });
});

describe("several models and servers, as AIPerf's -m a,b and repeated --url", () => {
  it("names the models in turn and spreads the requests over the servers in turn", async () => {
    const a = await sseServer(1, 1);
    const b = await sseServer(1, 1);
    try {
      await withTempDir(async (dir) => {
        const rows = [0, 1, 2, 3].map((i) => ({
          timestamp: i * 5,
          input_length: 50,
          output_length: 2,
          hash_ids: [i],
        }));
        await runBench(benchConfig(a.url, dir, { rows, moreUrls: [b.url], moreModels: ["m2"], seed: 1 }), {
          prompts: PROMPTS,
        });
        const models = (s: typeof a) => s.received.map((r) => JSON.parse(r.body).model).sort();
        assert.deepEqual(models(a), ["m", "m"]);
        assert.deepEqual(models(b), ["m2", "m2"]);
        const summary = JSON.parse(await readFile(join(dir, "profile_export_aiperf.json"), "utf8"));
        assert.deepEqual(summary.input_config.endpoint.model_names, ["m", "m2"]);
        assert.deepEqual(summary.input_config.endpoint.urls, [a.url, b.url]);
      });
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
