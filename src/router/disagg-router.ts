import { ServelabError } from "../errors.ts";
import type { RouterEvent } from "../kv/events.ts";
import { type CreateRouterOptions, createRouter } from "./create-router.ts";
import type { RouteDecision, RouteRequest, Router, RouterPolicy } from "./router.ts";

/** Where a request goes in disaggregated serving; `prefill` is null when it fell back to aggregated serving. */
export interface DisaggDecision {
  prefill: RouteDecision | null;
  decode: RouteDecision;
}

/**
 * The decode leg ignores prefixes and prefill queues: it balances KV blocks only (Dynamo's decode override,
 * `prefill_router.rs`). Policies that do not score costs ignore it.
 */
export const DECODE_OVERRIDES = {
  overlapScoreWeight: 0,
  assumeKvReuse: false,
  trackPrefillTokens: false,
} as const;

/**
 * Dynamo's disaggregated flow, under the frontend's one `--router-mode` for both legs (`watcher.rs` builds the
 * prefill router with the frontend's mode; `common.rs` the decode router). With `kv`: a KV-aware prefill router
 * (prefix overlap against the prefill workers' caches, load = queued prefill tokens, no active-block tracking)
 * picks the prompt's (worker, rank), then a load-only KV router picks the decode rank. With round-robin or random
 * each leg has its own router cycling over (or drawing) instances, and each engine places the request on a rank.
 * With no routable prefill worker, the decode pool serves the request aggregated.
 */
export class DisaggRouter {
  readonly prefill: Router;
  readonly decode: Router;
  private readonly prefillWorkers = new Set<string>();

  constructor(policy: RouterPolicy, opts: CreateRouterOptions) {
    this.prefill = createRouter(policy, { ...opts, trackActiveBlocks: false, seed: opts.seed ?? 0 });
    // Decode workers publish no KV events: their index stays empty, so it is not presized.
    const { expectedIndexEntries: _presize, ...decodeOpts } = opts;
    this.decode = createRouter(policy, { ...decodeOpts, seed: (opts.seed ?? 0) + 1 });
  }

  addPrefillWorker(workerId: string, dpRanks: number): void {
    this.prefill.addWorker(workerId, dpRanks);
    this.prefillWorkers.add(workerId);
  }

  addDecodeWorker(workerId: string, dpRanks: number): void {
    this.decode.addWorker(workerId, dpRanks);
  }

  removeWorker(workerId: string): void {
    this.prefill.removeWorker(workerId);
    this.decode.removeWorker(workerId);
    this.prefillWorkers.delete(workerId);
  }

  setHealthy(workerId: string, healthy: boolean): void {
    (this.prefillWorkers.has(workerId) ? this.prefill : this.decode).setHealthy(workerId, healthy);
  }

  route(req: RouteRequest, now: number): DisaggDecision {
    if (!this.prefill.hasRoutableTargets()) return { prefill: null, decode: this.decode.route(req, now) };
    // Fail before the prefill leg records anything, so a request with nowhere to decode leaves no load behind.
    if (!this.decode.hasRoutableTargets()) {
      throw new ServelabError("ROUTER_NO_TARGET", "the disaggregated router has no routable decode worker");
    }
    const prefill = this.prefill.route(req, now);
    const decode = this.decode.route({ ...req, overrides: { ...req.overrides, ...DECODE_OVERRIDES } }, now);
    return { prefill, decode };
  }

  /** The prefill worker returned the first token and handed the KV over: its part of the request is done. */
  prefillFinished(requestId: string, now: number): void {
    this.prefill.free(requestId, now);
    this.decode.markPrefillCompleted(requestId, now);
  }

  /** The stream ended (or failed). */
  free(requestId: string, now: number): void {
    this.prefill.free(requestId, now);
    this.decode.free(requestId, now);
  }

  /** Prefill workers' events feed the prefill index; decode workers publish none in Dynamo, but are accepted. */
  applyEvent(ev: RouterEvent, now: number): void {
    (this.prefillWorkers.has(ev.workerId) ? this.prefill : this.decode).applyEvent(ev, now);
  }
}
