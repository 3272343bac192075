import type { BlockHasher } from "../kv/block-hash.ts";
import { KvRouter, type KvRouterOptions } from "./kv-router.ts";
import type { Router, RouterOptions, RouterPolicy } from "./router.ts";
import { LeastLoadedRouter, RandomRouter, RoundRobinRouter } from "./simple-policies.ts";

export type CreateRouterOptions = RouterOptions &
  Partial<Omit<KvRouterOptions, keyof RouterOptions>> & {
    hasher?: BlockHasher;
  };

/** A router of the named policy. The KV policy needs the (asynchronously created) block hasher. */
export function createRouter(policy: RouterPolicy, opts: CreateRouterOptions): Router {
  switch (policy) {
    case "round-robin":
      return new RoundRobinRouter(opts);
    case "random":
      return new RandomRouter(opts);
    case "least-loaded":
      return new LeastLoadedRouter(opts);
    case "kv":
      if (!opts.hasher) throw new TypeError("the kv router needs a block hasher (createBlockHasher())");
      return new KvRouter({ ...opts, hasher: opts.hasher });
  }
}
