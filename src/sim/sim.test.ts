import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { StepTimeModel } from "../engine/perf-model.ts";
import { createBlockHasher } from "../kv/block-hash.ts";
import type { RequestRecord } from "../metrics/record.ts";
import { parseRecipe } from "../recipe/load.ts";
import { TINY_RECIPE } from "../testing/recipes.ts";
import type { TraceRow } from "../trace/types.ts";
import { prepareTrace, simulateArm } from "./cluster.ts";
import { EventQueue } from "./event-queue.ts";
import { LinkNetwork, link } from "./link-network.ts";

const hasher = await createBlockHasher();

describe("event queue", () => {
  it("runs events in time order, simultaneous ones in insertion order", () => {
    const q = new EventQueue();
    const seen: string[] = [];
    q.at(5, () => seen.push("b"));
    q.at(1, () => {
      seen.push("a");
      q.after(4, () => seen.push("c"));
    });
    q.at(5, () => seen.push("d"));
    q.run();
    assert.deepEqual(seen, ["a", "b", "d", "c"]);
    assert.equal(q.now, 5);
    assert.throws(() => q.at(1, () => {}), RangeError);
  });

  it("runs a stream of pre-scheduled events in time order, ahead of heap events at the same time", () => {
    const q = new EventQueue();
    const seen: string[] = [];
    q.stream([3, 1, 3, 0], (i) => {
      seen.push(`s${i}@${q.now}`);
      if (i === 1) q.at(3, () => seen.push(`h@${q.now}`));
    });
    q.at(0, () => seen.push(`first@${q.now}`));
    assert.equal(q.size, 5);
    q.run();
    assert.deepEqual(seen, ["s3@0", "first@0", "s1@1", "s0@3", "s2@3", "h@3"]);
    assert.equal(q.size, 0);
    assert.throws(() => q.stream([1], () => {}), RangeError);
  });
});

describe("link network", () => {
  const ends = (done: [string, number][]) => done.map(([n, t]) => [n, Math.round(t * 1000) / 1000]);

  it("shares one link between overlapping transfers", () => {
    const q = new EventQueue();
    const net = new LinkNetwork(q);
    const nv = link("nv", 1); // 1 GB/s = 1e6 bytes per ms
    const done: [string, number][] = [];
    q.at(0, () => net.send(2e6, [nv], () => done.push(["a", q.now])));
    q.at(1, () => net.send(1e6, [nv], () => done.push(["b", q.now])));
    q.run();
    // a alone for 1 ms (1e6 left), then both at half speed: b's 1e6 and a's rest both end at 3 ms.
    assert.deepEqual(ends(done), [
      ["a", 3],
      ["b", 3],
    ]);
  });

  it("gives each transfer its own rank's links, contended only where paths meet", () => {
    const q = new EventQueue();
    const net = new LinkNetwork(q);
    const [p0, p1, d0, d1] = ["p0", "p1", "d0", "d1"].map((n) => link(n, 1));
    const done: [string, number][] = [];
    // Different senders and receivers: both at full speed.
    q.at(0, () => net.send(1e6, [p0!, d0!], () => done.push(["a", q.now])));
    q.at(0, () => net.send(1e6, [p1!, d1!], () => done.push(["b", q.now])));
    // Two senders into one receiver: they halve its ingress.
    q.at(10, () => net.send(1e6, [p0!, d0!], () => done.push(["c", q.now])));
    q.at(10, () => net.send(1e6, [p1!, d0!], () => done.push(["d", q.now])));
    q.run();
    assert.deepEqual(ends(done), [
      ["a", 1],
      ["b", 1],
      ["c", 12],
      ["d", 12],
    ]);
  });

  it("lets a transfer use what a flow held back elsewhere leaves free (max-min fairness)", () => {
    const q = new EventQueue();
    const net = new LinkNetwork(q);
    const wide = link("wide", 2);
    const narrow = link("narrow", 0.5);
    const done: [string, number][] = [];
    // x is held to 0.5 GB/s by the narrow link; y gets the wide link's remaining 1.5 GB/s, not half of it.
    q.at(0, () => net.send(1e6, [wide, narrow], () => done.push(["x", q.now])));
    q.at(0, () => net.send(3e6, [wide], () => done.push(["y", q.now])));
    q.run();
    assert.deepEqual(ends(done), [
      ["x", 2],
      ["y", 2],
    ]);
  });
});

/** Every step takes 10 ms plus 1 ms per 100 prefill tokens of the slowest rank. */
const fixedModel: StepTimeModel = {
  name: "fixed",
  stepMs: (ranks) => 10 + Math.max(...ranks.map((r) => r.prefill.reduce((a, c) => a + c.tokens, 0))) / 100,
};

function runTiny(
  rows: TraceRow[],
  recipeText = TINY_RECIPE,
  { model = fixedModel, stepRuns = true }: { model?: StepTimeModel; stepRuns?: boolean } = {},
) {
  const recipe = parseRecipe(recipeText, "tiny.yaml");
  const records: RequestRecord[] = [];
  const arm = Object.keys(recipe.arms)[0]!;
  const kvBlock = recipe.arms[arm]!.workers?.kv_block_size ?? recipe.arms[arm]!.prefill!.kv_block_size;
  const trace = prepareTrace(rows, hasher, kvBlock, 512);
  const result = simulateArm({
    recipe,
    arm,
    trace,
    hasher,
    perfModel: () => model,
    onRecord: (r) => records.push(r),
    stepRuns,
  });
  return { records, result };
}

describe("cluster simulation", () => {
  it("gives the hand-computed TTFT and ITL for a lone request", () => {
    // 1,000 prompt tokens at max_num_tokens 8192: one 20 ms prefill step, then 10 ms per token.
    const { records, result } = runTiny([
      { timestamp: 100, input_length: 1000, output_length: 4, hash_ids: [0, 1] },
    ]);
    assert.equal(result.requests, 1);
    const r = records[0]!;
    assert.equal(r.startNs, 100e6);
    assert.deepEqual(
      Array.from(r.chunkNs, (t) => (t - r.startNs) / 1e6),
      [20, 30, 40, 50],
    );
  });

  it("routes round-robin across workers and reuses nothing when block reuse is off", () => {
    const rows = [0, 1, 2, 3].map((i) => ({
      timestamp: i,
      input_length: 600,
      output_length: 2,
      hash_ids: [7, 8],
    }));
    const text = TINY_RECIPE.replace(
      "      replicas: 2\n",
      "      replicas: 2\n      engine: { kv_cache_config: { enable_block_reuse: false } }\n",
    );
    const { records } = runTiny(rows, text);
    // Two single-rank workers: each gets every other request.
    assert.deepEqual(records.map((r) => r.target).sort(), ["agg-0/0", "agg-0/0", "agg-1/0", "agg-1/0"]);
    assert.ok(records.every((r) => r.cachedTokens === 0));
  });

  it("hands the KV over from prefill to decode and reuses the prefill rank's cache", () => {
    const text = TINY_RECIPE.replace(
      "    workers:\n      replicas: 2\n",
      "    router: { mode: kv }\n    prefill: { replicas: 1, publish_events_and_metrics: true }\n    decode: { replicas: 1 }\n",
    );
    const rows = [0, 1000].map((timestamp) => ({
      timestamp,
      input_length: 1000,
      output_length: 3,
      hash_ids: [4, 5],
    }));
    const { records, result } = runTiny(rows, text);
    // KV: 1,000 tokens × 1,000 B over 900 GB/s ≈ 0.0011 ms; prefill 20 ms; decode steps of 10 ms.
    const first = records[0]!;
    const ttft = (first.chunkNs[0]! - first.startNs) / 1e6;
    assert.ok(Math.abs(ttft - 20.0011) < 1e-3, `${ttft}`);
    assert.deepEqual(
      Array.from(first.chunkNs, (t) => Math.round((t - first.startNs) / 1e5) / 10),
      [20, 30, 40],
    );
    assert.equal(result.kvTransferMs.length, 2);
    // The second request finds all 31 full 32-token blocks cached (992 tokens); only the 8 after them are computed.
    assert.equal(records[1]!.cachedTokens, 992);
    const second = records[1]!;
    assert.ok((second.chunkNs[0]! - second.startNs) / 1e6 < 10.1);
  });

  /** Two DEP4 workers (TP4 with attention DP), at most 2 requests per rank. */
  const dep = (router: string, reuse = false) =>
    TINY_RECIPE.replace(
      "    workers:\n      replicas: 2\n",
      `    router: ${router}\n    workers:\n      replicas: 2\n      gpus_per_worker: 4\n      publish_events_and_metrics: true\n      engine: { tensor_parallel_size: 4, enable_attention_dp: true, max_batch_size: 2, kv_cache_config: { enable_block_reuse: ${reuse} } }\n`,
    );
  const burst = (n: number, isl = (i: number) => 600 + 64 * i) =>
    Array.from({ length: n }, (_, i) => ({
      timestamp: 0,
      input_length: isl(i),
      output_length: 4,
      hash_ids: [100 + 2 * i, 101 + 2 * i],
    }));

  it("round-robin picks workers in turn and each engine spreads its requests over its ranks itself", () => {
    const { records } = runTiny(burst(8), dep("{ mode: round-robin }"));
    const byWorker = (w: string) =>
      records
        .filter((r) => r.target!.startsWith(w))
        .map((r) => r.target!)
        .sort();
    // Four requests per worker, one on each rank — not eight in a row on one worker's ranks.
    assert.deepEqual(byWorker("agg-0/"), ["agg-0/0", "agg-0/1", "agg-0/2", "agg-0/3"]);
    assert.deepEqual(byWorker("agg-1/"), ["agg-1/0", "agg-1/1", "agg-1/2", "agg-1/3"]);
  });

  it("the engine places requests that arrive together longest prompt first on the least loaded rank", () => {
    // agg-0 gets requests 0, 2, 4, 6: the first starts a step alone on rank 0; the three that arrive during it
    // are placed together, the longest (6) first onto the lowest empty rank.
    const { records } = runTiny(burst(8), dep("{ mode: round-robin }"));
    const target = (i: number) => records.find((r) => r.requestId === `r${i}`)!.target;
    assert.deepEqual([0, 6, 4, 2].map(target), ["agg-0/0", "agg-0/1", "agg-0/2", "agg-0/3"]);
  });

  it("the KV router pins the rank it chose", () => {
    const rows = [0, 1000].map((timestamp) => ({
      timestamp,
      input_length: 700,
      output_length: 2,
      hash_ids: [4, 5],
    }));
    const { records, result } = runTiny(rows, dep("{ mode: kv }", true));
    // The second request follows the first one's cached prefix to its rank.
    assert.equal(records[1]!.target, records[0]!.target);
    assert.ok(result.targets.find((t) => t.target === records[0]!.target)!.cached_tokens > 0);
  });

  it("a disaggregated round-robin arm alternates prefill workers and ignores cached prefixes", () => {
    const disagg = (mode: string) =>
      TINY_RECIPE.replace(
        "    workers:\n      replicas: 2\n",
        `    router: { mode: ${mode} }\n    prefill: { replicas: 2, publish_events_and_metrics: true }\n    decode: { replicas: 2 }\n`,
      );
    const rows = [0, 1000, 2000, 3000].map((timestamp) => ({
      timestamp,
      input_length: 1000,
      output_length: 2,
      hash_ids: [4, 5],
    }));
    const kv = runTiny(rows, disagg("kv"));
    const rr = runTiny(rows, disagg("round-robin"));
    const prefill = (r: ReturnType<typeof runTiny>) =>
      r.result.targets.filter((t) => t.role === "prefill").map((t) => [t.target, t.requests]);
    // KV routing sends every repeat of the prompt to the prefill worker that caches it.
    assert.deepEqual(prefill(kv), [["prefill-0/0", 4]]);
    assert.deepEqual(prefill(rr), [
      ["prefill-0/0", 2],
      ["prefill-1/0", 2],
    ]);
    const cached = (r: ReturnType<typeof runTiny>) =>
      r.records.reduce((a, x) => a + (x.cachedTokens ?? 0), 0);
    assert.ok(cached(kv) > cached(rr));
  });

  it("hands KV over per rank: transfers from different ranks do not share a link", () => {
    const disagg = TINY_RECIPE.replace(
      "    workers:\n      replicas: 2\n",
      "    router: { mode: round-robin }\n    prefill: { replicas: 1, gpus_per_worker: 2, engine: { tensor_parallel_size: 2, enable_attention_dp: true } }\n    decode: { replicas: 1, gpus_per_worker: 2, engine: { tensor_parallel_size: 2, enable_attention_dp: true } }\n",
    ).replace("bandwidth_gb_per_s: 900", "bandwidth_gb_per_s: 0.001");
    // A one-token prompt keeps the prefill worker busy while two equal prompts arrive: those two are placed
    // together on its two ranks, and handed to the two decode ranks at the same time.
    const rows = [
      { timestamp: 0, input_length: 1, output_length: 2, hash_ids: [1] },
      ...[1, 1].map((timestamp, i) => ({
        timestamp,
        input_length: 1000,
        output_length: 2,
        hash_ids: [10 + 2 * i, 11 + 2 * i],
      })),
    ];
    const { result } = runTiny(rows, disagg);
    // 1,000 tokens × 1,000 B at 1 MB/s = 1,000 ms each; on one shared link they would take 2,000 ms.
    assert.deepEqual(
      result.kvTransferMs.map((ms) => Math.round(ms)),
      [1, 1000, 1000],
    );
  });

  it("fails a request that can never fit in KV instead of stalling", () => {
    const text = TINY_RECIPE.replace(
      "      replicas: 2\n",
      "      replicas: 2\n      engine: { kv_cache_config: { max_tokens: 256, tokens_per_block: 32 } }\n",
    );
    const rows = [
      { timestamp: 0, input_length: 200, output_length: 100, hash_ids: [1] },
      { timestamp: 1, input_length: 100, output_length: 20, hash_ids: [2] },
    ];
    const { records, result } = runTiny(rows, text);
    assert.equal(result.requests, 2);
    const failed = records.find((r) => r.error);
    assert.equal(failed?.error?.code, 400);
    assert.match(failed!.error!.message, /exceed the KV capacity/);
    assert.equal(records.filter((r) => !r.error).length, 1);
  });

  it("schedules runs of decode steps as one event, with the results of stepping one event at a time", () => {
    // Step times that change with every decoded token (context) and every new KV block (usage), so each step of a
    // run has its own duration; block size 32 puts boundaries inside runs; arrivals land mid-run.
    const model: StepTimeModel = {
      name: "varying",
      stepMs: (ranks) =>
        Math.max(
          ...ranks.map(
            (r) =>
              5 +
              r.prefill.reduce((a, c) => a + c.tokens, 0) / 100 +
              r.decode.reduce((a, d) => a + d.contextTokens, 0) / 997 +
              3 * r.kvUsage,
          ),
        ),
    };
    const rows = Array.from({ length: 60 }, (_, i) => ({
      timestamp: Math.floor(i * 37.3),
      input_length: 300 + ((i * 131) % 900),
      output_length: 1 + ((i * 53) % 170),
      hash_ids: [i % 4, 10 + i],
    }));
    const dp = TINY_RECIPE.replace(
      "      replicas: 2\n",
      "      replicas: 2\n      gpus_per_worker: 2\n      engine: { tensor_parallel_size: 2, enable_attention_dp: true }\n",
    );
    const disagg = TINY_RECIPE.replace(
      "    workers:\n      replicas: 2\n",
      "    router: { mode: kv }\n    prefill: { replicas: 1, publish_events_and_metrics: true }\n    decode: { replicas: 2 }\n",
    );
    for (const text of [TINY_RECIPE, dp, disagg]) {
      const runs = runTiny(rows, text, { model });
      const steps = runTiny(rows, text, { model, stepRuns: false });
      const show = (r: RequestRecord) => [r.target, r.cachedTokens, r.error, Array.from(r.chunkNs)];
      assert.deepEqual(runs.records.map(show), steps.records.map(show));
      assert.ok(
        runs.result.events < 0.6 * steps.result.events,
        `${runs.result.events} vs ${steps.result.events}`,
      );
    }
  });

  it("is deterministic", () => {
    const rows = Array.from({ length: 40 }, (_, i) => ({
      timestamp: i * 7,
      input_length: 700 + (i % 5) * 300,
      output_length: 1 + (i % 9),
      hash_ids: [0, 1 + (i % 3), 10 + i, 100 + i].slice(0, Math.ceil((700 + (i % 5) * 300) / 512)),
    }));
    const a = JSON.stringify(runTiny(rows).records.map((r) => [r.target, Array.from(r.chunkNs)]));
    const b = JSON.stringify(runTiny(rows).records.map((r) => [r.target, Array.from(r.chunkNs)]));
    assert.equal(a, b);
  });
});
