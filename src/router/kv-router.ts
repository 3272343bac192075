import { ApproxKvIndex, type ApproxOptions } from "../kv/approx-index.ts";
import type { BlockDirectory } from "../kv/block-directory.ts";
import type { BlockHasher } from "../kv/block-hash.ts";
import type { RouterEvent } from "../kv/events.ts";
import { hashCount } from "../kv/hash-seq.ts";
import { KvIndex } from "../kv/kv-index.ts";
import {
  BaseRouter,
  type RouteDecision,
  type RouteGranularity,
  type RouteRequest,
  type RouterOptions,
  type RouterPolicy,
} from "./router.ts";
import { kvCost, selectByCost } from "./selection.ts";

export interface KvRouterOptions extends RouterOptions {
  hasher: BlockHasher;
  /** Weight of the prefill term (Dynamo `--kv-overlap-score-weight`, default 1). */
  overlapScoreWeight?: number;
  /** Softmax temperature over costs; 0 picks the minimum (Dynamo `--router-temperature`, default 0). */
  temperature?: number;
  /** Learn cache contents from KV events (default); false = approximate mode from routing decisions. */
  useKvEvents?: boolean;
  approx?: ApproxOptions;
  /** Presizes the KV index for this many (block, target) entries (see KvIndex). */
  expectedIndexEntries?: number;
  /**
   * Engines name blocks by the router's own sequence hashes (simulated engines): the index can skip its table of
   * engine hashes. Approximate mode always can.
   */
  seqAddressedEvents?: boolean;
  /** Blocks known before any event (a simulation's prompt blocks), numbered for the index (see PrefixIndex). */
  blockDirectory?: BlockDirectory;
}

/**
 * Dynamo's KV-aware router: for every routable target, the cost of sending this request there is
 * `overlap_score_weight × prefill_blocks + decode_blocks`, where prefill blocks are the target's queued prefill
 * plus this request's prompt minus what the target already caches, and decode blocks are the KV blocks it would
 * hold. The cheapest target wins (see `selectByCost` for ties and temperature).
 */
export class KvRouter extends BaseRouter {
  readonly policy: RouterPolicy = "kv";
  readonly granularity: RouteGranularity = "rank";
  readonly index: KvIndex;
  readonly approx: ApproxKvIndex | undefined;
  readonly overlapScoreWeight: number;
  readonly temperature: number;
  /** KV events dropped because their worker is not in the pool. */
  ignoredEvents = 0;
  /** Per-candidate scratch, reused across requests so routing allocates nothing per target. */
  private costs = new Float64Array(64);
  private trees = new Float64Array(64);

  constructor(opts: KvRouterOptions) {
    super(opts);
    this.index = new KvIndex(
      opts.hasher,
      this.targets,
      opts.expectedIndexEntries,
      opts.seqAddressedEvents === true || opts.useKvEvents === false,
      opts.blockDirectory,
    );
    this.approx = opts.useKvEvents === false ? new ApproxKvIndex(this.index, opts.approx) : undefined;
    this.overlapScoreWeight = opts.overlapScoreWeight ?? 1;
    this.temperature = opts.temperature ?? 0;
  }

  protected override onTargetsAdded(ids: readonly number[]): void {
    for (const id of ids) {
      const t = this.targets.get(id);
      this.index.addTarget(t.workerId, t.dpRank);
    }
  }

  protected override onWorkerRemoved(workerId: string, ids: readonly number[]): void {
    for (const id of ids) this.approx?.forgetTarget(id);
    this.index.removeWorker(workerId);
  }

  protected override onRouted(req: RouteRequest, target: number, now: number): void {
    if (!this.approx) return;
    // The index stores local hashes to rebuild itself from a dump; sequence hashes in their place would not chain.
    if (!req.locals)
      throw new TypeError("approximate KV routing needs the request's local block hashes (locals)");
    this.approx.record(target, req.seqs, req.locals, now);
  }

  /** Events from workers outside the pool (late ones from a removed worker, or strays) are counted and dropped. */
  override applyEvent(ev: RouterEvent, _now: number): void {
    if (this.approx) return;
    if (!this.hasWorker(ev.workerId)) {
      this.ignoredEvents++;
      return;
    }
    this.index.apply(ev);
  }

  /**
   * What `route` would choose now — overlap lookup, costs and selection — without recording the request (the
   * random tie-break still draws from the router's generator).
   */
  evaluate(req: RouteRequest, now: number): RouteDecision {
    const { targetId, overlapBlocks, cost } = this.choose(req, this.candidates(), now);
    return this.decision(targetId, overlapBlocks, cost);
  }

  protected choose(req: RouteRequest, candidates: readonly number[], now: number) {
    this.approx?.expire(now);
    const weight = req.overrides?.overlapScoreWeight ?? this.overlapScoreWeight;
    const temperature = req.overrides?.temperature ?? this.temperature;
    const blocks = hashCount(req.seqs);
    const matches = this.index.findMatches(req.seqs);
    const reuse = this.trackActiveBlocks && this.reuse(req);
    const activeOverlap = reuse ? this.load.activeOverlap(req.seqs) : undefined;
    const n = candidates.length;
    if (this.costs.length < n) {
      this.costs = new Float64Array(n * 2);
      this.trees = new Float64Array(n * 2);
    }
    const costs = this.costs.subarray(0, n);
    const trees = this.trees.subarray(0, n);
    for (let i = 0; i < n; i++) {
      const t = candidates[i]!;
      const pending = this.load.prefillTokens(t) + this.newTokens(req, matches.scores[t]!);
      const incoming = this.trackActiveBlocks ? blocks - (activeOverlap?.[t] ?? 0) : 0;
      costs[i] = kvCost(pending / this.blockSize, this.load.activeBlocks(t) + incoming, weight);
      trees[i] = matches.treeSizes[t]!;
    }
    const pick = selectByCost(costs, trees, temperature, this.rng);
    const targetId = candidates[pick]!;
    return { targetId, overlapBlocks: matches.scores[targetId]!, cost: costs[pick]! };
  }
}
