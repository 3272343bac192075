/**
 * KV-event ingestion benchmark: a vLLM-format publisher (its own process, messages encoded up front so only the
 * wire and the subscriber are timed) sends BlockStored / BlockRemoved batches over ZMQ on loopback; the frontend's
 * subscriber decodes them, re-hashes every stored block's tokens with the router's hasher and applies them to a
 * KV router's index. Reports blocks/s through that whole path. `--json` prints one JSON object;
 * `--block-size N`, `--blocks N`, `--blocks-per-event N`, `--events-per-batch N` change the workload.
 *
 * The workload is a steady cache: each batch (one engine step) stores a few requests' chains of new blocks, each
 * under a block already held or at the root, and once the index holds `capacity` blocks removes as many of the
 * oldest, as an engine evicting LRU blocks does.
 */
import { fork } from "node:child_process";
import * as zmq from "zeromq";
import { createBlockHasher } from "../src/kv/block-hash.ts";
import { encodeVllmMultipart, type VllmWireEvent } from "../src/kv/codec-vllm.ts";
import { KvRouter } from "../src/router/kv-router.ts";
import { type KvEventSink, KvEventSubscriber, routerEventSink } from "../src/serve/kv-events/subscriber.ts";

export interface KvIngestionOptions {
  /** Stored blocks to send (removals come on top). Default 1,000,000. */
  blocks?: number;
  /** Tokens per block (vLLM's default is 16; the founding recipe uses 64). Default 16. */
  blockSize?: number;
  /** Blocks per BlockStored event (one request's new blocks). Default 32. */
  blocksPerEvent?: number;
  /**
   * BlockStored events per batch (requests whose blocks filled in the same engine step). Default 4: 2,048 new
   * tokens a step with 16-token blocks, a quarter of vLLM's default token budget per step.
   */
  eventsPerBatch?: number;
  /** Blocks the index holds before every batch also evicts. Default 200,000. */
  capacity?: number;
  /** Blocks of an unmeasured run first. Default 200,000; 0 skips it. */
  warmupBlocks?: number;
}

export interface KvIngestionResult {
  blockSize: number;
  blocksPerEvent: number;
  eventsPerBatch: number;
  batches: number;
  storedBlocks: number;
  removedBlocks: number;
  /** Payload bytes on the wire. */
  bytes: number;
  seconds: number;
  /** Stored plus removed blocks applied per second, first message received to last applied. */
  blocksPerS: number;
  storedBlocksPerS: number;
  megabytesPerS: number;
  /** CPU time of the subscribing process (decode, hashing, index, ZMQ I/O threads) over the same span. */
  cpuSeconds: number;
  /** Blocks per CPU-second of the subscribing process: the rate when it has a core to itself. */
  blocksPerCpuS: number;
  /** Index entries at the end, and what the subscriber counted (all zero but `batches` when nothing was lost). */
  indexEntries: number;
  gaps: number;
  decodeErrors: number;
  parentNotFound: number;
}

interface PublisherData {
  blocks: number;
  blockSize: number;
  blocksPerEvent: number;
  eventsPerBatch: number;
  capacity: number;
}

const TOPIC = "kv-events";

/** The publisher process: encodes the whole run, reports its endpoint, sends everything on "go". */
async function publisherProcess(d: PublisherData): Promise<void> {
  const next = () => new Promise<void>((resolve) => process.once("message", () => resolve()));
  const frames: Uint8Array[][] = [];
  let bytes = 0;
  let removed = 0;
  let nextHash = 1n;
  const live: bigint[] = [];
  let oldest = 0;
  const perBatch = d.blocksPerEvent * d.eventsPerBatch;
  const batches = Math.ceil(d.blocks / perBatch);
  let request = 0;
  for (let b = 0; b < batches; b++) {
    const events: VllmWireEvent[] = [];
    for (let e = 0; e < d.eventsPerBatch; e++) {
      const n = Math.min(d.blocksPerEvent, d.blocks - b * perBatch - e * d.blocksPerEvent);
      if (n <= 0) break;
      const r = request++;
      const tokenIds = new Array<number>(n * d.blockSize);
      for (let k = 0; k < tokenIds.length; k++) tokenIds[k] = (r * 7919 + k * 104729) % 129_280;
      const blockHashes = Array.from({ length: n }, () => nextHash++);
      // Half the requests extend a recently stored chain, as follow-up turns of a conversation do.
      const parent = r % 2 === 1 && live.length > oldest ? live[live.length - 1]! : null;
      events.push({
        type: "BlockStored",
        blockHashes,
        parentBlockHash: parent,
        tokenIds,
        blockSize: d.blockSize,
        loraId: null,
        medium: "GPU",
      });
      for (const h of blockHashes) live.push(h);
    }
    const evict = live.length - oldest - d.capacity;
    if (evict > 0) {
      events.push({ type: "BlockRemoved", blockHashes: live.slice(oldest, oldest + evict), medium: "GPU" });
      oldest += evict;
      removed += evict;
    }
    const msg = encodeVllmMultipart({ topic: TOPIC, seq: BigInt(b), timestamp: b / 1000, dpRank: 0, events });
    bytes += msg[2]!.length;
    frames.push(msg);
  }
  // No send limit: a benchmark that drops messages would measure the drops.
  const pub = new zmq.Publisher({ sendHighWaterMark: 0, linger: 2000 });
  await pub.bind("tcp://127.0.0.1:*");
  const go = next();
  process.send!({ endpoint: pub.lastEndpoint, batches, removed, bytes });
  await go;
  const stop = next();
  for (const f of frames) await pub.send(f);
  await stop;
  pub.close();
  process.disconnect();
}

/**
 * Runs the benchmark: a warm-up ingestion first (`warmupBlocks`, default 200,000; its figures discarded, as a
 * long-running frontend's decoder and index code is compiled by the time it matters), then the measured one.
 */
export async function benchKvIngestion(opts: KvIngestionOptions = {}): Promise<KvIngestionResult> {
  const warmup = opts.warmupBlocks ?? 200_000;
  if (warmup > 0) await ingestOnce({ ...opts, blocks: warmup });
  return ingestOnce(opts);
}

async function ingestOnce(opts: KvIngestionOptions): Promise<KvIngestionResult> {
  const d: PublisherData = {
    blocks: opts.blocks ?? 1_000_000,
    blockSize: opts.blockSize ?? 16,
    blocksPerEvent: opts.blocksPerEvent ?? 32,
    eventsPerBatch: opts.eventsPerBatch ?? 4,
    capacity: opts.capacity ?? 200_000,
  };
  const child = fork(import.meta.filename, ["--publisher", JSON.stringify(d)], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    const ready = await new Promise<{ endpoint: string; batches: number; removed: number; bytes: number }>(
      (resolve, reject) => {
        child.once("message", (m) => resolve(m as never));
        child.once("error", reject);
        child.once("exit", (code) =>
          reject(new Error(`the publisher process exited (${code}) before it was ready`)),
        );
      },
    );
    const hasher = await createBlockHasher();
    const router = new KvRouter({ blockSize: d.blockSize, hasher, expectedIndexEntries: d.capacity * 2 });
    router.addWorker("w", 1);
    const total = d.blocks + ready.removed;
    let seen = 0;
    let first = 0n;
    let cpu0 = process.cpuUsage();
    let done: () => void = () => {};
    const finished = new Promise<void>((resolve) => {
      done = resolve;
    });
    const apply = routerEventSink(router);
    const sink: KvEventSink = (ev) => {
      if (seen === 0) {
        first = process.hrtime.bigint();
        cpu0 = process.cpuUsage();
      }
      const status = apply(ev);
      seen +=
        ev.data.type === "stored"
          ? ev.data.blocks.length
          : ev.data.type === "removed"
            ? ev.data.blockHashes.length
            : 0;
      if (seen >= total) done();
      return status;
    };
    const sub = new KvEventSubscriber({ sink, hasher });
    try {
      sub.addSource({ workerId: "w", dpRank: 0, endpoint: ready.endpoint, topic: TOPIC });
      // The SUB's subscription must reach the publisher before it sends, or the first batches are dropped.
      await new Promise((r) => setTimeout(r, 300));
      child.send("go");
      // Batches lost on the live socket (a subscription that arrived late) would leave the count short for good.
      let last = -1;
      let watchdog: NodeJS.Timeout | undefined;
      const stalled = new Promise<never>((_, reject) => {
        watchdog = setInterval(() => {
          if (seen === last)
            reject(new Error(`ingestion stalled at ${seen} of ${total} blocks (gaps: ${sub.counters.gaps})`));
          last = seen;
        }, 5000);
      });
      try {
        await Promise.race([finished, stalled]);
      } finally {
        clearInterval(watchdog);
      }
      const seconds = Number(process.hrtime.bigint() - first) / 1e9;
      const cpu = process.cpuUsage(cpu0);
      const cpuSeconds = (cpu.user + cpu.system) / 1e6;
      const c = sub.counters;
      return {
        blockSize: d.blockSize,
        blocksPerEvent: d.blocksPerEvent,
        eventsPerBatch: d.eventsPerBatch,
        batches: ready.batches,
        storedBlocks: d.blocks,
        removedBlocks: ready.removed,
        bytes: ready.bytes,
        seconds: Number(seconds.toFixed(3)),
        blocksPerS: Math.round(total / seconds),
        storedBlocksPerS: Math.round(d.blocks / seconds),
        megabytesPerS: Number((ready.bytes / seconds / 1e6).toFixed(1)),
        cpuSeconds: Number(cpuSeconds.toFixed(3)),
        blocksPerCpuS: Math.round(total / cpuSeconds),
        indexEntries: router.index.entries,
        gaps: c.gaps,
        decodeErrors: c.decodeErrors,
        parentNotFound: c.applied.stored.parent_block_not_found,
      };
    } finally {
      if (child.connected) child.send("stop");
      await sub.close();
    }
  } finally {
    const kill = setTimeout(() => child.kill(), 5000);
    await exited;
    clearTimeout(kill);
  }
}

function flag(name: string): number | undefined {
  const i = process.argv.indexOf(name);
  if (i < 0) return undefined;
  const v = Number(process.argv[i + 1]);
  if (!Number.isSafeInteger(v) || v < 1) {
    process.stderr.write(`error[USAGE]: ${name} needs a positive integer, got ${process.argv[i + 1]}\n`);
    process.exit(2);
  }
  return v;
}

const publisherArg = process.argv.indexOf("--publisher");
if (publisherArg >= 0 && process.send) {
  await publisherProcess(JSON.parse(process.argv[publisherArg + 1]!) as PublisherData);
} else if (process.argv[1] === import.meta.filename) {
  const json = process.argv.includes("--json");
  const opts: KvIngestionOptions = {};
  const blocks = flag("--blocks");
  const blockSize = flag("--block-size");
  const perEvent = flag("--blocks-per-event");
  if (blocks !== undefined) opts.blocks = blocks;
  if (blockSize !== undefined) opts.blockSize = blockSize;
  if (perEvent !== undefined) opts.blocksPerEvent = perEvent;
  const perBatch = flag("--events-per-batch");
  if (perBatch !== undefined) opts.eventsPerBatch = perBatch;
  const r = await benchKvIngestion(opts);
  const out = { kvEventIngestion: r, targetBlocksPerS: 1_000_000, meetsTarget: r.blocksPerS >= 1_000_000 };
  process.stdout.write(json ? `${JSON.stringify(out)}\n` : `${JSON.stringify(out, null, 2)}\n`);
}
