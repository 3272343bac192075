import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createBlockHasher } from "../../kv/block-hash.ts";
import { KvRouter } from "../../router/kv-router.ts";
import { fixedSteps, TEST_ENGINE } from "../../testing/mock-engine.ts";
import { waitFor } from "../../testing/wait.ts";
import { parseKvEventsConfig } from "../kv-events/config.ts";
import { type MockWorker, startMockWorker } from "../mock-worker.ts";
import { createDeepSeekTokenizer, type PromptTokenizer } from "../tokenizer.ts";
import { type Frontend, startFrontend } from "./frontend.ts";

const MODEL = "test/model";
const BLOCK = 16;
const ENGINE = TEST_ENGINE;
const STEPS = fixedSteps(1);
const idsFor = (blocks: number, salt: number) =>
  Array.from({ length: blocks * BLOCK }, (_, i) => 5000 + salt * 7919 + i);

describe("frontend fed by the workers' ZMQ KV events", () => {
  let tokenizer: PromptTokenizer;
  const workers: MockWorker[] = [];
  let fe: Frontend;
  before(async () => {
    tokenizer = createDeepSeekTokenizer();
    const config = parseKvEventsConfig(
      JSON.stringify({
        enable_kv_cache_events: true,
        endpoint: "tcp://127.0.0.1:0",
        replay_endpoint: "tcp://127.0.0.1:0",
        topic: "kv-events",
      }),
    );
    for (let i = 0; i < 2; i++) {
      workers.push(
        await startMockWorker({
          servedModel: MODEL,
          engine: ENGINE,
          dpSize: 2,
          stepModel: STEPS,
          tokenizer,
          kvEvents: { config },
        }),
      );
    }
    fe = await startFrontend({
      models: [MODEL],
      workers: workers.map((w, i) => ({
        id: `w${i}`,
        url: w.url,
        dp_size: 2,
        kv_events: w.kvEventSources.map((s) => ({
          dp_rank: s.dpRank,
          endpoint: s.endpoint,
          replay_endpoint: s.replayEndpoint,
          topic: s.topic,
        })),
      })),
      policy: "kv",
      router: { blockSize: BLOCK, seed: 1, hasher: await createBlockHasher() },
      tokenizer,
      healthIntervalMs: 50,
    });
  });
  after(async () => {
    await fe.close();
    await Promise.all(workers.map((w) => w.close()));
    await tokenizer.close();
  });

  it("learns what each rank caches from its events and routes the next request with that prefix there", async () => {
    const kv = fe.router as KvRouter;
    assert.ok(kv instanceof KvRouter);
    const prompt = idsFor(10, 1);
    const send = async (p: number[]) => {
      const res = await fetch(`${fe.url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: MODEL, prompt: p, max_tokens: 2 }),
      });
      assert.equal(res.status, 200);
      return (await res.json()) as { id: string };
    };
    const first = await send(prompt);
    const hasher = await createBlockHasher();
    const seqs = hasher.sequenceHashes(hasher.localHashes(prompt, BLOCK));
    const req = { requestId: "probe", isl: prompt.length, seqs };
    await waitFor(() => kv.evaluate(req, 0).overlapBlocks === 10, "the prompt's 10 blocks to be indexed");
    const probe = kv.evaluate(req, 0);
    // The rank the engine logged for the first request is the one whose events the index now holds.
    const logs = await Promise.all(
      workers.map(async (w) => (await (await fetch(`${w.url}/servelab/requests`)).text()).trim()),
    );
    const placed = logs.flatMap((text, i) =>
      text
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l))
        .filter((e) => e.id === first.id)
        .map((e) => `w${i}/${e.dp_rank}`),
    );
    assert.deepEqual(placed, [`${probe.workerId}/${probe.dpRank}`]);
    const counters = fe.kvEvents!.counters;
    assert.ok(counters.applied.stored.ok >= 1);
    assert.equal(counters.applied.stored.parent_block_not_found, 0);
    const metrics = await (await fetch(`${fe.url}/metrics`)).text();
    assert.match(
      metrics,
      /dynamo_component_kv_cache_events_applied\{event_type="stored",status="ok"\} [1-9]/,
    );
    // A second request with the same prefix and a new tail goes to the same rank (overlap beats the idle ranks).
    const second = await send([...prompt, ...idsFor(2, 9)]);
    const logs2 = await Promise.all(
      workers.map(async (w) => (await (await fetch(`${w.url}/servelab/requests`)).text()).trim()),
    );
    const placed2 = logs2.flatMap((text, i) =>
      text
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l))
        .filter((e) => e.id === second.id)
        .map((e) => `w${i}/${e.dp_rank}`),
    );
    assert.deepEqual(placed2, placed);
  });
});
