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
  /**
   * TRT-LLM's ADP balance (`attention_dp_config.enable_balance`, with its `timeout_iters` and
   * `batching_wait_iters`): context work is released on every rank in the same iteration or held on all. Off
   * (absent) by default, as in TRT-LLM.
   */
  adpBalance?: { timeoutIters: number; batchingWaitIters: number };
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

/** A request the worker has not placed on a rank yet; `rank` ≥ 0 when the router pinned one. */
interface Pending<R extends EngineRequest> {
  seq: Sequence<R>;
  rank: number;
}

class Rank<R extends EngineRequest> {
  readonly pool: BlockPool;
  /** Placed here, waiting for KV or a batch slot (preempted requests come back here too). */
  readonly waiting: Sequence<R>[] = [];
  readonly running: Sequence<R>[] = [];
  /** Requests bound for this rank whose KV is still in flight from a prefill worker (see `reserve`). */
  reserved = 0;
  /**
   * Prompt tokens of every request bound to the rank (waiting, running or reserved): the load TRT-LLM's ADP
   * router balances (`num_active_tokens`, the original prompt lengths of the rank's active requests).
   */
  activeTokens = 0;
  chunks: PlannedChunk<R>[] = [];
  decodes: Sequence<R>[] = [];
  /** Tokens reused from the prefix cache by admitted requests, and prompt tokens they asked for. */
  hitTokens = 0;
  promptTokens = 0;

  constructor(capacity: number, prefixCaching: boolean, events: BlockEvents) {
    this.pool = new BlockPool(capacity, prefixCaching, events);
  }

  /** Requests bound to the rank (TRT-LLM's `num_active_requests`). */
  get active(): number {
    return this.waiting.length + this.running.length + this.reserved;
  }
}

/**
 * One engine worker: `dpSize` attention-DP ranks, each with its own KV blocks and running batch, stepping in
 * lockstep (a worker without attention DP is one rank). Clock-agnostic: the caller asks for the next step's
 * duration (`beginStep`), waits that long on its own clock, and applies it (`endStep`).
 *
 * Requests enter one worker-wide queue, and at the top of every step the worker places them on ranks the way
 * TensorRT-LLM's attention-DP router does (`placePending`); a request pinned to a rank by the frontend's router
 * waits there until that rank has room. Once placed, a request stays on its rank.
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
  /** The worker-wide queue of requests not placed yet: `pending[pendingHead…]`. */
  private pending: Pending<R>[] = [];
  private pendingHead = 0;
  /** Requests a rank may hold: TRT-LLM's `max_num_active_requests` (batch size, at most the token budget). */
  readonly rankCap: number;
  /** ADP balance counters: iterations context has waited for every rank, and batching iterations held. */
  private contextWaitIters = 0;
  private batchingWaitIters = 0;
  /** Iterations whose context work ADP balance held back (held while there was some to hold). */
  heldIterations = 0;
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
    this.rankCap = Math.min(settings.maxBatchSize, settings.maxNumTokens);
  }

  /**
   * Whether the request can ever run here: its whole context (the prompt, plus the output on a worker that
   * decodes) must fit in a rank's KV under the admission watermark. One that cannot would wait forever.
   */
  canFit(req: Pick<EngineRequest, "isl" | "osl">): boolean {
    const context = this.role === "prefill" ? req.isl : req.isl + req.osl;
    const limit = Math.floor((1 - this.settings.watermark) * this.settings.kvCapacityBlocks);
    return Math.ceil(context / this.settings.blockSize) <= limit;
  }

  /**
   * Queues a request on the worker, pinned to `rank` or (null) for the worker to place. On a decode worker its
   * prompt KV has arrived and its first token was sent; with `reserved`, `rank` is what `reserve` returned for it
   * and the rank takes it at once. `received` (decode workers only) is how many prompt tokens' KV arrived, the whole
   * prompt unless given: fewer leave the rest to prefill here, and with none the worker prefills the whole prompt
   * and sends the first token itself (a live decode worker asked to serve a request alone, as vLLM's can).
   */
  enqueue(rank: number | null, req: R, reserved = false, received?: number): void {
    if (rank !== null && !this.ranks[rank]) throw new RangeError(`worker ${this.id} has no dp rank ${rank}`);
    if (received !== undefined && (this.role !== "decode" || !(received >= 0 && received <= req.isl)))
      throw new RangeError(
        `worker ${this.id}: ${received} received prompt tokens for a ${this.role} request of ${req.isl}`,
      );
    const computed = this.role === "decode" ? (received ?? req.isl) : 0;
    const seq: Sequence<R> = {
      req,
      target: req.isl,
      computed,
      generated: this.role === "decode" && computed >= req.isl ? 1 : 0,
      cachedTokens: 0,
      shared: [],
      privateBlocks: 0,
      admitted: false,
    };
    if (reserved) {
      this.bind(this.takeReservation(rank!, req), seq);
      return;
    }
    this.pending.push({ seq, rank: rank ?? -1 });
  }

  /** Gives up a place `reserve` held on `rank` for `req` (whose KV will not come after all). */
  unreserve(rank: number, req: R): void {
    this.takeReservation(rank, req);
  }

  private takeReservation(rank: number, req: R): Rank<R> {
    const r = this.ranks[rank];
    if (!r || r.reserved === 0) throw new RangeError(`worker ${this.id}: no place reserved on rank ${rank}`);
    r.reserved--;
    r.activeTokens -= req.isl;
    return r;
  }

  /**
   * Places a request whose KV is still to arrive (a disaggregated decode worker's next request) by the same rule
   * as the queue, and holds its place: `enqueue` on the returned rank takes it when the KV is in.
   */
  reserve(req: R): number {
    const a = this.ranks.map((r) => r.active);
    const t = this.ranks.map((r) => r.activeTokens);
    const rank = this.leastLoadedRank(a, t, this.expectedActive(a, 1), req.isl);
    const r = this.ranks[rank]!;
    r.reserved++;
    r.activeTokens += req.isl;
    return rank;
  }

  hasWork(): boolean {
    return (
      this.pendingHead < this.pending.length ||
      this.ranks.some((r) => r.waiting.length > 0 || r.running.length > 0)
    );
  }

  /** Requests queued on the worker, not placed on a rank yet. */
  get queued(): number {
    return this.pending.length - this.pendingHead;
  }

  get isStepping(): boolean {
    return this.stepping;
  }

  /** Requests placed on a rank and waiting there, running there, and its KV in use. */
  load(rank: number): { waiting: number; running: number; kvUsage: number } {
    const r = this.ranks[rank]!;
    return { waiting: r.waiting.length, running: r.running.length, kvUsage: r.pool.inUse / r.pool.capacity };
  }

  /**
   * Takes a request out of the worker, wherever it is (queued, placed and waiting, or running), returning its KV
   * blocks to the rank's pool; prompt blocks stay cached for reuse, as after a normal completion. Only between
   * steps: a planned step holds references to its sequences. False when the request is not here (finished).
   */
  cancel(req: R): boolean {
    if (this.stepping) throw new Error(`cannot remove ${req.id} from ${this.id} while a step is planned`);
    for (let i = this.pendingHead; i < this.pending.length; i++) {
      if (this.pending[i]!.seq.req !== req) continue;
      this.pending.splice(i, 1);
      return true;
    }
    for (const r of this.ranks) {
      // Waiting sequences hold no blocks: new ones have none yet and preemption released them.
      const w = r.waiting.findIndex((s) => s.req === req);
      const i = w >= 0 ? -1 : r.running.findIndex((s) => s.req === req);
      if (w < 0 && i < 0) continue;
      if (w >= 0) r.waiting.splice(w, 1);
      else {
        const seq = r.running[i]!;
        r.pool.release(seq.shared, seq.privateBlocks);
        r.running.splice(i, 1);
      }
      r.activeTokens -= req.isl;
      return true;
    }
    return false;
  }

  /** Prompt tokens a running request reused from its rank's prefix cache when it was admitted (0 if not running). */
  cachedTokens(req: R): number {
    for (const r of this.ranks) {
      const seq = r.running.find((s) => s.req === req);
      if (seq) return seq.cachedTokens;
    }
    return 0;
  }

  private bind(rank: Rank<R>, seq: Sequence<R>): void {
    rank.waiting.push(seq);
    rank.activeTokens += seq.req.isl;
  }

  /**
   * TRT-LLM's expected active requests per rank after placing `unplaced` more: the fair share
   * ceil((Σ active + unplaced) / ranks), at least the busiest rank's count, at most the cap.
   */
  private expectedActive(active: readonly number[], unplaced: number): number {
    let sum = 0;
    let max = 0;
    for (const a of active) {
      sum += a;
      if (a > max) max = a;
    }
    return Math.min(Math.max(Math.ceil((sum + unplaced) / active.length), max), this.rankCap);
  }

  /**
   * The rank TRT-LLM's `DefaultADPRouter` gives the next request: the least active prompt tokens, then the fewest
   * active requests, then the lowest rank, among ranks below `expected`; takes the request into `a` and `t`.
   */
  private leastLoadedRank(a: number[], t: number[], expected: number, isl: number): number {
    let best = -1;
    for (let r = 0; r < a.length; r++) {
      if (a[r]! >= expected) continue;
      if (best < 0 || t[r]! < t[best]! || (t[r] === t[best] && a[r]! < a[best]!)) best = r;
    }
    // The budget below keeps a free place: Σ(expected − a) ≥ requests to place. A full worker still takes a
    // reservation (a decode rank is chosen as the KV leaves) on its least loaded rank.
    if (best < 0) best = t.indexOf(Math.min(...t));
    a[best]!++;
    t[best]! += isl;
    return best;
  }

  /**
   * TRT-LLM's placement at the top of an iteration (`get_from_waiting_queue`, `DefaultADPRouter.route_requests`):
   * take requests from the head of the queue while the worker is below ranks × cap, skipping (and keeping, in
   * order) pinned ones whose rank is full; pinned ones go to their rank, the rest, longest prompt first, to the
   * least loaded rank below the expected count.
   */
  private placePending(): void {
    if (this.pendingHead >= this.pending.length) return;
    const a = this.ranks.map((r) => r.active);
    const t = this.ranks.map((r) => r.activeTokens);
    let budget = this.ranks.length * this.rankCap;
    for (const x of a) budget -= x;
    if (budget <= 0) return;
    const scratch = a.slice();
    const taken: Pending<R>[] = [];
    const aside: Pending<R>[] = [];
    let head = this.pendingHead;
    while (head < this.pending.length && taken.length < budget) {
      const p = this.pending[head++]!;
      if (p.rank < 0) taken.push(p);
      else if (scratch[p.rank]! < this.rankCap) {
        scratch[p.rank]!++;
        taken.push(p);
      } else aside.push(p);
    }
    // Pinned requests set aside go back to the head of the queue, in their order.
    for (let i = 0; i < aside.length; i++) this.pending[head - aside.length + i] = aside[i]!;
    this.pendingHead = head - aside.length;
    if (this.pendingHead > 1024 && this.pendingHead * 2 > this.pending.length) {
      this.pending = this.pending.slice(this.pendingHead);
      this.pendingHead = 0;
    }
    const unpinned: Pending<R>[] = [];
    for (const p of taken) {
      if (p.rank < 0) {
        unpinned.push(p);
        continue;
      }
      a[p.rank]!++;
      this.bind(this.ranks[p.rank]!, p.seq);
    }
    if (unpinned.length === 0) return;
    const expected = this.expectedActive(a, unpinned.length);
    // Longest prompt first; the sort is stable, so equal prompts keep their queue order.
    unpinned.sort((x, y) => y.seq.req.isl - x.seq.req.isl);
    for (const p of unpinned)
      this.bind(this.ranks[this.leastLoadedRank(a, t, expected, p.seq.req.isl)]!, p.seq);
  }

  /** Prefix-cache hits over prompt tokens admitted on a rank so far. */
  cacheStats(rank: number): { hitTokens: number; promptTokens: number } {
    const r = this.ranks[rank]!;
    return { hitTokens: r.hitTokens, promptTokens: r.promptTokens };
  }

  /** Plans the next step; returns its duration in ms, or null when there is nothing to do. */
  beginStep(): number | null {
    this.placePending();
    for (const rank of this.ranks) this.plan(rank);
    if (this.settings.adpBalance && this.holdContext() && this.ranks.some((r) => r.chunks.length > 0)) {
      this.heldIterations++;
      for (const rank of this.ranks) rank.chunks = [];
    }
    let any = false;
    for (let i = 0; i < this.ranks.length; i++) {
      const rank = this.ranks[i]!;
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
   * ADP balance's decision for this iteration (TRT-LLM `_balance_adp_requests`), the same on every rank: when every
   * rank has context scheduled and a free slot, context runs, after up to `batchingWaitIters` held iterations
   * while every rank also decodes; otherwise it is held until `timeoutIters` iterations have passed, or at once
   * released when some rank has nothing to decode. A rank without requests counts one decode (its dummy).
   */
  private holdContext(): boolean {
    const cfg = this.settings.adpBalance!;
    let everyContext = true;
    let everyDecode = true;
    let everyFree = true;
    for (const rank of this.ranks) {
      const gen = rank.decodes.length + (rank.active === 0 ? 1 : 0);
      if (rank.chunks.length === 0) everyContext = false;
      if (gen === 0) everyDecode = false;
      if (gen >= this.settings.maxBatchSize) everyFree = false;
    }
    if (everyFree && everyContext) {
      this.contextWaitIters = 0;
      if (!everyDecode) return false;
      if (this.batchingWaitIters < cfg.batchingWaitIters) {
        this.batchingWaitIters++;
        return true;
      }
      this.batchingWaitIters = 0;
      return false;
    }
    this.contextWaitIters++;
    if (this.contextWaitIters >= cfg.timeoutIters || !everyDecode) {
      this.contextWaitIters = 0;
      return false;
    }
    return true;
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
    // Queued requests wait for a slot, which only a finishing request (the end of a run) frees.
    if (this.queued > 0 && this.ranks.some((r) => r.active < this.rankCap)) return 1;
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
    // The run's later steps are iterations too: ADP balance counts them (nothing to hold, only to count).
    if (this.settings.adpBalance) for (let j = 1; j < steps; j++) this.holdContext();
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
        rank.activeTokens -= seq.req.isl;
      }
      rank.chunks = [];
      rank.decodes = [];
    });
  }
}
