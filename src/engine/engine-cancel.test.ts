import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type EngineRequest, EngineWorker, type StepSink } from "./engine-worker.ts";

const sink: StepSink = { token: () => {}, prefillDone: () => {}, finished: () => {} };

function worker(maxBatchSize = 4): EngineWorker {
  return new EngineWorker(
    "w",
    1,
    "aggregated",
    {
      maxBatchSize,
      maxNumTokens: 1000,
      chunkedPrefill: true,
      blockSize: 10,
      prefixCaching: true,
      kvCapacityBlocks: 100,
      watermark: 0,
    },
    { name: "unit", stepMs: () => 1 },
    () => ({ stored: () => {}, removed: () => {} }),
  );
}

const req = (id: string, isl: number, firstBlock: number): EngineRequest => ({
  id,
  isl,
  osl: 50,
  blockIds: Array.from({ length: Math.floor(isl / 10) }, (_, i) => firstBlock + i),
});

const step = (w: EngineWorker) => {
  assert.notEqual(w.beginStep(), null);
  w.endStep(sink);
};

describe("cancel", () => {
  it("returns a running request's blocks, leaving its prompt cached for reuse", () => {
    const w = worker();
    const a = req("a", 95, 0);
    w.enqueue(0, a);
    step(w);
    const pool = w.ranks[0]!.pool;
    assert.equal(pool.inUse, 10);
    assert.equal(w.cancel(a), true);
    assert.equal(pool.inUse, 0);
    assert.equal(pool.cached, 9);
    assert.equal(w.hasWork(), false);
    assert.equal(w.cancel(a), false);

    // The same prompt again finds its 9 full blocks cached.
    const b = req("b", 95, 0);
    w.enqueue(0, b);
    step(w);
    assert.equal(w.cachedTokens(b), 90);
  });

  it("drops a pinned request waiting for its full rank without touching the running one", () => {
    const w = worker(1);
    const a = req("a", 20, 0);
    const b = req("b", 20, 10);
    w.enqueue(0, a);
    w.enqueue(0, b);
    step(w);
    assert.equal(w.queued, 1);
    assert.equal(w.cancel(b), true);
    assert.deepEqual([w.load(0).waiting, w.load(0).running], [0, 1]);
    assert.equal(w.ranks[0]!.pool.inUse, 2);
  });

  it("drops a request still queued on the worker, before any rank took it", () => {
    const w = worker(1);
    const a = req("a", 20, 0);
    const b = req("b", 20, 10);
    w.enqueue(null, a);
    w.enqueue(null, b);
    step(w);
    // One slot per rank: b is still in the worker's queue.
    assert.equal(w.queued, 1);
    assert.equal(w.cancel(b), true);
    assert.equal(w.queued, 0);
    assert.equal(w.load(0).running, 1);
  });

  it("refuses while a step is planned", () => {
    const w = worker();
    const a = req("a", 20, 0);
    w.enqueue(0, a);
    w.beginStep();
    assert.throws(() => w.cancel(a), /while a step is planned/);
    w.endStep(sink);
    assert.equal(w.cancel(a), true);
  });
});
