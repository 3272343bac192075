import { hashCount } from "../kv/hash-seq.ts";
import { BaseRouter, type RouteGranularity, type RouteRequest, type RouterPolicy } from "./router.ts";
import { kvCost, selectByCost } from "./selection.ts";

/**
 * Each routable worker in turn, in the order workers joined (Dynamo `--router-mode round-robin`, which cycles over
 * instances): the engine places the request on one of the worker's DP ranks.
 */
export class RoundRobinRouter extends BaseRouter {
  readonly policy: RouterPolicy = "round-robin";
  readonly granularity: RouteGranularity = "worker";
  private cursor = 0;

  protected choose(_req: RouteRequest, candidates: readonly number[]) {
    const targetId = candidates[this.cursor % candidates.length]!;
    this.cursor = (this.cursor + 1) % candidates.length;
    return { targetId, overlapBlocks: 0 };
  }
}

/** A uniformly random routable worker from the seeded generator (Dynamo `--router-mode random`). */
export class RandomRouter extends BaseRouter {
  readonly policy: RouterPolicy = "random";
  readonly granularity: RouteGranularity = "worker";

  protected choose(_req: RouteRequest, candidates: readonly number[]) {
    return { targetId: candidates[this.rng.int(candidates.length)]!, overlapBlocks: 0 };
  }
}

/**
 * The worker with the least work, as the KV cost with no cache overlap anywhere: pending prefill blocks (this
 * request's prompt included) plus active KV blocks, over all its ranks. Ties are broken at random. Like the other
 * load-only policies it picks a worker and leaves the rank to the engine.
 */
export class LeastLoadedRouter extends BaseRouter {
  readonly policy: RouterPolicy = "least-loaded";
  readonly granularity: RouteGranularity = "worker";

  protected choose(req: RouteRequest, candidates: readonly number[]) {
    const blocks = hashCount(req.seqs);
    const overlap = this.reuse(req) ? this.load.activeOverlap(req.seqs) : undefined;
    const costs = candidates.map((t) =>
      kvCost(
        (this.load.prefillTokens(t) + req.isl) / this.blockSize,
        this.load.activeBlocks(t) + blocks - (overlap?.[t] ?? 0),
        1,
      ),
    );
    const i = selectByCost(costs, new Float64Array(costs.length), 0, this.rng);
    return { targetId: candidates[i]!, overlapBlocks: 0, cost: costs[i]! };
  }
}
