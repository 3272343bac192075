import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { BlockIds } from "../../engine/block-ids.ts";
import {
  type EngineRequest,
  type EngineSettings,
  EngineWorker,
  type StepSink,
} from "../../engine/engine-worker.ts";
import type { StepTimeModel } from "../../engine/perf-model.ts";
import { type BlockHasher, createBlockHasher } from "../../kv/block-hash.ts";
import type { HashSeq } from "../../kv/hash-seq.ts";
import type { KvIndex } from "../../kv/kv-index.ts";
import { KvRouter } from "../../router/kv-router.ts";
import { type MockWorker, startMockWorker } from "../mock-worker.ts";
import { KvEventSubscriber, routerEventSink } from "./subscriber.ts";
import { waitFor } from "./testing.ts";

/*
 * A frontend fed by a mock worker's KV events over ZMQ must see the cache the simulator's index sees for the same
 * request order: the worker publishes vLLM's hashes and tokens, the frontend re-hashes the tokens with the router's
 * hasher, and the simulator feeds its index the engine's block ids directly (src/sim/cluster.ts).
 */

const ENGINE: EngineSettings = {
  maxBatchSize: 4,
  maxNumTokens: 256,
  chunkedPrefill: true,
  blockSize: 4,
  prefixCaching: true,
  // Small enough that the run evicts cached prefixes, so removals are part of what must agree.
  kvCapacityBlocks: 24,
  watermark: 0.01,
};
const DP = 2;
const MAX_TOKENS = 3;
const STEP: StepTimeModel = { name: "constant", stepMs: () => 0.2 };

/** Prompt n: one of three shared 6-block prefixes, two blocks of its own, and a partial block. */
function prompt(n: number, prefix = n % 3): number[] {
  const shared = Array.from({ length: 24 }, (_, k) => 1000 * (prefix + 1) + k);
  const own = Array.from({ length: 10 }, (_, k) => 50_000 + 100 * n + k);
  return [...shared, ...own];
}
const REQUESTS = Array.from({ length: 16 }, (_, n) => prompt(n));
const PROBES = [prompt(100, 0), prompt(101, 1), prompt(102, 2), REQUESTS[15]!, REQUESTS[2]!, [7, 7, 7, 7]];

let hasher: BlockHasher;
let worker: MockWorker;
const closers: (() => unknown)[] = [];

before(async () => {
  hasher = await createBlockHasher();
  worker = await startMockWorker({
    servedModel: "m",
    engine: ENGINE,
    dpSize: DP,
    stepModel: STEP,
    kvEvents: {
      config: {
        enableKvCacheEvents: true,
        publisher: "zmq",
        endpoint: "tcp://127.0.0.1:0",
        replayEndpoint: "tcp://127.0.0.1:0",
        bufferSteps: 10_000,
        hwm: 100_000,
        maxQueueSize: 100_000,
        topic: "kv-events",
      },
    },
  });
  closers.push(() => worker.close());
});
after(async () => {
  for (const c of closers.reverse()) await c();
});

/** The simulator's path: the same engine model stepping the same requests, its events fed to the index by id. */
function simulate(): { router: KvRouter; removals: number } {
  const ids = new BlockIds();
  const router = new KvRouter({
    blockSize: ENGINE.blockSize,
    hasher,
    seqAddressedEvents: true,
    blockDirectory: ids,
  });
  router.addWorker("w0", DP);
  const index = router.index;
  let removals = 0;
  const engine = new EngineWorker("sim", DP, "aggregated", ENGINE, STEP, (rank) => {
    const t = () => index.targets.find({ workerId: "w0", dpRank: rank });
    return {
      stored: (blocks) => {
        for (const id of blocks) {
          const p = ids.parentOf(id);
          const parent = p < 0 ? -1 : index.heldNode(t(), ids.seqLoOf(p), ids.seqHiOf(p));
          if (p >= 0 && parent < 0) {
            index.errors.parentNotFound++;
            continue;
          }
          index.storeBlockUnder(
            t(),
            parent,
            ids.seqLoOf(id),
            ids.seqHiOf(id),
            ids.localLoOf(id),
            ids.localHiOf(id),
            id,
          );
        }
      },
      removed: (blocks) => {
        removals += blocks.length;
        for (const id of blocks) index.removeBlockAt(t(), id, ids.seqLoOf(id), ids.seqHiOf(id));
      },
    };
  });
  const sink: StepSink = { token() {}, prefillDone() {}, finished() {} };
  REQUESTS.forEach((tokens, n) => {
    const locals = hasher.localHashes(tokens, ENGINE.blockSize);
    const req: EngineRequest = {
      id: `r${n}`,
      isl: tokens.length,
      osl: MAX_TOKENS,
      blockIds: ids.intern(hasher.sequenceHashes(locals), locals),
    };
    engine.enqueue(null, req);
    while (engine.hasWork()) {
      if (engine.beginStep() === null) break;
      engine.endStep(sink);
    }
  });
  return { router, removals };
}

function overlaps(index: KvIndex): number[][] {
  return PROBES.map((tokens) => {
    const seqs: HashSeq = hasher.sequenceHashes(hasher.localHashes(tokens, ENGINE.blockSize));
    const scores = index.findMatches(seqs).scores;
    return Array.from({ length: DP }, (_, r) => scores[index.targets.find({ workerId: "w0", dpRank: r })]!);
  });
}

function frontend() {
  const router = new KvRouter({ blockSize: ENGINE.blockSize, hasher });
  router.addWorker("w0", DP);
  const sub = new KvEventSubscriber({ sink: routerEventSink(router), hasher, reconnectIntervalMs: 20 });
  closers.push(() => sub.close());
  for (const s of worker.kvEventSources)
    sub.addSource({
      workerId: "w0",
      dpRank: s.dpRank,
      endpoint: s.endpoint,
      replayEndpoint: s.replayEndpoint,
      topic: s.topic,
    });
  return { router, sub };
}

describe("KV events from a mock worker drive the frontend's index as the simulator's", () => {
  it("gives the same overlap scores per rank, live and after a frontend restart", async () => {
    assert.equal(worker.kvEventSources.length, DP);
    const live = frontend();
    for (const [n, tokens] of REQUESTS.entries()) {
      const res = await fetch(`${worker.url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "m", prompt: tokens, max_tokens: MAX_TOKENS }),
      });
      assert.equal(res.status, 200, `request ${n}: ${await res.text()}`);
    }
    const sim = simulate();
    const expected = overlaps(sim.router.index);
    assert.ok(sim.removals > 0, "the run evicted blocks");
    assert.ok(
      expected.flat().some((s) => s > 0) && expected.flat().some((s) => s === 0),
      "a telling mix of hits",
    );
    const agree = (index: KvIndex) =>
      index.entries === sim.router.index.entries &&
      JSON.stringify(overlaps(index)) === JSON.stringify(expected);

    // Waits for the last batches to arrive; a lasting difference fails below with both sides shown.
    await waitFor(() => agree(live.router.index), "the live frontend's index to match").catch(() => {});
    assert.deepEqual(overlaps(live.router.index), expected);
    assert.equal(live.router.index.entries, sim.router.index.entries);
    assert.ok(live.sub.counters.applied.removed.ok > 0, "removals arrived as events");
    assert.equal(
      live.sub.counters.applied.stored.parent_block_not_found,
      sim.router.index.errors.parentNotFound,
    );

    const restarted = frontend();
    // Waits for the last batches to arrive; a lasting difference fails below with both sides shown.
    await waitFor(() => agree(restarted.router.index), "the restarted frontend's replay").catch(() => {});
    assert.deepEqual(overlaps(restarted.router.index), expected);
    assert.equal(restarted.router.index.entries, sim.router.index.entries);
  });
});
