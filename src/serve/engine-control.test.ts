import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type EngineRequest, EngineWorker, type StepSink } from "../engine/engine-worker.ts";
import { cachedPromptTokens, removeRequest } from "./engine-control.ts";

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

describe("removeRequest", () => {
  it("returns a running request's blocks, leaving its prompt cached for reuse", () => {
    const w = worker();
    const a = req("a", 95, 0);
    w.enqueue(0, a);
    step(w);
    const pool = w.ranks[0]!.pool;
    assert.equal(pool.inUse, 10);
    assert.equal(removeRequest(w, 0, a), true);
    assert.equal(pool.inUse, 0);
    assert.equal(pool.cached, 9);
    assert.equal(w.hasWork(), false);
    assert.equal(removeRequest(w, 0, a), false);

    // The same prompt again finds its 9 full blocks cached.
    const b = req("b", 95, 0);
    w.enqueue(0, b);
    step(w);
    assert.equal(cachedPromptTokens(w, 0, b), 90);
  });

  it("drops a queued request without touching the running ones", () => {
    const w = worker(1);
    const a = req("a", 20, 0);
    const b = req("b", 20, 10);
    w.enqueue(0, a);
    w.enqueue(0, b);
    step(w);
    assert.deepEqual(w.load(0).waiting, 1);
    assert.equal(removeRequest(w, 0, b), true);
    assert.deepEqual([w.load(0).waiting, w.load(0).running], [0, 1]);
    assert.equal(w.ranks[0]!.pool.inUse, 2);
  });

  it("refuses while a step is planned, and names an unknown rank", () => {
    const w = worker();
    const a = req("a", 20, 0);
    w.enqueue(0, a);
    w.beginStep();
    assert.throws(() => removeRequest(w, 0, a), /while a step is planned/);
    w.endStep(sink);
    assert.throws(() => removeRequest(w, 3, a), RangeError);
  });
});
