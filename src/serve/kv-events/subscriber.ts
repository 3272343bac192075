import * as zmq from "zeromq";
import { ServelabError } from "../../errors.ts";
import type { BlockHasher } from "../../kv/block-hash.ts";
import { decodeVllmMultipart, eventIdFor, type VllmDecodeContext } from "../../kv/codec-vllm.ts";
import type { RouterEvent } from "../../kv/events.ts";
import { toBigInts } from "../../kv/hash-seq.ts";
import { KvRouter } from "../../router/kv-router.ts";
import type { Router } from "../../router/router.ts";
import { VllmFastDecoder } from "./fast-decode.ts";
import { parseReplayReply, readSeq, replayRequest } from "./replay-frames.ts";
import { newTrackerCounters, type RawBatch, SourceTracker, type TrackerCounters } from "./source-tracker.ts";

/**
 * The frontend's side of KV events: per source (a worker's DP rank on its own port, or a worker on a shared port)
 * one SUB socket on the publisher's endpoint, filtered by topic prefix, and one DEALER on its replay endpoint, with
 * the sequence tracking of SourceTracker. Decoded events go to a sink, normally the router's KV index (see
 * `routerEventSink`), under the source's worker id and the batch's DP rank.
 */

/** Dynamo's `kv_cache_events_applied` statuses, plus events for a worker the router no longer has. */
export type KvApplyStatus = "ok" | "parent_block_not_found" | "block_not_found" | "worker_not_found";
export type KvEventType = RouterEvent["data"]["type"];
export type KvEventSink = (ev: RouterEvent) => KvApplyStatus;

export interface KvEventSourceSpec {
  workerId: string;
  /** The rank this endpoint publishes (vLLM: one port per rank); null: a shared port, ranks in the payload. */
  dpRank?: number | null;
  endpoint: string;
  replayEndpoint?: string | null;
  /** SUB prefix filter; "" (vLLM's default topic) takes everything. */
  topic?: string;
}

export interface KvEventSubscriberOptions {
  sink: KvEventSink;
  /** The router's block hasher: matching runs on its content hashes of each stored block's tokens. */
  hasher: BlockHasher;
  /** ZMQ_RECONNECT_IVL of every socket. Default 100 ms. */
  reconnectIntervalMs?: number;
  /** A replay that sends nothing for this long has failed. Default 2000 ms. */
  replayTimeoutMs?: number;
  /** Wait after a failed replay before the next; doubles per further failure up to 30 s. Default 1000 ms. */
  replayCooldownMs?: number;
  /** Milliseconds, for replay timeouts and cooldowns. Default performance.now. */
  now?: () => number;
  /** Undecodable messages and socket failures; they never stop the subscriber. Default: stderr. */
  onError?: (e: unknown) => void;
}

export interface KvEventCounters extends TrackerCounters {
  /** Received events by type and by what applying them found (Dynamo's `kv_cache_events_applied`). */
  applied: Record<KvEventType, Record<KvApplyStatus, number>>;
  /** Messages that could not be decoded (counted and skipped). */
  decodeErrors: number;
  /** Events about tiers other than device memory, or of unknown types, skipped by the decoder. */
  skippedEvents: number;
}

export function newKvEventCounters(): KvEventCounters {
  const statuses = (): Record<KvApplyStatus, number> => ({
    ok: 0,
    parent_block_not_found: 0,
    block_not_found: 0,
    worker_not_found: 0,
  });
  return {
    ...newTrackerCounters(),
    applied: { stored: statuses(), removed: statuses(), cleared: statuses() },
    decodeErrors: 0,
    skippedEvents: 0,
  };
}

/**
 * Feeds a router: for the KV router (with events), each event's status comes from what its index counted while
 * applying it; other policies ignore events.
 */
export function routerEventSink(router: Router, now: () => number = () => 0): KvEventSink {
  if (router instanceof KvRouter && router.approx === undefined) {
    const errors = router.index.errors;
    return (ev) => {
      const parent = errors.parentNotFound;
      const block = errors.blockNotFound;
      const ignored = router.ignoredEvents;
      router.applyEvent(ev, now());
      if (router.ignoredEvents !== ignored) return "worker_not_found";
      if (errors.parentNotFound !== parent) return "parent_block_not_found";
      if (errors.blockNotFound !== block) return "block_not_found";
      return "ok";
    };
  }
  return (ev) => {
    router.applyEvent(ev, now());
    return "ok";
  };
}

function label(spec: KvEventSourceSpec): string {
  const rank = spec.dpRank === null || spec.dpRank === undefined ? "" : ` rank ${spec.dpRank}`;
  return `KV events from worker ${JSON.stringify(spec.workerId)}${rank} (${spec.endpoint})`;
}

function checkSpec(spec: KvEventSourceSpec): void {
  const where = `KV-event source ${JSON.stringify(spec?.workerId)}`;
  if (typeof spec?.workerId !== "string" || spec.workerId === "")
    throw new ServelabError("KV_EVENTS_CONFIG", `${where}: the worker id must be a non-empty string`);
  const rank = spec.dpRank;
  if (rank !== undefined && rank !== null && (!Number.isInteger(rank) || rank < 0))
    throw new ServelabError(
      "KV_EVENTS_CONFIG",
      `${where}: dp rank must be a non-negative integer, got ${rank}`,
    );
  for (const [key, v] of [
    ["endpoint", spec.endpoint],
    ["replay endpoint", spec.replayEndpoint],
  ] as const) {
    if (v === undefined || (v === null && key !== "endpoint")) continue;
    if (typeof v !== "string" || !/^(tcp|ipc|inproc):\/\/./.test(v))
      throw new ServelabError(
        "KV_EVENTS_CONFIG",
        `${where}: the ${key} must be a tcp://, ipc:// or inproc:// address, got ${JSON.stringify(v)}`,
      );
    if (v.includes("*"))
      throw new ServelabError("KV_EVENTS_CONFIG", `${where}: cannot connect to the wildcard address ${v}`);
  }
}

type ResolvedOptions = Required<Omit<KvEventSubscriberOptions, "onError">> & {
  onError: (e: unknown) => void;
  fast: VllmFastDecoder;
};

/** One publisher's sockets and tracker. */
class Source {
  readonly spec: KvEventSourceSpec;
  readonly tracker: SourceTracker;
  private readonly sub: zmq.Subscriber;
  private dealer: zmq.Dealer | undefined;
  private replayTimer: NodeJS.Timeout | undefined;
  private readonly ctx: VllmDecodeContext;
  /** Ranks this source has fed, so a clear reaches each of them. */
  private readonly ranks = new Set<number>();
  private closed = false;
  private readonly loops: Promise<void>[] = [];

  constructor(
    spec: KvEventSourceSpec,
    private readonly owner: KvEventSubscriber,
    private readonly o: ResolvedOptions,
  ) {
    this.spec = spec;
    if (spec.dpRank !== undefined && spec.dpRank !== null) this.ranks.add(spec.dpRank);
    const hasher = o.hasher;
    this.ctx = {
      workerId: spec.workerId,
      ...(spec.dpRank === undefined || spec.dpRank === null ? {} : { dpRank: spec.dpRank }),
      blockHashToTokensHash: (tokens, blockSize) => toBigInts(hasher.localHashes(tokens, blockSize)),
      where: label(spec),
    };
    this.tracker = new SourceTracker(
      {
        apply: (b) => this.apply(b),
        clear: () => this.clearBlocks(),
        requestReplay: (from) => this.requestReplay(from),
        cancelReplay: () => this.dropDealer(),
      },
      owner.counters,
      { replay: Boolean(spec.replayEndpoint), cooldownMs: o.replayCooldownMs },
    );
    // No receive limit: the publisher's high-water mark is the one that decides what is lost.
    this.sub = new zmq.Subscriber({
      reconnectInterval: o.reconnectIntervalMs,
      linger: 0,
      receiveHighWaterMark: 0,
    });
    this.sub.subscribe(spec.topic ?? "");
    // Every (re)connection may follow missed batches or a new publisher process: check through a replay.
    this.sub.events.on("connect", () => {
      if (!this.closed) this.tracker.connected(this.o.now());
    });
    try {
      this.sub.connect(spec.endpoint);
    } catch (e) {
      this.sub.close();
      throw new ServelabError("KV_EVENTS_SOCKET", `${label(spec)}: cannot connect: ${(e as Error).message}`);
    }
    this.loops.push(this.readLive());
  }

  private async readLive(): Promise<void> {
    try {
      for await (const frames of this.sub) {
        if (this.closed) break;
        if (frames.length !== 3) {
          this.reportBad(`expected 3 frames (topic, seq, payload), got ${frames.length}`);
          continue;
        }
        const seq = readSeq(frames[1]!);
        if (seq === null) {
          this.reportBad(`the sequence frame has ${frames[1]!.length} bytes, expected 8`);
          continue;
        }
        this.tracker.live(
          { seq, topic: frames[0]!, seqFrame: frames[1]!, payload: frames[2]! },
          this.o.now(),
        );
      }
    } catch (e) {
      if (!this.closed) this.o.onError(e);
    }
  }

  private reportBad(why: string): void {
    this.owner.counters.decodeErrors++;
    this.o.onError(new ServelabError("KV_EVENT_DECODE", `${label(this.spec)}: ${why}`));
  }

  private apply(b: RawBatch): void {
    const c = this.owner.counters;
    let events: RouterEvent[];
    const fast = this.o.fast.decode(b.payload, b.seq, this.spec.workerId, this.ctx.dpRank ?? 0);
    if (fast !== null) {
      c.skippedEvents += fast.skipped;
      this.ranks.add(fast.dpRank);
      events = fast.events;
    } else {
      try {
        const decoded = decodeVllmMultipart([b.topic, b.seqFrame, b.payload], this.ctx);
        c.skippedEvents += decoded.skipped.nonDeviceMedium + decoded.skipped.unknownType;
        this.ranks.add(decoded.dpRank);
        events = decoded.events;
      } catch (e) {
        c.decodeErrors++;
        this.o.onError(e);
        return;
      }
    }
    for (const ev of events) c.applied[ev.data.type][this.o.sink(ev)]++;
  }

  private clearBlocks(): void {
    const eventId = eventIdFor(this.tracker.applied ?? 0n, 0);
    for (const dpRank of this.ranks)
      this.o.sink({ workerId: this.spec.workerId, dpRank, eventId, data: { type: "cleared" } });
  }

  private requestReplay(from: bigint): void {
    if (this.closed) return;
    if (!this.dealer) {
      const dealer = new zmq.Dealer({
        reconnectInterval: this.o.reconnectIntervalMs,
        linger: 0,
        receiveHighWaterMark: 0,
      });
      try {
        dealer.connect(this.spec.replayEndpoint!);
      } catch (e) {
        dealer.close();
        this.o.onError(
          new ServelabError("KV_EVENTS_SOCKET", `${label(this.spec)}: replay: ${(e as Error).message}`),
        );
        queueMicrotask(() => this.tracker.replayFailed(this.o.now()));
        return;
      }
      this.dealer = dealer;
      this.loops.push(this.readReplies(dealer));
    }
    this.armReplayTimer();
    this.dealer.send(replayRequest(from)).catch((e: unknown) => {
      // A dealer closed while its request waited for a peer: the replay was given up already.
      if (this.closed || (e as { code?: string }).code === "EAGAIN") return;
      this.o.onError(e);
    });
  }

  private armReplayTimer(): void {
    clearTimeout(this.replayTimer);
    this.replayTimer = setTimeout(() => {
      this.replayTimer = undefined;
      if (!this.closed) this.tracker.replayFailed(this.o.now());
    }, this.o.replayTimeoutMs);
  }

  private async readReplies(dealer: zmq.Dealer): Promise<void> {
    try {
      for await (const frames of dealer) {
        if (this.closed || dealer !== this.dealer) break;
        let reply: ReturnType<typeof parseReplayReply>;
        try {
          reply = parseReplayReply(frames, label(this.spec));
        } catch (e) {
          this.owner.counters.decodeErrors++;
          this.o.onError(e);
          continue;
        }
        if (reply.kind === "end") {
          clearTimeout(this.replayTimer);
          this.replayTimer = undefined;
          this.tracker.replayEnd(this.o.now());
          continue;
        }
        this.armReplayTimer();
        this.tracker.replayBatch({
          seq: reply.seq,
          topic: reply.topic,
          seqFrame: reply.seqFrame,
          payload: reply.payload,
        });
      }
    } catch (e) {
      if (!this.closed && dealer === this.dealer) this.o.onError(e);
    }
  }

  /** Closes the replay socket, so no reply of the abandoned request reaches the tracker. */
  private dropDealer(): void {
    clearTimeout(this.replayTimer);
    this.replayTimer = undefined;
    const d = this.dealer;
    this.dealer = undefined;
    d?.close();
  }

  /** Closes the sockets; with `clear`, drops every block the source reported. */
  async close(clear: boolean): Promise<void> {
    if (this.closed) return;
    this.tracker.stop();
    this.closed = true;
    this.dropDealer();
    this.sub.close();
    await Promise.allSettled(this.loops);
    if (clear) {
      this.owner.counters.clears++;
      this.clearBlocks();
    }
  }

  state(): { applied: bigint | null; lastLive: bigint | null; replaying: boolean; buffered: number } {
    const t = this.tracker;
    return { applied: t.applied, lastLive: t.lastLive, replaying: t.replaying, buffered: t.buffered };
  }
}

export class KvEventSubscriber {
  readonly counters: KvEventCounters = newKvEventCounters();
  private readonly sources: Source[] = [];
  private readonly o: ResolvedOptions;
  private closed = false;

  constructor(opts: KvEventSubscriberOptions) {
    const positive = (name: string, v: number) => {
      if (!(Number.isFinite(v) && v > 0))
        throw new ServelabError(
          "KV_EVENTS_CONFIG",
          `${name} must be a positive number of milliseconds, got ${v}`,
        );
      return v;
    };
    this.o = {
      sink: opts.sink,
      hasher: opts.hasher,
      reconnectIntervalMs: positive("the reconnect interval", opts.reconnectIntervalMs ?? 100),
      replayTimeoutMs: positive("the replay timeout", opts.replayTimeoutMs ?? 2000),
      replayCooldownMs: positive("the replay cooldown", opts.replayCooldownMs ?? 1000),
      now: opts.now ?? (() => performance.now()),
      fast: new VllmFastDecoder(opts.hasher),
      onError:
        opts.onError ??
        ((e) => process.stderr.write(`servelab kv events: ${String((e as Error)?.message ?? e)}\n`)),
    };
  }

  /** Subscribes to one publisher; its events flow from the first batch the socket receives. */
  addSource(spec: KvEventSourceSpec): void {
    if (this.closed) throw new Error("the KV-event subscriber is closed");
    checkSpec(spec);
    const rank = (s: KvEventSourceSpec) => s.dpRank ?? null;
    if (this.sources.some((s) => s.spec.workerId === spec.workerId && rank(s.spec) === rank(spec)))
      throw new ServelabError(
        "KV_EVENTS_CONFIG",
        `${label(spec)}: that worker${rank(spec) === null ? "" : " and rank"} already has a source`,
      );
    this.sources.push(new Source(spec, this, this.o));
  }

  /** Unsubscribes from a worker's publishers and drops every block they reported (it left the pool). */
  async removeWorker(workerId: string): Promise<void> {
    const mine = this.sources.filter((s) => s.spec.workerId === workerId);
    for (const s of mine) this.sources.splice(this.sources.indexOf(s), 1);
    await Promise.all(mine.map((s) => s.close(true)));
  }

  /** Sequence state of a worker's sources (one per rank, or one shared), for health pages and tests. */
  sourceStates(workerId: string): ReturnType<Source["state"]>[] {
    return this.sources.filter((s) => s.spec.workerId === workerId).map((s) => s.state());
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = this.sources.splice(0);
    await Promise.all(all.map((s) => s.close(false)));
  }
}
