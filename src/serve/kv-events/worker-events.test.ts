import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { createBlockHasher } from "../../kv/block-hash.ts";
import { KvRouter } from "../../router/kv-router.ts";
import { parseKvEventsConfig } from "./config.ts";
import { KvEventSubscriber, routerEventSink } from "./subscriber.ts";
import { waitFor } from "./testing.ts";
import { startWorkerKvEvents, type WorkerKvEvents } from "./worker-events.ts";

const closers: (() => unknown)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

// Ids 0 → 1 chain; 2 is a root of its own.
const PARENTS = [-1, 0, -1];
const blocks = { parentOf: (id: number) => PARENTS[id]! };

async function start(json: object, ports?: "per-rank" | "shared"): Promise<WorkerKvEvents> {
  const w = await startWorkerKvEvents({
    config: parseKvEventsConfig(JSON.stringify(json)),
    dpSize: 2,
    blockSize: 2,
    blocks,
    ...(ports ? { ports } : {}),
  });
  closers.push(() => w.close());
  return w;
}

describe("a worker's KV-event publishers", () => {
  it("publish nothing unless enabled with the zmq publisher", async () => {
    for (const cfg of [{}, { enable_kv_cache_events: true, publisher: "null" }]) {
      const w = await start(cfg);
      assert.deepEqual(w.sources, []);
      w.sink(0).stored([0]);
    }
  });

  it("send one batch per engine step, one publisher per rank or one shared, each batch saying its rank", async () => {
    const hasher = await createBlockHasher();
    for (const ports of ["per-rank", "shared"] as const) {
      const w = await start(
        { enable_kv_cache_events: true, endpoint: "tcp://127.0.0.1:0", replay_endpoint: "tcp://127.0.0.1:0" },
        ports,
      );
      assert.equal(w.sources.length, ports === "shared" ? 1 : 2, ports);
      if (ports === "per-rank")
        assert.deepEqual(
          w.sources.map((s) => s.dpRank),
          [0, 1],
        );
      else assert.equal(w.sources[0]!.dpRank, null);
      w.noteBlocks([0, 1], [1, 2, 3, 4]);
      w.noteBlocks([2], [9, 9]);
      // One engine step on each rank: rank 0 stores a chain and evicts, rank 1 stores.
      w.sink(0).stored([0, 1]);
      w.sink(0).removed([1]);
      w.sink(1).stored([2]);
      await new Promise((r) => setImmediate(r));
      const stats = w.stats();
      assert.deepEqual(
        stats.map((s) => s.batches),
        ports === "shared" ? [2] : [1, 1],
        `${ports}: one batch per rank and step`,
      );

      const router = new KvRouter({ blockSize: 2, hasher });
      router.addWorker("w", 2);
      const sub = new KvEventSubscriber({ sink: routerEventSink(router), hasher, reconnectIntervalMs: 20 });
      closers.push(() => sub.close());
      for (const s of w.sources)
        sub.addSource({
          workerId: "w",
          dpRank: s.dpRank,
          endpoint: s.endpoint,
          replayEndpoint: s.replayEndpoint,
        });
      const held = (rank: number) =>
        router.index.treeSize(router.targets.find({ workerId: "w", dpRank: rank }));
      await waitFor(() => held(0) === 1 && held(1) === 1, `${ports}: both ranks' blocks`);
      const seqs = hasher.sequenceHashes(hasher.localHashes([1, 2, 3, 4], 2));
      const scores = router.index.findMatches(seqs).scores;
      assert.equal(
        scores[router.targets.find({ workerId: "w", dpRank: 0 })],
        1,
        "block 0 stays, block 1 was evicted",
      );
      await sub.removeWorker("w");
      assert.equal(held(0) + held(1), 0, `${ports}: removal clears every rank`);
    }
  });
});
