/**
 * Router benchmark on the founding recipe's trace with 64-token KV blocks: block hashing, KV-event ingestion into
 * the index, and KV-aware routing of 110,000-token requests over 64 workers × 8 dp ranks with the index holding
 * over a million (block, target) entries. One core (Node's main thread). `--json` prints one JSON object.
 */
import { join } from "node:path";
import { createBlockHasher } from "../src/kv/block-hash.ts";
import type { RouterEvent } from "../src/kv/events.ts";
import { hashCount, toBigInts } from "../src/kv/hash-seq.ts";
import { traceLocalHashes } from "../src/kv/trace-blocks.ts";
import { percentileOfSorted } from "../src/metrics/summary.ts";
import { createRng } from "../src/random.ts";
import { loadRecipe, recipeSynthesisOptions } from "../src/recipe/load.ts";
import { KvRouter } from "../src/router/kv-router.ts";
import { readTrace } from "../src/trace/reader.ts";
import { resolveTraceInput } from "../src/trace/resolve-dataset.ts";
import { synthesizeTrace } from "../src/trace/synthesize.ts";
import type { TraceRow } from "../src/trace/types.ts";

const KV_BLOCK = 64;
const WORKERS = 64;
const RANKS = 8;
const MIN_ENTRIES = 1_000_000;
const ROUTE_ISL = 110_000;
const json = process.argv.includes("--json");
const log = (m: string) => {
  if (!json) process.stderr.write(`${m}\n`);
};

const hasher = await createBlockHasher();
const recipe = await loadRecipe(join(import.meta.dirname, "../recipes/dsv32-wideep-routing.yaml"));
const rows = synthesizeTrace(
  await readTrace(await resolveTraceInput(recipe.trace.source)),
  recipeSynthesisOptions(recipe)!,
).rows;

function seconds(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/**
 * Token-path hashing (what the frontend does per prompt): local XXH3 per 64-token block, then the sequence chain.
 * Returns blocks/s for both steps together and for the local hashes alone.
 */
function hashRates(): { full: number; local: number } {
  const tokens = Uint32Array.from({ length: ROUTE_ISL }, (_, i) => (i * 2654435761) >>> 0);
  const perRun = hashCount(hasher.localHashes(tokens, KV_BLOCK));
  const localTime = seconds(() => {
    for (let r = 0; r < 20; r++) hasher.localHashes(tokens, KV_BLOCK);
  });
  const fullTime = seconds(() => {
    for (let r = 0; r < 20; r++) hasher.sequenceHashes(hasher.localHashes(tokens, KV_BLOCK));
  });
  return { full: (20 * perRun) / fullTime, local: (20 * perRun) / localTime };
}

interface Prepared {
  row: TraceRow;
  seqs: Uint32Array;
  locals: Uint32Array;
}

function prepare(row: TraceRow): Prepared {
  const locals = traceLocalHashes(hasher, row.hash_ids, row.input_length, KV_BLOCK);
  return { row, locals, seqs: hasher.sequenceHashes(locals) };
}

/** The stored event an engine publishes after a prefill: the request's blocks, for one target. */
function storedEvent(p: Prepared, target: number): RouterEvent {
  const seqs = toBigInts(p.seqs);
  const locals = toBigInts(p.locals);
  return {
    workerId: `w${Math.floor(target / RANKS)}`,
    dpRank: target % RANKS,
    eventId: 0n,
    data: {
      type: "stored",
      parentHash: null,
      blocks: seqs.map((s, i) => ({ blockHash: s, tokensHash: locals[i]! })),
    },
  };
}

function buildRouter(workers: number, ranks: number, entries: number): KvRouter {
  // Sized like a deployment would size it: for the KV capacity it expects to index.
  const router = new KvRouter({ blockSize: KV_BLOCK, hasher, seed: 1, expectedIndexEntries: entries });
  for (let w = 0; w < workers; w++) router.addWorker(`w${w}`, ranks);
  return router;
}

/** Fills the router's index with the trace's requests, each cached by a random target; returns blocks/s. */
function fill(router: KvRouter, prepared: Prepared[], minEntries: number, targets: number): number {
  const rng = createRng(1, "bench-ingest");
  let blocks = 0;
  let time = 0;
  for (let i = 0; router.index.entries < minEntries; i = (i + 1) % prepared.length) {
    // Events are built outside the timed part: decoding is the codecs' job, measured by their own tests.
    const ev = storedEvent(prepared[i]!, rng.int(targets));
    time += seconds(() => router.applyEvent(ev, 0));
    blocks += hashCount(prepared[i]!.seqs);
  }
  return blocks / time;
}

/**
 * Latency of choosing a target for long requests (overlap lookup in the KV index and the load view, costs,
 * selection: `evaluate`) and of the full `route` call, which also records the request in the load view. A steady
 * 64 requests stay in flight. Hashes are precomputed: hashing is measured on its own.
 */
function routeLatencies(
  router: KvRouter,
  requests: Prepared[],
  samples: number,
): { select: Float64Array; route: Float64Array } {
  const select = new Float64Array(samples);
  const route = new Float64Array(samples);
  for (let i = 0; i < samples; i++) {
    const p = requests[i % requests.length]!;
    const req = { requestId: `b${i}`, isl: p.row.input_length, seqs: p.seqs, locals: p.locals };
    let t0 = performance.now();
    router.evaluate(req, i);
    select[i] = (performance.now() - t0) * 1000;
    t0 = performance.now();
    router.route(req, i);
    route[i] = (performance.now() - t0) * 1000;
    if (i >= 64) router.free(`b${i - 64}`, i);
  }
  return { select: select.sort(), route: route.sort() };
}

log(`trace: ${rows.length} requests`);
const prepared = rows.map(prepare);
const longest = [...prepared]
  .sort((a, b) => b.row.input_length - a.row.input_length)
  .slice(0, 200)
  .map((p) => {
    // Pad to exactly 110,000 tokens by continuing the row's last blocks with fresh ids.
    const ids = [...p.row.hash_ids];
    while (ids.length * 512 < ROUTE_ISL) ids.push(2 ** 40 + ids.length);
    return prepare({ ...p.row, hash_ids: ids.slice(0, Math.ceil(ROUTE_ISL / 512)), input_length: ROUTE_ISL });
  });

hashRates();
const hashing = hashRates();
log(
  `hashing: ${(hashing.full / 1e6).toFixed(2)} M blocks/s (local hashes alone ${(hashing.local / 1e6).toFixed(2)} M/s)`,
);

const scaling: Record<string, number>[] = [];
let main: Record<string, number> = {};
for (const [workers, ranks] of [
  [2, 8],
  [8, 8],
  [WORKERS, RANKS],
] as const) {
  const targets = workers * ranks;
  for (const entries of targets === WORKERS * RANKS ? [250_000, 500_000, MIN_ENTRIES] : [MIN_ENTRIES]) {
    const router = buildRouter(workers, ranks, entries);
    global.gc?.();
    const ingest = fill(router, prepared, entries, targets);
    routeLatencies(router, longest, 200);
    const lat = routeLatencies(router, longest, 2000);
    const p50 = percentileOfSorted(lat.select, 50);
    const p99 = percentileOfSorted(lat.select, 99);
    const full50 = percentileOfSorted(lat.route, 50);
    const full99 = percentileOfSorted(lat.route, 99);
    scaling.push({
      targets,
      entries: router.index.entries,
      route_p50_us: round(p50),
      route_p99_us: round(p99),
      route_with_tracking_p50_us: round(full50),
      route_with_tracking_p99_us: round(full99),
    });
    log(
      `${targets} targets, ${router.index.entries} entries: ingest ${(ingest / 1e6).toFixed(2)} M blocks/s, ` +
        `select p50 ${p50.toFixed(0)} µs p99 ${p99.toFixed(0)} µs, route+tracking p50 ${full50.toFixed(0)} µs p99 ${full99.toFixed(0)} µs`,
    );
    if (targets === WORKERS * RANKS && entries === MIN_ENTRIES) {
      main = {
        ingest_blocks_per_s: Math.round(ingest),
        route_p50_us: round(p50),
        route_p99_us: round(p99),
        route_with_tracking_p50_us: round(full50),
        route_with_tracking_p99_us: round(full99),
        bytes_per_block_entry: round(router.index.bytes / router.index.entries),
        index_entries: router.index.entries,
        index_nodes: router.index.nodes,
      };
    }
  }
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

const result = {
  hash_blocks_per_s: Math.round(hashing.full),
  local_hash_blocks_per_s: Math.round(hashing.local),
  ...main,
  route_isl: ROUTE_ISL,
  targets: WORKERS * RANKS,
  scaling,
};
process.stdout.write(`${json ? JSON.stringify(result) : JSON.stringify(result, null, 2)}\n`);
