import { ServelabError } from "../errors.ts";
import type { RouterEvent } from "../kv/events.ts";
import { type HashSeq, hashCount } from "../kv/hash-seq.ts";
import { TargetRegistry } from "../kv/targets.ts";
import { createRng, type Rng } from "../random.ts";
import { ActiveSequences } from "./active-sequences.ts";

export type RouterPolicy = "round-robin" | "random" | "least-loaded" | "kv";
export const ROUTER_POLICIES: readonly RouterPolicy[] = ["round-robin", "random", "least-loaded", "kv"];

/**
 * What a policy chooses. Dynamo's round-robin and random frontends pick an instance, a whole worker
 * (`push_router.rs`: `instance_ids[counter % count]`); only the KV router scores and pins DP ranks.
 */
export type RouteGranularity = "worker" | "rank";

/** `worker/rank` for a pinned decision, `worker` when the engine places the request. */
export function decisionLabel(d: Pick<RouteDecision, "workerId" | "dpRank">): string {
  return d.dpRank === null ? d.workerId : `${d.workerId}/${d.dpRank}`;
}

/** Per-request changes to the router's settings (Dynamo's `router_config_override`). */
export interface RouterOverrides {
  overlapScoreWeight?: number;
  temperature?: number;
  /** Count the prompt's blocks as shareable with other requests on the target (default true). */
  assumeKvReuse?: boolean;
  /** Count the prompt's uncached tokens as pending prefill until the first token (default true). */
  trackPrefillTokens?: boolean;
}

export interface RouteRequest {
  requestId: string;
  /** Prompt tokens. */
  isl: number;
  /** Sequence hashes of the prompt's full KV blocks. */
  seqs: HashSeq;
  /** Local hashes of the same blocks (approximate mode records them). */
  locals?: HashSeq;
  overrides?: RouterOverrides;
}

export interface RouteDecision {
  workerId: string;
  /**
   * The attention-DP rank the request is pinned to (Dynamo's `routing.dp_rank`, which its TRT-LLM handler passes
   * as `attention_dp_rank` with `attention_dp_relax=False`), or null when the router chose a worker only and the
   * engine places the request on one of its ranks itself.
   */
  dpRank: number | null;
  /** The router's target: a rank for rank-pinning policies, the whole worker for the others. */
  targetId: number;
  /** Leading prompt blocks the target holds in the KV index (0 for policies that do not look). */
  overlapBlocks: number;
  /** The policy's cost of the chosen target (lower is better), when the policy has one. */
  cost?: number;
}

/**
 * One interface for every routing policy. All calls take the current time in milliseconds (virtual or wall
 * clock) and never read a clock themselves. `route` both chooses and records the request as active on its target;
 * the caller reports the first token (`markPrefillCompleted`) and the end of the stream (`free`).
 */
export interface Router {
  readonly policy: RouterPolicy;
  /** `rank`: targets are DP ranks and decisions pin one; `worker`: targets are whole workers. */
  readonly granularity: RouteGranularity;
  readonly targets: TargetRegistry;
  readonly load: ActiveSequences;
  /** Adds a worker with `dpRanks` attention-DP ranks: one target per rank, or one for the worker (see granularity). */
  addWorker(workerId: string, dpRanks: number): void;
  removeWorker(workerId: string): void;
  /** Unhealthy workers keep their state but receive no new requests. */
  setHealthy(workerId: string, healthy: boolean): void;
  /** Whether some worker can take a request now. */
  hasRoutableTargets(): boolean;
  route(req: RouteRequest, now: number): RouteDecision;
  markPrefillCompleted(requestId: string, now: number): void;
  free(requestId: string, now: number): void;
  /** Feeds a KV event (ignored by policies that do not use the KV index). */
  applyEvent(ev: RouterEvent, now: number): void;
}

export interface RouterOptions {
  /** Tokens per KV block (the engines' block size). */
  blockSize: number;
  seed?: number;
  /** Shared with a KV index when one feeds the router. */
  targets?: TargetRegistry;
  /** Stale active requests are dropped after this long (Dynamo: 300 s). */
  activeExpiryMs?: number;
  /** Track requests' blocks in the load view (Dynamo `router_track_active_blocks`, default true). */
  trackActiveBlocks?: boolean;
  /** Default for `RouterOverrides.assumeKvReuse` (Dynamo `router_assume_kv_reuse`, default true). */
  assumeKvReuse?: boolean;
}

/** Pool membership, health and load bookkeeping shared by every policy; subclasses only choose. */
export abstract class BaseRouter implements Router {
  abstract readonly policy: RouterPolicy;
  abstract readonly granularity: RouteGranularity;
  readonly targets: TargetRegistry;
  readonly load: ActiveSequences;
  readonly blockSize: number;
  protected readonly rng: Rng;
  protected readonly trackActiveBlocks: boolean;
  protected readonly assumeKvReuse: boolean;
  /** Routable target ids in the order their workers joined. */
  private pool: number[] = [];
  private readonly unhealthy = new Set<string>();
  private readonly workers = new Map<string, number[]>();

  constructor(opts: RouterOptions) {
    if (!Number.isInteger(opts.blockSize) || opts.blockSize < 1) {
      throw new ServelabError("USAGE", `router block size must be a positive integer, got ${opts.blockSize}`);
    }
    this.blockSize = opts.blockSize;
    this.targets = opts.targets ?? new TargetRegistry();
    this.load = new ActiveSequences(opts.activeExpiryMs);
    this.rng = createRng(opts.seed ?? 0, "router");
    this.trackActiveBlocks = opts.trackActiveBlocks ?? true;
    this.assumeKvReuse = opts.assumeKvReuse ?? true;
  }

  addWorker(workerId: string, dpRanks: number): void {
    if (!Number.isInteger(dpRanks) || dpRanks < 1) {
      throw new ServelabError(
        "USAGE",
        `worker ${workerId}: dp ranks must be a positive integer, got ${dpRanks}`,
      );
    }
    if (this.workers.has(workerId)) this.removeWorker(workerId);
    // A worker-level policy's one target is registered as the worker's rank 0: it stands for the whole worker.
    const targets = this.granularity === "rank" ? dpRanks : 1;
    const ids = Array.from({ length: targets }, (_, dpRank) => this.targets.add({ workerId, dpRank }));
    this.workers.set(workerId, ids);
    this.load.fitTargets(this.targets.idLimit);
    this.onTargetsAdded(ids);
    this.rebuildPool();
  }

  removeWorker(workerId: string): void {
    const ids = this.workers.get(workerId);
    if (!ids) return;
    this.workers.delete(workerId);
    this.unhealthy.delete(workerId);
    for (const t of ids) this.load.dropTarget(t);
    this.onWorkerRemoved(workerId, ids);
    this.rebuildPool();
  }

  setHealthy(workerId: string, healthy: boolean): void {
    if (!this.workers.has(workerId)) {
      throw new ServelabError("ROUTER_UNKNOWN_TARGET", `worker ${workerId} is not in the router's pool`);
    }
    if (healthy) this.unhealthy.delete(workerId);
    else this.unhealthy.add(workerId);
    this.rebuildPool();
  }

  private rebuildPool(): void {
    this.pool = [];
    for (const [workerId, ids] of this.workers) if (!this.unhealthy.has(workerId)) this.pool.push(...ids);
  }

  hasWorker(workerId: string): boolean {
    return this.workers.has(workerId);
  }

  hasRoutableTargets(): boolean {
    return this.pool.length > 0;
  }

  /** Routable targets, in join order. */
  protected candidates(): readonly number[] {
    if (this.pool.length === 0) {
      throw new ServelabError(
        "ROUTER_NO_TARGET",
        this.workers.size === 0 ? "the router has no workers" : "every worker of the router is unhealthy",
      );
    }
    return this.pool;
  }

  route(req: RouteRequest, now: number): RouteDecision {
    this.load.expire(now);
    const { targetId, overlapBlocks, cost } = this.choose(req, this.candidates(), now);
    this.record(req, targetId, overlapBlocks, now);
    return this.decision(targetId, overlapBlocks, cost);
  }

  protected decision(targetId: number, overlapBlocks: number, cost: number | undefined): RouteDecision {
    const t = this.targets.get(targetId);
    const d: RouteDecision = {
      workerId: t.workerId,
      dpRank: this.granularity === "rank" ? t.dpRank : null,
      targetId,
      overlapBlocks,
    };
    if (cost !== undefined) d.cost = cost;
    return d;
  }

  /** Uncached prompt tokens of a request on a target with `overlapBlocks` cached blocks. */
  protected newTokens(req: RouteRequest, overlapBlocks: number): number {
    return Math.max(req.isl - overlapBlocks * this.blockSize, 0);
  }

  protected reuse(req: RouteRequest): boolean {
    return req.overrides?.assumeKvReuse ?? this.assumeKvReuse;
  }

  protected record(req: RouteRequest, target: number, overlapBlocks: number, now: number): void {
    const blocks = this.trackActiveBlocks ? hashCount(req.seqs) : 0;
    const shared = this.trackActiveBlocks && this.reuse(req);
    const prefill = req.overrides?.trackPrefillTokens === false ? 0 : this.newTokens(req, overlapBlocks);
    this.load.add(req.requestId, target, shared ? req.seqs : null, shared ? 0 : blocks, prefill, now);
    this.onRouted(req, target, now);
  }

  markPrefillCompleted(requestId: string, _now: number): void {
    this.load.markPrefillCompleted(requestId);
  }

  free(requestId: string, _now: number): void {
    this.load.free(requestId);
  }

  applyEvent(_ev: RouterEvent, _now: number): void {}

  protected abstract choose(
    req: RouteRequest,
    candidates: readonly number[],
    now: number,
  ): { targetId: number; overlapBlocks: number; cost?: number };

  protected onTargetsAdded(_ids: readonly number[]): void {}
  protected onWorkerRemoved(_workerId: string, _ids: readonly number[]): void {}
  protected onRouted(_req: RouteRequest, _target: number, _now: number): void {}
}
