import { type BlockEvents, BlockPool } from "./block-pool.ts";
import type { RankWork, StepTimeModel } from "./perf-model.ts";

export type WorkerRole = "aggregated" | "prefill" | "decode";

/** Engine knobs of one worker (TRT-LLM / vLLM names in comments). */
export interface EngineSettings {
  /** Running sequences per rank (`max_batch_size`). */
  maxBatchSize: number;
  /** Tokens computed per rank per step (`max_num_tokens`). */
  maxNumTokens: number;
  /** Split long prompts over several steps (`enable_chunked_prefill`). */
  chunkedPrefill: boolean;
  /** Tokens per KV block (`tokens_per_block`). */
  blockSize: number;
  /** Reuse cached prompt blocks (`enable_block_reuse`). */
  prefixCaching: boolean;
  /** KV blocks per rank. */
  kvCapacityBlocks: number;
  /** Fraction of KV kept free when admitting new requests (Dynamo mocker: 0.01). */
  watermark: number;
}

/** A request as the engine sees it. */
export interface EngineRequest {
  id: string;
  isl: number;
  osl: number;
  /** Ids of the prompt's full KV blocks (sequence hashes, interned). */
  blockIds: readonly number[];
}

/**
 * What a step produced; the caller stamps everything with the step's end time. Requests come back as the caller
 * queued them (`R`), so it can keep its own per-request state on them instead of looking it up per token.
 */
export interface StepSink<R extends EngineRequest = EngineRequest> {
  /**
   * Token number `index` (1-based) of the request's output; `atMs`, when given, is the clock time of the step that
   * produced it (a run of steps applied at once by `endRun`), else the step ends now.
   */
  token(req: R, rank: number, index: number, atMs?: number): void;
  /** A prefill-only worker finished the prompt; `cachedTokens` were reused from its prefix cache. */
  prefillDone(req: R, rank: number, cachedTokens: number): void;
  /** The request generated its last token (or, on a prefill worker, handed over its KV). */
  finished(req: R, rank: number): void;
}

interface Sequence<R extends EngineRequest = EngineRequest> {
  req: R;
  /** Context tokens to (re)compute before decoding: the prompt, plus generated tokens after a preemption. */
  target: number;
  computed: number;
  generated: number;
  cachedTokens: number;
  /** Blocks held: shared prompt blocks and a count of private ones. */
  shared: readonly number[];
  privateBlocks: number;
  admitted: boolean;
}

interface PlannedChunk<R extends EngineRequest> {
  seq: Sequence<R>;
  tokens: number;
}

class Rank<R extends EngineRequest> {
  readonly pool: BlockPool;
  readonly waiting: Sequence<R>[] = [];
  readonly running: Sequence<R>[] = [];
  chunks: PlannedChunk<R>[] = [];
  decodes: Sequence<R>[] = [];
  /** Tokens reused from the prefix cache by admitted requests, and prompt tokens they asked for. */
  hitTokens = 0;
  promptTokens = 0;

  constructor(capacity: number, prefixCaching: boolean, events: BlockEvents) {
    this.pool = new BlockPool(capacity, prefixCaching, events);
  }
}

/**
 * One engine worker: `dpSize` attention-DP ranks, each with its own KV blocks and running batch, stepping in
 * lockstep (a worker without attention DP is one rank). Clock-agnostic: the caller asks for the next step's
 * duration (`beginStep`), waits that long on its own clock, and applies it (`endStep`).
 *
 * Per rank and step: running decodes take one token each of the `maxNumTokens` budget, running prefills take
 * chunks of what is left, then waiting requests are admitted (FIFO) while the batch has room and their KV fits under
 * the watermark. A decode that needs a new block when none is free preempts the newest running request, which
 * later recomputes its context.
 */
export class EngineWorker<R extends EngineRequest = EngineRequest> {
  readonly id: string;
  readonly role: WorkerRole;
  readonly settings: EngineSettings;
  readonly ranks: Rank<R>[];
  private readonly model: StepTimeModel;
  private readonly work: RankWork[];
  private stepping = false;
  private stepMs = 0;
  preemptions = 0;

  constructor(
    id: string,
    dpSize: number,
    role: WorkerRole,
    settings: EngineSettings,
    model: StepTimeModel,
    events: (rank: number) => BlockEvents,
  ) {
    this.id = id;
    this.role = role;
    this.settings = settings;
    this.model = model;
    // Decode workers receive prompts' KV from prefill workers; they cache nothing for reuse.
    const caching = settings.prefixCaching && role !== "decode";
    this.ranks = Array.from(
      { length: dpSize },
      (_, r) => new Rank<R>(settings.kvCapacityBlocks, caching, events(r)),
    );
    this.work = this.ranks.map(() => ({ prefill: [], decode: [], kvUsage: 0 }));
  }

  /**
   * Whether the request can ever run here: its whole context (the prompt, plus the output on a worker that
   * decodes) must fit in a rank's KV under the admission watermark. One that cannot would wait forever.
   */
  canFit(req: R): boolean {
    const context = this.role === "prefill" ? req.isl : req.isl + req.osl;
    const limit = Math.floor((1 - this.settings.watermark) * this.settings.kvCapacityBlocks);
    return Math.ceil(context / this.settings.blockSize) <= limit;
  }

  /** Queues a request on a rank. On a decode worker its prompt KV has arrived and its first token was sent. */
  enqueue(rank: number, req: R): void {
    const r = this.ranks[rank];
    if (!r) throw new RangeError(`worker ${this.id} has no dp rank ${rank}`);
    r.waiting.push({
      req,
      target: req.isl,
      computed: this.role === "decode" ? req.isl : 0,
      generated: this.role === "decode" ? 1 : 0,
      cachedTokens: 0,
      shared: [],
      privateBlocks: 0,
      admitted: false,
    });
  }

  hasWork(): boolean {
    return this.ranks.some((r) => r.waiting.length > 0 || r.running.length > 0);
  }

  get isStepping(): boolean {
    return this.stepping;
  }

  /** Requests queued or running on a rank. */
  load(rank: number): { waiting: number; running: number; kvUsage: number } {
    const r = this.ranks[rank]!;
    return { waiting: r.waiting.length, running: r.running.length, kvUsage: r.pool.inUse / r.pool.capacity };
  }

  /** Prefix-cache hits over prompt tokens admitted on a rank so far. */
  cacheStats(rank: number): { hitTokens: number; promptTokens: number } {
    const r = this.ranks[rank]!;
    return { hitTokens: r.hitTokens, promptTokens: r.promptTokens };
  }

  /** Plans the next step; returns its duration in ms, or null when there is nothing to do. */
  beginStep(): number | null {
    let any = false;
    for (let i = 0; i < this.ranks.length; i++) {
      const rank = this.ranks[i]!;
      this.plan(rank);
      const w = this.work[i]!;
      const chunks = rank.chunks;
      const decodes = rank.decodes;
      w.prefill = chunks.map((c) => ({ tokens: c.tokens, pastTokens: c.seq.computed }));
      w.decode = decodes.map((d) => ({ contextTokens: d.target + d.generated }));
      w.kvUsage = rank.pool.inUse / rank.pool.capacity;
      if (chunks.length > 0 || decodes.length > 0) any = true;
    }
    if (!any) return null;
    this.stepping = true;
    this.stepMs = this.model.stepMs(this.work);
    return this.stepMs;
  }

  /**
   * After `beginStep`: when the planned step only decodes and nothing waits, the steps after it decode the same
   * sequences, one token each, until one of them finishes or needs a new KV block, or a request arrives. Writes
   * the durations of the planned step and of up to `max − 1` such steps into `ms` and returns how many (1 when the
   * step is not of that kind). `endRun` applies them: a caller on a virtual clock schedules one event for the lot
   * instead of one per step, which is most of a light load's events.
   */
  planRun(max: number, ms: Float64Array): number {
    ms[0] = this.stepMs;
    const bs = this.settings.blockSize;
    let steps = Math.min(max, ms.length);
    for (const rank of this.ranks) {
      if (rank.waiting.length > 0 || rank.chunks.length > 0 || rank.decodes.length !== rank.running.length)
        return 1;
      for (const seq of rank.decodes) {
        const context = seq.target + seq.generated;
        // Step j plans context + j tokens of context: at a block boundary it takes a new block (a pool event).
        steps = Math.min(steps, bs - (context % bs), seq.req.osl - seq.generated);
        if (steps <= 1) return 1;
      }
    }
    for (let j = 1; j < steps; j++) {
      for (const w of this.work) for (const d of w.decode) d.contextTokens++;
      ms[j] = this.model.stepMs(this.work);
    }
    return steps;
  }

  /**
   * Applies the first `steps` steps of a run planned by `planRun` (fewer than planned when a request arrived
   * meanwhile: the step in flight then was the last); `endsMs[i]` is when step i ended, the last one ending now.
   */
  endRun(steps: number, sink: StepSink<R>, endsMs: Float64Array): void {
    for (let j = 0; j < steps - 1; j++) {
      for (let r = 0; r < this.ranks.length; r++) {
        for (const seq of this.ranks[r]!.decodes) {
          seq.generated++;
          sink.token(seq.req, r, seq.generated, endsMs[j]!);
        }
      }
    }
    this.endStep(sink);
  }

  private plan(rank: Rank<R>): void {
    const s = this.settings;
    rank.chunks = [];
    rank.decodes = [];
    let budget = s.maxNumTokens;
    for (let i = 0; i < rank.running.length && budget > 0; i++) {
      const seq = rank.running[i]!;
      if (seq.computed < seq.target) continue;
      if (!this.ensureDecodeBlock(rank, seq)) continue;
      rank.decodes.push(seq);
      budget--;
    }
    for (const seq of rank.running) {
      if (budget <= 0) break;
      if (seq.computed < seq.target) budget -= this.planChunk(rank, seq, budget);
    }
    const limit = Math.floor((1 - s.watermark) * rank.pool.capacity);
    while (rank.waiting.length > 0 && rank.running.length < s.maxBatchSize) {
      const seq = rank.waiting[0]!;
      if (!this.admit(rank, seq, limit)) break;
      rank.waiting.shift();
      rank.running.push(seq);
      if (seq.computed >= seq.target) {
        if (budget > 0 && this.ensureDecodeBlock(rank, seq)) {
          rank.decodes.push(seq);
          budget--;
        }
      } else if (budget > 0) {
        budget -= this.planChunk(rank, seq, budget);
      }
    }
  }

  private planChunk(rank: Rank<R>, seq: Sequence<R>, budget: number): number {
    const remaining = seq.target - seq.computed;
    let tokens = Math.min(remaining, budget);
    // Without chunking a prompt runs whole: one longer than the budget runs as the step's only prefill (next to
    // the decodes), or it would wait for every decode on the rank to finish.
    if (!this.settings.chunkedPrefill && tokens < remaining) {
      if (rank.chunks.length > 0) return 0;
      tokens = remaining;
    }
    rank.chunks.push({ seq, tokens });
    return tokens;
  }

  private admit(rank: Rank<R>, seq: Sequence<R>, limit: number): boolean {
    const bs = this.settings.blockSize;
    const contextBlocks = Math.ceil(seq.target / bs);
    if (this.role === "decode" || !rank.pool.prefixCaching) {
      if (!rank.pool.acquirePrivate(contextBlocks, limit)) return false;
      seq.privateBlocks = contextBlocks;
    } else {
      const shared = seq.req.blockIds;
      const privateCount = contextBlocks - shared.length;
      const hit = rank.pool.cachedPrefix(shared);
      if (!rank.pool.acquire(shared, privateCount, limit)) return false;
      seq.shared = shared;
      seq.privateBlocks = privateCount;
      // The last prompt token is always computed, to produce the first output token.
      seq.computed = Math.min(hit * bs, seq.target - 1);
      seq.cachedTokens = seq.computed;
    }
    if (!seq.admitted) {
      rank.hitTokens += seq.cachedTokens;
      rank.promptTokens += seq.req.isl;
    }
    seq.admitted = true;
    return true;
  }

  /** The block the next token goes into, preempting the newest other request when KV is full. */
  private ensureDecodeBlock(rank: Rank<R>, seq: Sequence<R>): boolean {
    const context = seq.target + seq.generated;
    if (context % this.settings.blockSize !== 0) return true;
    while (!rank.pool.acquirePrivate(1)) {
      const victim = rank.running.findLast((s) => s !== seq);
      if (!victim) return false;
      this.preempt(rank, victim);
    }
    seq.privateBlocks++;
    return true;
  }

  private preempt(rank: Rank<R>, seq: Sequence<R>): void {
    this.preemptions++;
    rank.pool.release(seq.shared, seq.privateBlocks);
    rank.running.splice(rank.running.indexOf(seq), 1);
    rank.decodes = rank.decodes.filter((s) => s !== seq);
    rank.chunks = rank.chunks.filter((c) => c.seq !== seq);
    // Generated tokens are kept; the context they extend is recomputed on readmission.
    seq.target = seq.req.isl + seq.generated;
    seq.computed = 0;
    seq.shared = [];
    seq.privateBlocks = 0;
    rank.waiting.unshift(seq);
  }

  /** Applies the planned step; `sink` hears of tokens, handed-over prefills and completions. */
  endStep(sink: StepSink<R>): void {
    this.stepping = false;
    this.ranks.forEach((rank, r) => {
      const done: Sequence<R>[] = [];
      for (const { seq, tokens } of rank.chunks) {
        seq.computed += tokens;
        if (seq.computed < seq.target) continue;
        if (this.role === "prefill") {
          sink.prefillDone(seq.req, r, seq.cachedTokens);
          sink.finished(seq.req, r);
          done.push(seq);
        } else if (seq.generated === 0) {
          seq.generated = 1;
          sink.token(seq.req, r, 1);
          if (seq.generated >= seq.req.osl) done.push(seq);
        }
      }
      for (const seq of rank.decodes) {
        seq.generated++;
        sink.token(seq.req, r, seq.generated);
        if (seq.generated >= seq.req.osl) done.push(seq);
      }
      for (const seq of done) {
        if (this.role !== "prefill") sink.finished(seq.req, r);
        rank.pool.release(seq.shared, seq.privateBlocks);
        rank.running.splice(rank.running.indexOf(seq), 1);
      }
      rank.chunks = [];
      rank.decodes = [];
    });
  }
}
