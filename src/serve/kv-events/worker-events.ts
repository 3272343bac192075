import type { BlockEvents } from "../../engine/block-pool.ts";
import type { VllmWireEvent } from "../../kv/codec-vllm.ts";
import { type BlockParents, VllmBlockCatalog } from "./block-catalog.ts";
import { type KvEventsConfig, offsetEndpointPort, publishes } from "./config.ts";
import { type PublisherStats, ZmqEventPublisher, type ZmqEventPublisherOptions } from "./publisher.ts";
import type { ReplayLayout } from "./replay-frames.ts";

/**
 * How a worker's DP ranks share ports: "per-rank" is vLLM's (rank r on the configured port + r, each with its own
 * publisher and sequence); "shared" is one publisher for the whole worker on the configured port, every batch
 * saying its rank in `data_parallel_rank` (Dynamo's one `kv-events` endpoint per worker).
 */
export type KvEventPorts = "per-rank" | "shared";
export const KV_EVENT_PORTS: readonly KvEventPorts[] = ["per-rank", "shared"];

export interface WorkerKvEventsOptions {
  config: KvEventsConfig;
  dpSize: number;
  blockSize: number;
  blocks: BlockParents;
  /** The engine's PYTHONHASHSEED, which vLLM's block hashes depend on. Default "0". */
  pythonHashSeed?: string;
  ports?: KvEventPorts;
  replayLayout?: ReplayLayout;
  /** Passed to every publisher (clock, fault injection, error reporting). */
  publisher?: Pick<ZmqEventPublisherOptions, "clock" | "skipLive" | "onError" | "encode">;
}

/** Where one publisher of the worker can be reached: what a frontend subscribes to. */
export interface KvEventSourceInfo {
  /** The rank whose batches this publisher sends; null for a shared publisher (ranks are in the payload). */
  dpRank: number | null;
  endpoint: string;
  replayEndpoint: string | null;
  topic: string;
}

export interface WorkerKvEvents {
  readonly sources: readonly KvEventSourceInfo[];
  /** The engine's per-rank event sink (EngineWorker's `events` argument). */
  sink(rank: number): BlockEvents;
  /** Records a prompt's block tokens; call before the engine may store the blocks. */
  noteBlocks(ids: readonly number[], tokenIds: ArrayLike<number>): void;
  stats(): PublisherStats[];
  close(): Promise<void>;
}

/**
 * A rank's events of one engine step, sent as one batch (vLLM takes its events once per scheduler step). The engine
 * reports blocks synchronously while it steps, and the wall-clock driver applies a step and plans the next in one
 * go, so what arrives before control returns to the event loop — the evictions of the step that ended and the
 * blocks the next one admits — is one scheduler iteration's worth.
 */
class StepBatch {
  private events: VllmWireEvent[] = [];
  private scheduled = false;

  constructor(private readonly flush: (events: VllmWireEvent[]) => void) {}

  add(fill: (out: VllmWireEvent[]) => void): void {
    fill(this.events);
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      const events = this.events;
      this.events = [];
      if (events.length > 0) this.flush(events);
    });
  }
}

const NO_EVENTS: BlockEvents = { stored: () => {}, removed: () => {} };

/** Opens the worker's publishers as its `--kv-events-config` asks (none when events are off). */
export async function startWorkerKvEvents(opts: WorkerKvEventsOptions): Promise<WorkerKvEvents> {
  const c = opts.config;
  if (!publishes(c)) {
    return {
      sources: [],
      sink: () => NO_EVENTS,
      noteBlocks: () => {},
      stats: () => [],
      close: async () => {},
    };
  }
  const catalog = new VllmBlockCatalog(opts.blocks, opts.blockSize, opts.pythonHashSeed ?? "0");
  const shared = (opts.ports ?? "per-rank") === "shared";
  const publishers: ZmqEventPublisher[] = [];
  try {
    for (let r = 0; r < (shared ? 1 : opts.dpSize); r++) {
      publishers.push(
        await ZmqEventPublisher.start({
          ...opts.publisher,
          endpoint: offsetEndpointPort(c.endpoint, r),
          replayEndpoint: c.replayEndpoint === null ? null : offsetEndpointPort(c.replayEndpoint, r),
          topic: c.topic,
          bufferSteps: c.bufferSteps,
          hwm: c.hwm,
          maxQueueSize: c.maxQueueSize,
          ...(opts.replayLayout ? { replayLayout: opts.replayLayout } : {}),
        }),
      );
    }
  } catch (e) {
    await Promise.all(publishers.map((p) => p.close()));
    throw e;
  }
  const batches = Array.from({ length: opts.dpSize }, (_, r) => {
    const p = publishers[shared ? 0 : r]!;
    return new StepBatch((events) => p.publish(events, r));
  });
  return {
    sources: publishers.map((p, r) => ({
      dpRank: shared ? null : r,
      endpoint: p.endpoint,
      replayEndpoint: p.replayEndpoint,
      topic: p.topic,
    })),
    sink(rank) {
      const batch = batches[rank];
      if (!batch) throw new RangeError(`no KV-event publisher for dp rank ${rank}`);
      return {
        stored: (ids) => batch.add((out) => catalog.storedEvents(ids, out)),
        removed: (ids) => batch.add((out) => out.push(catalog.removedEvent(ids))),
      };
    },
    noteBlocks: (ids, tokenIds) => catalog.note(ids, tokenIds),
    stats: () => publishers.map((p) => ({ ...p.stats })),
    close: async () => {
      // Let the last step's batch out first.
      await new Promise<void>((resolve) => setImmediate(resolve));
      await Promise.all(publishers.map((p) => p.close()));
    },
  };
}
