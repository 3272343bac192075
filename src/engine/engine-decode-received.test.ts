import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type EngineRequest, type EngineSettings, EngineWorker, type StepSink } from "./engine-worker.ts";
import type { StepTimeModel } from "./perf-model.ts";

/** 1 ms per step plus 1 ms per 10 prefill tokens; remembers the prefill tokens of every step. */
function model(prefills: number[]): StepTimeModel {
  return {
    name: "test",
    stepMs: (ranks) => {
      const tokens = ranks[0]!.prefill.reduce((a, c) => a + c.tokens, 0);
      prefills.push(tokens);
      return 1 + tokens / 10;
    },
  };
}

const SETTINGS: EngineSettings = {
  maxBatchSize: 4,
  maxNumTokens: 100,
  chunkedPrefill: true,
  blockSize: 10,
  prefixCaching: true,
  kvCapacityBlocks: 100,
  watermark: 0,
};

const req = (isl: number, osl: number): EngineRequest => ({ id: "r", isl, osl, blockIds: [] });

function drain(w: EngineWorker): number[] {
  const tokens: number[] = [];
  const sink: StepSink = {
    token: (_r, _rank, i) => tokens.push(i),
    prefillDone: () => assert.fail("a decode worker never hands over"),
    finished: () => {},
  };
  for (let guard = 0; guard < 1000; guard++) {
    if (w.beginStep() === null) return tokens;
    w.endStep(sink);
  }
  assert.fail("the worker did not finish");
}

describe("a decode worker's received prompt KV", () => {
  it("whole prompt received (the default): no prefill, tokens from the second on", () => {
    const prefills: number[] = [];
    const w = new EngineWorker("d", 1, "decode", SETTINGS, model(prefills), () => ({
      stored() {},
      removed() {},
    }));
    w.enqueue(null, req(35, 4));
    assert.deepEqual(drain(w), [2, 3, 4]);
    assert.ok(prefills.every((t) => t === 0));
  });

  it("nothing received: the decode worker prefills the whole prompt and sends the first token itself", () => {
    const prefills: number[] = [];
    const w = new EngineWorker("d", 1, "decode", SETTINGS, model(prefills), () => ({
      stored() {},
      removed() {},
    }));
    w.enqueue(null, req(35, 3), false, 0);
    assert.deepEqual(drain(w), [1, 2, 3]);
    assert.equal(
      prefills.reduce((a, b) => a + b, 0),
      35,
    );
  });

  it("part received: only the rest is prefilled", () => {
    const prefills: number[] = [];
    const w = new EngineWorker("d", 1, "decode", SETTINGS, model(prefills), () => ({
      stored() {},
      removed() {},
    }));
    const r = req(35, 2);
    const rank = w.reserve(r);
    w.enqueue(rank, r, true, 30);
    assert.deepEqual(drain(w), [1, 2]);
    assert.equal(
      prefills.reduce((a, b) => a + b, 0),
      5,
    );
  });

  it("is refused on other roles and beyond the prompt", () => {
    const agg = new EngineWorker("a", 1, "aggregated", SETTINGS, model([]), () => ({
      stored() {},
      removed() {},
    }));
    assert.throws(() => agg.enqueue(null, req(10, 1), false, 10), /received prompt tokens/);
    const d = new EngineWorker("d", 1, "decode", SETTINGS, model([]), () => ({ stored() {}, removed() {} }));
    assert.throws(() => d.enqueue(null, req(10, 1), false, 11), /received prompt tokens/);
  });
});
