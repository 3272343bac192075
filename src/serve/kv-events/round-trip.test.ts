import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as zmq from "zeromq";
import { type BlockHasher, createBlockHasher } from "../../kv/block-hash.ts";
import type { VllmWireEvent } from "../../kv/codec-vllm.ts";
import { KvRouter } from "../../router/kv-router.ts";
import { ZmqEventPublisher, type ZmqEventPublisherOptions } from "./publisher.ts";
import { KvEventSubscriber, type KvEventSubscriberOptions, routerEventSink } from "./subscriber.ts";
import { waitFor } from "./testing.ts";

const BLOCK = 4;
const LOCAL = "tcp://127.0.0.1:*";

let hasher: BlockHasher;
const closers: (() => unknown)[] = [];
before(async () => {
  hasher = await createBlockHasher();
});
after(async () => {
  for (const c of closers.reverse()) await c();
});

/** Batch i stores one root block holding tokens 4i+1 … 4i+4 under engine hash 1000 + i. */
const tokensOf = (i: number) => [1, 2, 3, 4].map((k) => 4 * i + k);
const storedBatch = (i: number): VllmWireEvent[] => [
  {
    type: "BlockStored",
    blockHashes: [BigInt(1000 + i)],
    parentBlockHash: null,
    tokenIds: tokensOf(i),
    blockSize: BLOCK,
    medium: "GPU",
  },
];

async function publisher(o: Partial<ZmqEventPublisherOptions> = {}): Promise<ZmqEventPublisher> {
  const p = await ZmqEventPublisher.start({
    endpoint: LOCAL,
    replayEndpoint: LOCAL,
    topic: "kv-events",
    ...o,
  });
  closers.push(() => p.close());
  return p;
}

function frontend(o: Partial<KvEventSubscriberOptions> = {}) {
  const router = new KvRouter({ blockSize: BLOCK, hasher });
  router.addWorker("w", 1);
  const sub = new KvEventSubscriber({
    sink: routerEventSink(router),
    hasher,
    reconnectIntervalMs: 20,
    replayTimeoutMs: 1500,
    onError: (e) => {
      throw e;
    },
    ...o,
  });
  closers.push(() => sub.close());
  /** Which of batches 0…n−1 the index holds a block of. */
  const held = (n: number) =>
    Array.from({ length: n }, (_, i) => {
      const seqs = hasher.sequenceHashes(hasher.localHashes(tokensOf(i), BLOCK));
      return router.index.findMatches(seqs).scores[router.targets.find({ workerId: "w", dpRank: 0 })]! > 0;
    });
  const applied = () => sub.sourceStates("w")[0]?.applied ?? null;
  return { router, sub, held, applied };
}

const source = (p: ZmqEventPublisher) => ({
  workerId: "w",
  dpRank: 0,
  endpoint: p.endpoint,
  replayEndpoint: p.replayEndpoint,
  topic: "kv-",
});

describe("KV events over ZMQ: publisher → subscriber → router index", () => {
  it("applies stored and removed events, with the blocks matching by content", async () => {
    const pub = await publisher();
    const f = frontend();
    f.sub.addSource(source(pub));
    for (let i = 0; i < 3; i++) pub.publish(storedBatch(i), 0);
    pub.publish([{ type: "BlockRemoved", blockHashes: [1001n], medium: "GPU" }], 0);
    await waitFor(() => f.applied() === 3n, "four batches applied");
    assert.deepEqual(f.held(3), [true, false, true]);
    assert.equal(f.sub.counters.applied.stored.ok, 3);
    assert.equal(f.sub.counters.applied.removed.ok, 1);
    assert.equal(f.router.index.entries, 2);
  });

  for (const layout of ["0.26", "0.25"] as const) {
    it(`recovers batches dropped on the live socket through replay (${layout} replies)`, async () => {
      const dropped = new Set([2n, 3n, 5n]);
      const pub = await publisher({ replayLayout: layout, skipLive: (s) => dropped.has(s) });
      const f = frontend();
      f.sub.addSource(source(pub));
      await waitFor(() => f.sub.counters.replaysCompleted >= 1, "the replay on connect");
      pub.publish(storedBatch(0), 0);
      pub.publish(storedBatch(1), 0);
      await waitFor(() => f.applied() === 1n, "batches 0 and 1");
      for (let i = 2; i < 7; i++) pub.publish(storedBatch(i), 0);
      await waitFor(() => f.applied() === 6n, "every batch");
      assert.deepEqual(f.held(7), Array(7).fill(true));
      assert.ok(f.sub.counters.gaps >= 1, "the drop was seen as a gap");
      assert.ok(f.sub.counters.replayedBatches >= 3);
      assert.equal(f.sub.counters.clears, 0, "nothing had to be thrown away");
      assert.equal(pub.stats.skipped, 3);
    });
  }

  it("clears and rebuilds a source whose publisher restarted (its sequence starts over)", async () => {
    // Bound again at the same address by the next process: an ipc endpoint binds by vLLM's rule, where a
    // tcp://127.0.0.1:PORT one would connect.
    const dir = mkdtempSync(join(tmpdir(), "kv-events-"));
    closers.push(() => rmSync(dir, { recursive: true, force: true }));
    const endpoint = `ipc://${join(dir, "pub")}`;
    const replayEndpoint = `ipc://${join(dir, "replay")}`;
    const first = await publisher({ endpoint, replayEndpoint });
    const f = frontend();
    f.sub.addSource(source(first));
    for (let i = 0; i < 5; i++) first.publish(storedBatch(i), 0);
    await waitFor(() => f.applied() === 4n, "the first process's batches");
    await first.close();
    const second = await publisher({ endpoint, replayEndpoint });
    second.publish(storedBatch(10), 0);
    second.publish(storedBatch(11), 0);
    await waitFor(
      () => f.held(12)[11] === true && f.held(5).every((h) => !h),
      "the new process's blocks only",
    );
    assert.ok(f.sub.counters.resets >= 1);
    assert.deepEqual(f.held(12).slice(10), [true, true]);
    assert.equal(f.router.index.entries, 2);
  });

  it("rebuilds the index of a restarted frontend by replaying on connect", async () => {
    const pub = await publisher();
    const a = frontend();
    a.sub.addSource(source(pub));
    for (let i = 0; i < 4; i++) pub.publish(storedBatch(i), 0);
    pub.publish([{ type: "BlockRemoved", blockHashes: [1000n], medium: "GPU" }], 0);
    await waitFor(() => a.applied() === 4n, "the first frontend");
    const before = a.held(6);
    await a.sub.close();
    // Published while no frontend listens.
    pub.publish(storedBatch(4), 0);
    pub.publish(storedBatch(5), 0);
    const b = frontend();
    b.sub.addSource(source(pub));
    await waitFor(() => b.applied() === 6n, "the restarted frontend's replay");
    assert.deepEqual(before, [false, true, true, true, false, false]);
    assert.deepEqual(b.held(6), [false, true, true, true, true, true]);
    assert.equal(b.router.index.entries, 5);
  });

  it("drops a removed worker's blocks and stops listening to it", async () => {
    const pub = await publisher();
    const f = frontend();
    f.sub.addSource(source(pub));
    for (let i = 0; i < 3; i++) pub.publish(storedBatch(i), 0);
    await waitFor(() => f.applied() === 2n, "three batches");
    assert.equal(f.router.index.entries, 3);
    await f.sub.removeWorker("w");
    assert.equal(f.router.index.entries, 0);
    assert.deepEqual(f.sub.sourceStates("w"), []);
    pub.publish(storedBatch(3), 0);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(f.router.index.entries, 0);
  });

  it("clears a source whose replay range left the publisher's buffer", async () => {
    const pub = await publisher({ bufferSteps: 2 });
    for (let i = 0; i < 5; i++) pub.publish(storedBatch(i), 0);
    const f = frontend();
    f.sub.addSource(source(pub));
    await waitFor(() => f.applied() === 4n, "the replay");
    assert.equal(f.sub.counters.replaysTruncated, 1);
    assert.deepEqual(f.held(5), [false, false, false, true, true]);
  });

  it("gives up on a replay socket that never answers, keeps the live stream and cools down", async () => {
    const silent = new zmq.Router({ linger: 0 });
    closers.push(() => silent.close());
    await silent.bind(LOCAL);
    const pub = await publisher({ replayEndpoint: null });
    const f = frontend({ replayTimeoutMs: 100, replayCooldownMs: 60_000 });
    f.sub.addSource({ ...source(pub), replayEndpoint: silent.lastEndpoint });
    await waitFor(() => f.sub.counters.replaysFailed >= 1, "the replay timeout");
    let i = 0;
    await waitFor(() => {
      pub.publish(storedBatch(i++), 0);
      return f.applied() !== null && f.applied()! >= 1n;
    }, "live batches");
    assert.equal(f.sub.counters.replaysFailed, 1, "no second replay during the cooldown");
    assert.ok(f.held(i).at(-2) === true);
  });

  it("counts undecodable messages and carries on", async () => {
    const raw = new zmq.Publisher({ linger: 0 });
    closers.push(() => raw.close());
    await raw.bind(LOCAL);
    const errors: unknown[] = [];
    const f = frontend({ onError: (e) => errors.push(e) });
    f.sub.addSource({ workerId: "w", dpRank: 0, endpoint: raw.lastEndpoint! });
    await waitFor(() => {
      void raw.send([Buffer.from("t"), Buffer.from([1, 2])]).catch(() => {});
      return f.sub.counters.decodeErrors > 0;
    }, "a bad message");
    assert.match(String((errors[0] as Error).message), /3 frames/);
  });
});
