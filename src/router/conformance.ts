import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ServelabError } from "../errors.ts";
import type { BlockHasher } from "../kv/block-hash.ts";
import { createRng } from "../random.ts";
import { docTokens, routeRequest } from "../testing/route-requests.ts";
import { decisionLabel, type Router } from "./router.ts";

/**
 * The behaviour every routing policy shares, run against each one (see policies.test.ts): a policy that passes can
 * be swapped for another in the simulator or the live frontend.
 */
export function runRouterConformance(
  name: string,
  make: (seed: number) => Router,
  hasher: BlockHasher,
): void {
  const workload = (n: number, seed: number) => {
    const rng = createRng(seed, "workload");
    return Array.from({ length: n }, (_, i) =>
      routeRequest(hasher, `r${i}`, [
        ...docTokens(rng.int(5), 1 + rng.int(4)),
        ...docTokens(1000 + i, 1 + rng.int(3)),
      ]),
    );
  };
  const withWorkers = (router: Router, workers = 4, ranks = 2) => {
    for (let w = 0; w < workers; w++) router.addWorker(`w${w}`, ranks);
    return router;
  };
  /** Routes a workload, completing requests as it goes; returns the chosen target labels. */
  const drive = (router: Router, n: number, seed: number) =>
    workload(n, seed).map((req, i) => {
      const d = router.route(req, i * 10);
      if (i % 3 === 0) router.markPrefillCompleted(req.requestId, i * 10 + 1);
      if (i % 2 === 0) router.free(req.requestId, i * 10 + 5);
      return decisionLabel(d);
    });

  describe(`router conformance: ${name}`, () => {
    it("is deterministic under a seed", () => {
      assert.deepEqual(drive(withWorkers(make(7)), 200, 1), drive(withWorkers(make(7)), 200, 1));
    });

    it("pins a dp rank only when its targets are ranks, else leaves the rank to the engine", () => {
      const router = withWorkers(make(1), 1, 8);
      const seen = new Set(drive(router, 400, 2));
      if (router.granularity === "rank") {
        assert.ok(seen.size > 1, `only ${[...seen]} chosen`);
        for (const label of seen) assert.match(label, /^w0\/[0-7]$/);
        assert.equal(router.targets.size, 8);
      } else {
        assert.deepEqual([...seen], ["w0"]);
        assert.equal(router.targets.size, 1);
      }
    });

    it("never picks a removed or unhealthy target", () => {
      const router = withWorkers(make(3));
      router.removeWorker("w1");
      router.setHealthy("w2", false);
      const chosen = new Set(drive(router, 300, 3));
      for (const label of chosen) assert.match(label, /^w[03](\/|$)/);
      router.setHealthy("w2", true);
      const workers = (labels: string[]) => new Set(labels.map((l) => l.split("/")[0]));
      assert.ok(workers(drive(router, 300, 4)).has("w2") || workers(drive(router, 300, 5)).has("w2"));
    });

    it("fails clearly on an empty or fully unhealthy pool", () => {
      const req = workload(1, 1)[0]!;
      const isNoTarget = (e: unknown) => e instanceof ServelabError && e.code === "ROUTER_NO_TARGET";
      assert.throws(() => make(1).route(req, 0), isNoTarget);
      const router = withWorkers(make(1), 1);
      router.setHealthy("w0", false);
      assert.throws(() => router.route(req, 0), isNoTarget);
      assert.throws(() => router.setHealthy("nobody", true), /not in the router's pool/);
    });

    it("tracks load from routing to completion", () => {
      const router = withWorkers(make(2), 2, 1);
      const reqs = workload(20, 6);
      const decisions = reqs.map((r, i) => router.route(r, i));
      const total = () => router.targets.ids().reduce((a, t) => a + router.load.activeRequests(t), 0);
      assert.equal(total(), 20);
      const t0 = decisions[0]!.targetId;
      assert.ok(router.load.prefillTokens(t0) > 0);
      for (const r of reqs) router.markPrefillCompleted(r.requestId, 100);
      assert.equal(router.load.prefillTokens(t0), 0);
      for (const r of reqs) router.free(r.requestId, 200);
      assert.equal(total(), 0);
      assert.equal(router.load.activeBlocks(t0), 0);
    });

    it("drops requests never completed after the expiry", () => {
      const router = withWorkers(make(2), 1, 1);
      router.route(workload(1, 1)[0]!, 0);
      assert.equal(router.load.size, 1);
      router.route({ ...workload(1, 2)[0]!, requestId: "late" }, 300_001);
      assert.equal(router.load.size, 1);
    });
  });
}
