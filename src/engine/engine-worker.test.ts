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

describe("attention-DP placement (TensorRT-LLM's ADP router)", () => {
  /** Ranks of each request, from the first token. */
  const ranksOf = (log: string[]) =>
    Object.fromEntries(
      log.filter((l) => l.endsWith("token 1")).map((l) => l.split(" ")[1]!.split("@") as [string, string]),
    );

  it("places unpinned requests longest prompt first on the rank with the fewest active prompt tokens", () => {
    const { w } = worker("aggregated", { maxBatchSize: 4 }, 4);
    // Arrive together: placed in one iteration, longest first, each on the rank with the least tokens so far.
    for (const [id, isl] of [
      ["s", 10],
      ["l", 90],
      ["m", 50],
      ["t", 20],
    ] as const)
      w.enqueue(null, request(id, isl, 2, id.charCodeAt(0) * 100));
    assert.deepEqual(ranksOf(run(w)), { l: "0", m: "1", t: "2", s: "3" });
  });

  it("balances on prompt tokens, then request count, then rank, among ranks below the fair share", () => {
    const { w } = worker("aggregated", { maxBatchSize: 4 }, 2);
    w.enqueue(0, request("big", 80, 50));
    w.beginStep();
    w.endStep({ token: () => {}, prefillDone: () => {}, finished: () => {} });
    // Rank 0 holds 80 prompt tokens, rank 1 none: three short requests arrive together. The fair share is
    // ceil((1 + 3) / 2) = 2 per rank, so rank 1 takes two and the third goes to rank 0 despite its tokens.
    for (const id of ["a", "b", "c"]) w.enqueue(null, request(id, 10, 2, id.charCodeAt(0) * 100));
    const r = ranksOf(run(w));
    assert.deepEqual([r.a, r.b, r.c], ["1", "1", "0"]);
  });

  it("keeps a pinned request for its rank until that rank has room, without blocking the others", () => {
    const { w } = worker("aggregated", { maxBatchSize: 1 }, 2);
    w.enqueue(0, request("a", 20, 5));
    w.enqueue(0, request("b", 20, 2, 100));
    w.enqueue(null, request("c", 20, 2, 200));
    const log = run(w);
    const r = ranksOf(log);
    // b waits for a (rank 0 holds one request); c, behind it in the queue, is placed on rank 1 at once.
    assert.deepEqual([r.a, r.b, r.c], ["0", "0", "1"]);
    const at = (what: string) => Number(log.find((l) => l.includes(what))!.split(" ")[0]);
    assert.ok(at("c@1 token 1") < at("a@0 finished"));
    assert.ok(at("b@0 token 1") > at("a@0 finished"));
  });

  it("admits at most ranks × max_batch_size requests; the rest wait in the worker's queue", () => {
    const { w } = worker("aggregated", { maxBatchSize: 2 }, 2);
    for (let i = 0; i < 7; i++) w.enqueue(null, request(`r${i}`, 10, 3, i * 100));
    w.beginStep();
    assert.equal(w.queued, 3);
    assert.deepEqual(
      [0, 1].map((r) => w.load(r).running),
      [2, 2],
    );
  });

  it("reserves a decode rank for KV in flight by the same rule, and takes the request there", () => {
    const { w } = worker("decode", { maxBatchSize: 4 }, 2);
    const a = request("a", 80, 3);
    const b = request("b", 10, 3, 100);
    const ra = w.reserve(a);
    const rb = w.reserve(b);
    assert.notEqual(ra, rb);
    w.enqueue(rb, b, true);
    w.enqueue(ra, a, true);
    const r = ranksOf(run(w).map((l) => l.replace("token 2", "token 1")));
    assert.deepEqual([r.a, r.b], [String(ra), String(rb)]);
    assert.throws(() => w.unreserve(0, a), /no place reserved/);
  });
});

describe("ADP balance (attention_dp_config.enable_balance)", () => {
  const balance = { timeoutIters: 3, batchingWaitIters: 2 };
  const sink: StepSink = { token: () => {}, prefillDone: () => {}, finished: () => {} };
  const steps = (w: EngineWorker, n: number) => {
    for (let i = 0; i < n; i++) {
      w.beginStep();
      w.endStep(sink);
    }
  };
  /** Two ranks, each decoding one request after a first step that prefilled both (its counters reset). */
  const decodingOnBoth = () => {
    const made = worker("aggregated", { maxBatchSize: 4, adpBalance: balance }, 2);
    made.w.enqueue(0, request("d0", 10, 40));
    made.w.enqueue(1, request("d1", 10, 40, 100));
    steps(made.w, 1);
    return made;
  };

  it("holds one rank's context until every rank has some, or the timeout passes", () => {
    // Both ranks decode; a prompt arrives for rank 0 only.
    const { w, steps: seen } = decodingOnBoth();
    const before = seen.length;
    w.enqueue(0, request("p", 50, 2, 200));
    steps(w, 4);
    const prefills = seen.slice(before).map((s) => s[0]!.prefill.length);
    // Held while rank 1 has no context; released when the wait counter reaches timeout_iters (3).
    assert.deepEqual(prefills, [0, 0, 1, 0]);
    assert.equal(w.heldIterations, 2);
  });

  it("releases context at once when some rank has nothing to decode, and is off by default", () => {
    const on = worker("aggregated", { maxBatchSize: 4, adpBalance: balance }, 2);
    on.w.enqueue(0, request("p", 50, 2));
    run(on.w);
    assert.equal(on.w.heldIterations, 0);
    assert.equal(on.steps[0]![0]!.prefill.length, 1);
    const off = worker("aggregated", { maxBatchSize: 4 }, 2);
    off.w.enqueue(0, request("d0", 10, 40));
    off.w.enqueue(1, request("d1", 10, 40, 100));
    off.w.enqueue(0, request("p", 50, 2, 200));
    run(off.w);
    assert.equal(off.w.heldIterations, 0);
  });

  it("with context on every rank, lets it gather for batching_wait_iters while every rank decodes", () => {
    const { w, steps: seen } = decodingOnBoth();
    const before = seen.length;
    w.enqueue(0, request("p0", 30, 2, 200));
    w.enqueue(1, request("p1", 30, 2, 300));
    steps(w, 3);
    const both = seen.slice(before).map((s) => s.map((r) => r.prefill.length).join(","));
    assert.deepEqual(both, ["0,0", "0,0", "1,1"]);
  });
});
