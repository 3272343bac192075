import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type EngineRequest,
  type EngineSettings,
  EngineWorker,
  type StepSink,
  type WorkerRole,
} from "./engine-worker.ts";
import type { RankWork, StepTimeModel } from "./perf-model.ts";

/** 1 ms per step plus 1 ms per 100 prefill tokens on the slowest rank; records every step's work. */
function recordingModel() {
  const steps: RankWork[][] = [];
  const model: StepTimeModel = {
    name: "test",
    stepMs: (ranks) => {
      steps.push(
        ranks.map((r) => ({
          prefill: r.prefill.map((c) => ({ ...c })),
          decode: r.decode.map((d) => ({ ...d })),
          kvUsage: r.kvUsage,
        })),
      );
      return 1 + Math.max(...ranks.map((r) => r.prefill.reduce((a, c) => a + c.tokens, 0) / 100));
    },
  };
  return { model, steps };
}

const settings = (o: Partial<EngineSettings> = {}): EngineSettings => ({
  maxBatchSize: 4,
  maxNumTokens: 100,
  chunkedPrefill: true,
  blockSize: 10,
  prefixCaching: true,
  kvCapacityBlocks: 1000,
  watermark: 0,
  ...o,
});

const request = (id: string, isl: number, osl: number, firstBlock = 0): EngineRequest => ({
  id,
  isl,
  osl,
  blockIds: Array.from({ length: Math.floor(isl / 10) }, (_, i) => firstBlock + i),
});

/** Runs the worker to completion on a simple clock; returns when each event happened. */
function run(worker: EngineWorker) {
  let now = 0;
  const log: string[] = [];
  const sink: StepSink = {
    token: (req, rank, index) => log.push(`${now} ${req.id}@${rank} token ${index}`),
    prefillDone: (req, rank, cached) => log.push(`${now} ${req.id}@${rank} prefill done (${cached} cached)`),
    finished: (req, rank) => log.push(`${now} ${req.id}@${rank} finished`),
  };
  for (let guard = 0; guard < 10_000; guard++) {
    const ms = worker.beginStep();
    if (ms === null) return log;
    now += ms;
    worker.endStep(sink);
  }
  throw new Error("worker did not finish");
}

function worker(role: WorkerRole = "aggregated", o: Partial<EngineSettings> = {}, dp = 1) {
  const { model, steps } = recordingModel();
  return {
    w: new EngineWorker("w", dp, role, settings(o), model, () => ({ stored: () => {}, removed: () => {} })),
    steps,
  };
}

describe("engine worker", () => {
  it("chunks a long prompt by the token budget, then decodes one token per step", () => {
    const { w, steps } = worker();
    w.enqueue(0, request("a", 250, 3));
    const log = run(w);
    assert.deepEqual(
      steps.map((s) => s[0]!.prefill.map((c) => [c.tokens, c.pastTokens])),
      [[[100, 0]], [[100, 100]], [[50, 200]], [], []],
    );
    assert.deepEqual(log, ["5.5 a@0 token 1", "6.5 a@0 token 2", "7.5 a@0 token 3", "7.5 a@0 finished"]);
  });

  it("shares the budget: decodes first, then prefill chunks with what is left", () => {
    const { w, steps } = worker();
    w.enqueue(0, request("a", 20, 10));
    w.beginStep();
    w.endStep({ token: () => {}, prefillDone: () => {}, finished: () => {} });
    w.enqueue(0, request("b", 300, 2, 500));
    w.beginStep();
    const last = steps.at(-1)![0]!;
    assert.deepEqual(last.decode, [{ contextTokens: 21 }]);
    assert.deepEqual(last.prefill, [{ tokens: 99, pastTokens: 0 }]);
  });

  it("reuses a cached prefix: only the rest of the prompt is computed", () => {
    const { w, steps } = worker();
    w.enqueue(0, request("a", 100, 1));
    run(w);
    w.enqueue(0, request("b", 150, 1));
    run(w);
    // 10 blocks (100 tokens) cached: 50 tokens left to compute.
    assert.deepEqual(steps.at(-1)![0]!.prefill, [{ tokens: 50, pastTokens: 100 }]);
    assert.deepEqual(w.cacheStats(0), { hitTokens: 100, promptTokens: 250 });
  });

  it("caps the batch at max_batch_size and admits the rest as requests finish", () => {
    const { w, steps } = worker("aggregated", { maxBatchSize: 2 });
    for (const id of ["a", "b", "c"]) w.enqueue(0, request(id, 10, 3, id.charCodeAt(0) * 100));
    run(w);
    assert.ok(steps.every((s) => s[0]!.prefill.length + s[0]!.decode.length <= 2));
  });

  it("steps DP ranks in lockstep: one step carries every rank's work", () => {
    const { w, steps } = worker("aggregated", {}, 2);
    w.enqueue(0, request("a", 200, 2));
    w.enqueue(1, request("b", 20, 4, 900));
    const log = run(w);
    assert.equal(steps[0]!.length, 2);
    // Rank 1's short prompt waits on rank 0's 100-token chunk: its first token comes at 2 ms, not 1.2 ms.
    assert.ok(log.includes("2 b@1 token 1"), log.join("\n"));
  });

  it("preempts the newest request when KV runs out, which then recomputes and finishes", () => {
    const { w } = worker("aggregated", { kvCapacityBlocks: 5, prefixCaching: false });
    w.enqueue(0, request("a", 20, 15));
    w.enqueue(0, request("b", 20, 15, 100));
    const log = run(w);
    assert.ok(w.preemptions > 0);
    assert.ok(log.some((l) => l.endsWith("a@0 finished")) && log.some((l) => l.endsWith("b@0 finished")));
    assert.equal(log.filter((l) => l.includes("b@0 token 15")).length, 1);
  });

  it("a prefill worker hands the prompt over; a decode worker continues from token 2", () => {
    const p = worker("prefill");
    p.w.enqueue(0, request("a", 50, 3));
    assert.deepEqual(run(p.w), ["1.5 a@0 prefill done (0 cached)", "1.5 a@0 finished"]);
    const d = worker("decode", { chunkedPrefill: false });
    d.w.enqueue(0, request("a", 50, 3));
    assert.deepEqual(run(d.w), ["1 a@0 token 2", "2 a@0 token 3", "2 a@0 finished"]);
  });

  it("without chunking, runs a prompt longer than the budget next to running decodes", () => {
    const { w } = worker("aggregated", { chunkedPrefill: false, maxNumTokens: 64 });
    w.enqueue(0, request("a", 8, 300));
    w.beginStep();
    w.endStep({ token: () => {}, prefillDone: () => {}, finished: () => {} });
    w.enqueue(0, request("b", 100, 2, 700));
    const log = run(w);
    const bFirst = log.findIndex((l) => l.includes("b@0 token 1"));
    const aLast = log.findIndex((l) => l.includes("a@0 token 300"));
    assert.ok(bFirst >= 0 && bFirst < aLast, "b waited for a to finish");
  });

  it("plans runs of decode steps up to the next block boundary or finish, and none while a request waits", () => {
    const { w, steps } = worker();
    // After its 25-token prompt, `a` decodes at contexts 26, 27, …, and needs a new block at 30; `b` needs one at
    // context 10 and finishes at 6 tokens: the run is the 4 steps at a's contexts 26–29.
    w.enqueue(0, request("a", 25, 40));
    w.enqueue(0, request("b", 3, 6, 100));
    const ms = new Float64Array(64);
    const sink: StepSink = { token: () => {}, prefillDone: () => {}, finished: () => {} };
    w.beginStep();
    assert.equal(w.planRun(64, ms), 1, "a prefill step runs alone");
    w.endStep(sink);
    w.beginStep();
    const planned = w.planRun(64, ms);
    assert.equal(planned, 4);
    assert.deepEqual(
      steps.slice(-planned).map((s) => s[0]!.decode.map((d) => d.contextTokens)),
      [
        [26, 4],
        [27, 5],
        [28, 6],
        [29, 7],
      ],
    );
    const tokens: string[] = [];
    w.endRun(
      planned,
      { ...sink, token: (req, _r, i, at) => tokens.push(`${req.id}${i}@${at ?? "now"}`) },
      ms,
    );
    assert.deepEqual(tokens.slice(0, 2), [`a2@${ms[0]}`, `b2@${ms[0]}`]);
    assert.deepEqual(tokens.slice(-2), ["a5@now", "b5@now"]);
    w.enqueue(0, request("c", 5, 5, 200));
    w.beginStep();
    assert.equal(w.planRun(64, ms), 1, "an admitted prefill runs this step");
  });

  it("tells which requests can never fit a rank's KV", () => {
    const { w } = worker("aggregated", { kvCapacityBlocks: 10 });
    assert.equal(w.canFit(request("a", 50, 50)), true);
    assert.equal(w.canFit(request("b", 80, 30)), false);
    const { w: p } = worker("prefill", { kvCapacityBlocks: 10 });
    assert.equal(p.canFit(request("b", 80, 30)), true);
  });
});
