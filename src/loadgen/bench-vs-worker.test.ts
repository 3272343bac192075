import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { StepTimeModel } from "../engine/perf-model.ts";
import { startMockWorker } from "../serve/mock-worker.ts";
import { MOCKER_DEFAULTS } from "../serve/worker-config.ts";
import { benchConfig } from "../testing/bench-config.ts";
import { withTempDir } from "../testing/fixtures.ts";
import { runBench } from "./run-bench.ts";

/** Prompts as the load generator's own thread builds them. */
const PROMPTS = { blockSize: 512, seed: 3 };

/** 20 ms steps with prefill, 5 ms without: TTFT and ITL come out of the engine, not the network. */
const model: StepTimeModel = {
  name: "test",
  stepMs: (ranks) => (ranks.some((r) => r.prefill.length > 0) ? 20 : 5),
};

/** When each request of a run in `dir` was sent (its records' request_start_ns), in ms, in order. */
async function sendTimesMs(dir: string): Promise<number[]> {
  const text = await readFile(join(dir, "profile_export.jsonl"), "utf8");
  return text
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l).metadata.request_start_ns / 1e6)
    .sort((a, b) => a - b);
}

describe("servelab bench against servelab worker", () => {
  it("replays a trace on schedule and measures what the worker's own log says", async () => {
    const worker = await startMockWorker({
      servedModel: "mock",
      engine: { ...MOCKER_DEFAULTS.engine, maxBatchSize: 8, kvCapacityBlocks: 4096 },
      stepModel: model,
    });
    try {
      await withTempDir(async (dir) => {
        const rows = [0, 1, 2, 3].map((i) => ({
          timestamp: i * 100,
          input_length: 1024,
          output_length: 6,
          hash_ids: [11, i % 2 === 0 ? 12 : 13],
        }));
        const result = await runBench(
          benchConfig(worker.url, dir, { model: "mock", rows, useServerTokenCount: false }),
          { prompts: PROMPTS },
        );
        assert.equal(result.summary.request_count?.avg, 4);
        assert.equal(result.summary.error_request_count, null);
        assert.equal(result.summary.output_sequence_length?.avg, 6);
        const log = worker.requestLog.since();
        assert.equal(log.length, 4);
        // Sends follow the schedule (100 ms apart): none goes before its time, so the second send (late by at most
        // the largest lag) and the last are at least 200 ms less that lag apart. Not the first: its way from wake-up to
        // send runs through code not yet compiled, which on a loaded machine has taken longer than the lag.
        const sends = await sendTimesMs(dir);
        assert.ok(sends.at(-1)! - sends[1]! >= 200 - result.lag!.max - 1, `sends ${sends}`);
        // Client TTFT is never shorter than the worker's first-token time after arrival (one monotonic clock).
        const serverTtft = log.map((e) => Number(e.first_token_ns! - e.arrival_ns) / 1e6);
        const clientTtft = result.summary.time_to_first_token!;
        assert.ok(
          clientTtft.min >= Math.min(...serverTtft) - 1,
          `${clientTtft.min} vs ${Math.min(...serverTtft)}`,
        );
        // Identical hash ids gave identical prompt prefixes: requests 3 and 4 reuse the prefix of 1 and 2.
        const byClient = new Map(log.map((e) => [e.client_request_id, e]));
        // Request ids are uuid4s: the records say which request of the schedule each was.
        const idOf = new Map(
          (await readFile(join(dir, "profile_export.jsonl"), "utf8"))
            .trim()
            .split("\n")
            .map((l) => JSON.parse(l).metadata)
            .map((m) => [m.session_num as number, m.x_request_id as string]),
        );
        const entry = (n: number) => byClient.get(idOf.get(n)!)!;
        assert.ok(entry(2).cached_tokens >= 960, `${entry(2).cached_tokens}`);
        assert.ok(entry(1).cached_tokens >= 448, `${entry(1).cached_tokens}`);
      });
    } finally {
      await worker.close();
    }
  });
});
