/**
 * The sequence bookkeeping of one KV-event source (one publisher: a worker's DP rank, or a whole worker on a
 * shared port), as live-frontend.md §4.8 recommends, kept apart from the sockets so every path can be driven
 * step by step. It decides; the caller's actions do (decode and apply a batch, clear the source's blocks, ask
 * the replay socket). Times are milliseconds on the caller's clock.
 *
 * - `applied` is the last sequence number applied, `lastLive` the last one seen on the live socket (llm-d's dual
 *   watermarks): a live batch at or below `lastLive` means the publisher started counting again (it restarted),
 *   one at or below `applied` only that replay delivered it first.
 * - A gap, or a first batch other than 0, asks for a replay of the missing range; live batches are buffered while
 *   it runs, then applied after the replayed ones in sequence order, so a replayed Stored cannot resurrect a block
 *   a later live Removed dropped.
 * - A replay that starts later than asked (the publisher's buffer no longer holds the range) or times out cannot
 *   restore what was missed: the source is cleared and rebuilt from what follows.
 * - On (re)connecting, a source that has applied batches asks for a replay from its last applied batch and checks
 *   the publisher still has that batch byte for byte (its payload carries the publisher's timestamp): if not, the
 *   publisher is a new process whose numbering only looks continuous, and the source is rebuilt from 0.
 */

export interface RawBatch {
  seq: bigint;
  topic: Uint8Array;
  seqFrame: Uint8Array;
  payload: Uint8Array;
}

export interface TrackerActions {
  apply(batch: RawBatch): void;
  /** Drops every block this source reported (its ranks' `AllBlocksCleared`). */
  clear(): void;
  requestReplay(from: bigint): void;
  /** Stops listening to the replay in flight: its remaining replies must not reach the tracker. */
  cancelReplay(): void;
}

export interface TrackerCounters {
  /** Batches applied, live or replayed. */
  batches: number;
  gaps: number;
  /** Live batches dropped because a replay had applied them already. */
  duplicates: number;
  /** Publisher restarts detected (sequence went back, or a reconnect found a different publisher). */
  resets: number;
  /** Times the source was cleared to rebuild (resets, lost ranges, failed replays, removal). */
  clears: number;
  replaysRequested: number;
  replaysCompleted: number;
  /** Replays whose first batch came later than asked: the range was gone. */
  replaysTruncated: number;
  replaysFailed: number;
  replayedBatches: number;
}

export function newTrackerCounters(): TrackerCounters {
  return {
    batches: 0,
    gaps: 0,
    duplicates: 0,
    resets: 0,
    clears: 0,
    replaysRequested: 0,
    replaysCompleted: 0,
    replaysTruncated: 0,
    replaysFailed: 0,
    replayedBatches: 0,
  };
}

export interface TrackerOptions {
  /** Whether the source has a replay endpoint. */
  replay: boolean;
  /** Wait after a failed replay before asking again; doubles on each further failure up to `maxCooldownMs`. */
  cooldownMs?: number;
  maxCooldownMs?: number;
}

/** Replays chained without applying anything new (a replay asking for what the previous one just missed). */
const MAX_CHAINED_REPLAYS = 3;

interface Replay {
  from: bigint;
  /** Checking on reconnect that batch `from` is the one applied before (see the class comment). */
  verify: boolean;
  first: bigint | null;
  last: bigint | null;
}

function bySeq(a: RawBatch, b: RawBatch): number {
  return a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

export class SourceTracker {
  applied: bigint | null = null;
  lastLive: bigint | null = null;
  private lastPayload: Uint8Array | null = null;
  private replay: Replay | null = null;
  private buffer: RawBatch[] = [];
  private failures = 0;
  private cooldownUntil = Number.NEGATIVE_INFINITY;
  private chained = 0;
  private readonly actions: TrackerActions;
  private readonly counters: TrackerCounters;
  private readonly hasReplay: boolean;
  private readonly cooldownMs: number;
  private readonly maxCooldownMs: number;

  constructor(actions: TrackerActions, counters: TrackerCounters, opts: TrackerOptions) {
    this.actions = actions;
    this.counters = counters;
    this.hasReplay = opts.replay;
    this.cooldownMs = opts.cooldownMs ?? 1000;
    this.maxCooldownMs = opts.maxCooldownMs ?? 30_000;
  }

  get replaying(): boolean {
    return this.replay !== null;
  }

  /** Live batches held back while a replay runs. */
  get buffered(): number {
    return this.buffer.length;
  }

  private canReplay(now: number): boolean {
    return this.hasReplay && now >= this.cooldownUntil && this.chained < MAX_CHAINED_REPLAYS;
  }

  private startReplay(from: bigint, verify = false): void {
    this.replay = { from, verify, first: null, last: null };
    this.chained++;
    this.counters.replaysRequested++;
    this.actions.requestReplay(from);
  }

  private applyBatch(b: RawBatch): void {
    this.applied = b.seq;
    this.lastPayload = b.payload;
    this.chained = 0;
    this.counters.batches++;
    this.actions.apply(b);
  }

  private clear(): void {
    this.counters.clears++;
    this.applied = null;
    this.lastPayload = null;
    this.actions.clear();
  }

  /** The socket (re)connected: rebuild or verify through a replay when there is a replay endpoint. */
  connected(now: number): void {
    if (this.replay !== null || !this.canReplay(now)) return;
    if (this.applied === null) this.startReplay(0n);
    else this.startReplay(this.applied, true);
  }

  live(b: RawBatch, now: number): void {
    if (this.lastLive !== null && b.seq <= this.lastLive) {
      this.counters.resets++;
      this.restart();
    }
    this.lastLive = b.seq;
    if (this.replay !== null) {
      this.buffer.push(b);
      return;
    }
    this.accept(b, now);
  }

  /** Forgets the publisher's numbering after it restarted: everything it said is void. */
  private restart(): void {
    if (this.replay !== null) {
      this.replay = null;
      this.actions.cancelReplay();
    }
    this.buffer = [];
    this.chained = 0;
    this.clear();
  }

  private accept(b: RawBatch, now: number): void {
    const expected = this.applied === null ? 0n : this.applied + 1n;
    if (b.seq < expected) {
      this.counters.duplicates++;
      return;
    }
    if (b.seq === expected) {
      this.applyBatch(b);
      return;
    }
    this.counters.gaps++;
    if (this.canReplay(now)) {
      this.buffer.push(b);
      this.startReplay(expected);
      return;
    }
    // Whatever the missing batches removed would stay in the index for good: start this source over.
    this.clear();
    this.applyBatch(b);
  }

  replayBatch(b: RawBatch): void {
    const r = this.replay;
    if (r === null) return;
    this.counters.replayedBatches++;
    if (r.first === null) {
      r.first = b.seq;
      if (r.verify) {
        if (b.seq === r.from && this.lastPayload !== null && sameBytes(b.payload, this.lastPayload)) {
          r.last = b.seq;
          return;
        }
        // Not the batch applied under that number: a new publisher process.
        this.counters.resets++;
        this.actions.cancelReplay();
        this.replay = null;
        this.buffer = [];
        this.lastLive = null;
        this.clear();
        this.startReplay(0n);
        return;
      }
      if (b.seq > r.from) {
        this.counters.replaysTruncated++;
        this.clear();
      }
    }
    r.last = b.seq;
    const expected = this.applied === null ? b.seq : this.applied + 1n;
    if (b.seq < expected) return;
    if (b.seq > expected) {
      // A hole inside the replay: only a publisher restarting mid-reply could cause it.
      this.counters.gaps++;
      this.clear();
    }
    this.applyBatch(b);
  }

  replayEnd(now: number): void {
    const r = this.replay;
    if (r === null) return;
    this.replay = null;
    this.counters.replaysCompleted++;
    this.failures = 0;
    this.cooldownUntil = Number.NEGATIVE_INFINITY;
    if (r.verify && r.first === null && this.applied !== null) {
      // The publisher holds nothing from our last batch on: it restarted and has published less since.
      this.counters.resets++;
      this.buffer = [];
      this.lastLive = null;
      this.clear();
      if (this.canReplay(now)) this.startReplay(0n);
      return;
    }
    const covered = r.last ?? r.from - 1n;
    this.drain(now, covered);
  }

  /** Applies buffered live batches in order; a hole the replay did not cover starts another replay. */
  private drain(now: number, covered: bigint | null): void {
    const pending = this.buffer.sort(bySeq);
    this.buffer = [];
    for (let i = 0; i < pending.length; i++) {
      const b = pending[i]!;
      const expected = this.applied === null ? 0n : this.applied + 1n;
      if (b.seq < expected) {
        this.counters.duplicates++;
        continue;
      }
      if (b.seq === expected) {
        this.applyBatch(b);
        continue;
      }
      this.counters.gaps++;
      if (covered !== null && expected > covered && this.canReplay(now)) {
        // Published after the replay was served, then lost on the live socket: ask again.
        this.buffer = pending.slice(i);
        this.startReplay(expected);
        return;
      }
      this.clear();
      this.applyBatch(b);
    }
  }

  /** The replay timed out or its socket failed: rebuild from the live batches, and wait before asking again. */
  replayFailed(now: number): void {
    if (this.replay === null) return;
    this.replay = null;
    this.actions.cancelReplay();
    this.counters.replaysFailed++;
    this.failures++;
    this.cooldownUntil = now + Math.min(this.maxCooldownMs, this.cooldownMs * 2 ** (this.failures - 1));
    this.chained = 0;
    const pending = this.buffer.sort(bySeq);
    this.buffer = pending.slice(1);
    this.clear();
    if (pending.length > 0) this.applyBatch(pending[0]!);
    this.drain(now, null);
  }

  /** The source is going away: nothing more will be applied. */
  stop(): void {
    if (this.replay !== null) {
      this.replay = null;
      this.actions.cancelReplay();
    }
    this.buffer = [];
  }
}
