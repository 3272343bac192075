import type { RouterEvent } from "../../kv/events.ts";
import { type CreateRouterOptions, createRouter } from "../../router/create-router.ts";
import { DisaggRouter } from "../../router/disagg-router.ts";
import type { RouteDecision, RouteRequest, Router, RouterPolicy } from "../../router/router.ts";
import type { WorkerType } from "./frontend-metrics.ts";

/** Where one request goes: a decode (or aggregated) worker, and for disaggregated serving its prefill worker. */
export interface RoutingPlan {
  prefill: RouteDecision | null;
  decode: RouteDecision;
}

/**
 * The frontend's routers behind one face: one router over aggregated workers, or Dynamo's two legs (a prefill
 * router and a decode router, `DisaggRouter`) over prefill and decode pools. The request lifecycle calls are the
 * same either way, so the HTTP path does not branch on the arm's shape.
 */
export class RoutingPools {
  readonly aggregated: Router | undefined;
  readonly disagg: DisaggRouter | undefined;
  private readonly roles = new Map<string, WorkerType>();

  constructor(policy: RouterPolicy, opts: CreateRouterOptions, disaggregated: boolean) {
    if (disaggregated) this.disagg = new DisaggRouter(policy, opts);
    else this.aggregated = createRouter(policy, opts);
  }

  get disaggregated(): boolean {
    return this.disagg !== undefined;
  }

  /** Each router with the role of its workers. */
  routers(): { router: Router; role: WorkerType }[] {
    if (this.aggregated) return [{ router: this.aggregated, role: "aggregated" }];
    const d = this.disagg!;
    return [
      { router: d.prefill, role: "prefill" },
      { router: d.decode, role: "decode" },
    ];
  }

  routerOf(workerId: string): Router {
    if (this.aggregated) return this.aggregated;
    return this.roles.get(workerId) === "prefill" ? this.disagg!.prefill : this.disagg!.decode;
  }

  addWorker(workerId: string, role: WorkerType, dpRanks: number): void {
    if ((role === "aggregated") !== (this.aggregated !== undefined)) {
      throw new RangeError(
        `worker ${workerId} is ${role}, but this frontend serves ${this.aggregated ? "aggregated" : "prefill and decode"} workers`,
      );
    }
    this.roles.set(workerId, role);
    if (this.aggregated) this.aggregated.addWorker(workerId, dpRanks);
    else if (role === "prefill") this.disagg!.addPrefillWorker(workerId, dpRanks);
    else this.disagg!.addDecodeWorker(workerId, dpRanks);
  }

  setHealthy(workerId: string, healthy: boolean): void {
    if (this.aggregated) this.aggregated.setHealthy(workerId, healthy);
    else this.disagg!.setHealthy(workerId, healthy);
  }

  /** Whether a request can be served now (without a prefill worker a disaggregated arm decodes aggregated). */
  canRoute(): boolean {
    return (this.aggregated ?? this.disagg!.decode).hasRoutableTargets();
  }

  route(req: RouteRequest, now: number): RoutingPlan {
    if (this.aggregated) return { prefill: null, decode: this.aggregated.route(req, now) };
    return this.disagg!.route(req, now);
  }

  /** The prompt's KV is computed (aggregated: the first token; disaggregated: the prefill leg answered). */
  prefillDone(requestId: string, now: number): void {
    if (this.aggregated) this.aggregated.markPrefillCompleted(requestId, now);
    else this.disagg!.prefillFinished(requestId, now);
  }

  free(requestId: string, now: number): void {
    (this.aggregated ?? this.disagg!).free(requestId, now);
  }

  applyEvent(ev: RouterEvent, now: number): void {
    (this.aggregated ?? this.disagg!).applyEvent(ev, now);
  }
}
