import * as zmq from "zeromq";
import { ServelabError } from "../../errors.ts";
import { encodeVllmMultipart, type VllmEncodeOptions, type VllmWireEvent } from "../../kv/codec-vllm.ts";
import { endpointBinds } from "./config.ts";
import {
  parseReplayRequest,
  type ReplayLayout,
  replayBatchFrames,
  replayEndFrames,
} from "./replay-frames.ts";

/**
 * vLLM's `ZmqEventPublisher` (vllm/distributed/kv_events.py): a PUB socket sending each event batch as three frames
 * `[topic, seq (u64 big-endian), msgpack([ts, events, dp_rank])]`, `seq` counting batches from 0 for the
 * publisher's life (so it starts over when the process restarts), and optionally a ROUTER answering replay requests
 * from the last `bufferSteps` batches.
 *
 * vLLM's producer blocks when its queue is full; an engine step here cannot wait, so a batch beyond
 * `maxQueueSize` still gets its sequence number and its place in the replay buffer but skips the wire: subscribers
 * see a gap and fetch it by replay, as they would after a PUB high-water-mark drop.
 */
export interface ZmqEventPublisherOptions {
  endpoint: string;
  replayEndpoint?: string | null;
  topic?: string;
  bufferSteps?: number;
  hwm?: number;
  maxQueueSize?: number;
  /** Reply layout of the replay socket; default "0.26" (with the topic frame). */
  replayLayout?: ReplayLayout;
  /** Wire forms of the payload; default vLLM's current ones (map events, positional batch, u64 hashes). */
  encode?: VllmEncodeOptions;
  /** Publisher wall-clock time in seconds for each batch's `ts`. Default: Date.now() / 1000. */
  clock?: () => number;
  /**
   * Fault injection: batches for which this returns true are numbered and buffered for replay but never sent
   * live, as if the PUB socket had dropped them.
   */
  skipLive?: (seq: bigint) => boolean;
  /** Where send failures are reported (they never throw into the engine). Default: stderr. */
  onError?: (e: unknown) => void;
}

export interface PublisherStats {
  /** Batches numbered (= the next sequence number). */
  batches: number;
  /** Batches handed to the PUB socket. */
  sent: number;
  /** Batches kept off the wire: queue overflow or `skipLive`. */
  skipped: number;
  replayRequests: number;
  /** Replay requests that were not `[identity, b"", start_seq]`, ignored. */
  badReplayRequests: number;
  replayedBatches: number;
}

interface Buffered {
  seq: bigint;
  seqFrame: Uint8Array;
  payload: Uint8Array;
}

const DRAIN_MS = 1000;

function zmqEndpoint(endpoint: string): string {
  // libzmq's ephemeral-port spelling; port 0 means the same to servelab (and to vLLM's discovery mode).
  return endpoint.replace(/^(tcp:\/\/.*):0$/, "$1:*");
}

async function openSocket(sock: zmq.Publisher | zmq.Router, endpoint: string, what: string): Promise<string> {
  try {
    if (endpointBinds(endpoint)) {
      await sock.bind(zmqEndpoint(endpoint));
      return sock.lastEndpoint ?? endpoint;
    }
    sock.connect(endpoint);
    return endpoint;
  } catch (e) {
    throw new ServelabError(
      "KV_EVENTS_SOCKET",
      `cannot ${endpointBinds(endpoint) ? "bind" : "connect"} the KV-event ${what} socket to ${endpoint}: ${(e as Error).message}`,
    );
  }
}

export class ZmqEventPublisher {
  readonly topic: string;
  /** The PUB endpoint as bound (with the OS-chosen port, for `*` or 0) or as connected. */
  endpoint = "";
  /** The replay ROUTER's endpoint as bound, or null without replay. */
  replayEndpoint: string | null = null;
  readonly stats: PublisherStats = {
    batches: 0,
    sent: 0,
    skipped: 0,
    replayRequests: 0,
    badReplayRequests: 0,
    replayedBatches: 0,
  };
  private readonly opts: ZmqEventPublisherOptions;
  private readonly topicFrame: Uint8Array;
  private readonly bufferSteps: number;
  private readonly maxQueueSize: number;
  private readonly layout: ReplayLayout;
  private readonly clock: () => number;
  private readonly onError: (e: unknown) => void;
  private readonly pub: zmq.Publisher;
  private router: zmq.Router | undefined;
  /** Ring of the last `bufferSteps` batches, oldest at `head`. */
  private readonly ring: (Buffered | undefined)[];
  private head = 0;
  private size = 0;
  private nextSeq = 0n;
  private queue: Uint8Array[][] = [];
  private sending: Promise<void> | undefined;
  private replying: Promise<void> = Promise.resolve();
  private replayLoop: Promise<void> | undefined;
  private closed = false;

  private constructor(opts: ZmqEventPublisherOptions) {
    this.opts = opts;
    this.topic = opts.topic ?? "";
    this.topicFrame = new TextEncoder().encode(this.topic);
    this.bufferSteps = opts.bufferSteps ?? 10_000;
    this.maxQueueSize = opts.maxQueueSize ?? 100_000;
    this.layout = opts.replayLayout ?? "0.26";
    this.clock = opts.clock ?? (() => Date.now() / 1000);
    this.onError = opts.onError ?? ((e) => process.stderr.write(`servelab kv events: ${String(e)}\n`));
    this.ring = new Array(this.bufferSteps);
    this.pub = new zmq.Publisher({ sendHighWaterMark: opts.hwm ?? 100_000, linger: DRAIN_MS });
  }

  /** Opens the sockets (binding or connecting as vLLM would); KV_EVENTS_SOCKET when that fails. */
  static async start(opts: ZmqEventPublisherOptions): Promise<ZmqEventPublisher> {
    const p = new ZmqEventPublisher(opts);
    try {
      p.endpoint = await openSocket(p.pub, opts.endpoint, "publisher");
      if (opts.replayEndpoint) {
        // Mandatory: a full pipe to a subscriber makes a reply wait instead of silently losing batches of it, and
        // a subscriber that went away fails the reply at once instead of having it sent into nothing.
        p.router = new zmq.Router({ linger: 0, mandatory: true });
        p.replayEndpoint = await openSocket(p.router, opts.replayEndpoint, "replay");
        p.replayLoop = p.serveReplays(p.router);
      }
    } catch (e) {
      p.pub.close();
      p.router?.close();
      throw e;
    }
    return p;
  }

  /** Sequence number the next batch will get. */
  get nextSequence(): bigint {
    return this.nextSeq;
  }

  /**
   * Numbers, buffers and sends one batch; returns its sequence number, or null once closed (an engine step that
   * ends during shutdown must not fail over its events). Never throws for socket trouble.
   */
  publish(events: readonly VllmWireEvent[], dpRank: number | null): bigint | null {
    if (this.closed) return null;
    const seq = this.nextSeq++;
    const frames = encodeVllmMultipart(
      { topic: this.topic, seq, timestamp: this.clock(), dpRank, events },
      this.opts.encode,
    );
    frames[0] = this.topicFrame;
    this.remember({ seq, seqFrame: frames[1]!, payload: frames[2]! });
    this.stats.batches++;
    if (this.opts.skipLive?.(seq) === true || this.queue.length >= this.maxQueueSize) {
      this.stats.skipped++;
      return seq;
    }
    this.queue.push(frames);
    this.sending ??= this.drain();
    return seq;
  }

  private remember(b: Buffered): void {
    if (this.size < this.bufferSteps) {
      this.ring[(this.head + this.size) % this.bufferSteps] = b;
      this.size++;
    } else {
      this.ring[this.head] = b;
      this.head = (this.head + 1) % this.bufferSteps;
    }
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        for (const frames of batch) {
          await this.pub.send(frames);
          this.stats.sent++;
        }
      }
    } catch (e) {
      if (!this.closed) this.onError(e);
      this.queue = [];
    } finally {
      this.sending = undefined;
    }
  }

  private async serveReplays(router: zmq.Router): Promise<void> {
    try {
      for await (const frames of router) {
        const start = parseReplayRequest(frames);
        if (start === null) {
          this.stats.badReplayRequests++;
          continue;
        }
        this.stats.replayRequests++;
        // The buffer is read when the request arrives, as vLLM services it between two publishes.
        const batches: Buffered[] = [];
        for (let i = 0; i < this.size; i++) {
          const b = this.ring[(this.head + i) % this.bufferSteps]!;
          if (b.seq >= start) batches.push(b);
        }
        const identity = frames[0]!;
        this.replying = this.replying.then(() => this.reply(router, identity, batches));
      }
    } catch (e) {
      if (!this.closed) this.onError(e);
    }
  }

  private async reply(router: zmq.Router, identity: Uint8Array, batches: readonly Buffered[]): Promise<void> {
    try {
      for (const b of batches) {
        await router.send(replayBatchFrames(identity, this.layout, this.topicFrame, b.seqFrame, b.payload));
        this.stats.replayedBatches++;
      }
      await router.send(replayEndFrames(identity, this.layout));
    } catch (e) {
      // The asker hung up (it gave up waiting, or restarted): nothing to report.
      if ((e as { code?: string }).code === "EHOSTUNREACH") return;
      if (!this.closed) this.onError(e);
    }
  }

  /** Sends what is queued (for at most a second, as vLLM's shutdown does) and closes the sockets. */
  async close(): Promise<void> {
    if (this.closed) return;
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, DRAIN_MS).unref());
    await Promise.race([this.sending ?? Promise.resolve(), deadline]);
    this.closed = true;
    this.pub.linger = 0;
    this.pub.close();
    if (this.router) {
      this.router.close();
      await this.replayLoop;
    }
  }
}
