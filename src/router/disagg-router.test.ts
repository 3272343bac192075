import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createBlockHasher } from "../kv/block-hash.ts";
import { docTokens, routeRequest, storedEvent, TEST_BLOCK } from "../testing/route-requests.ts";
import { DisaggRouter } from "./disagg-router.ts";
import { decisionLabel, type RouterPolicy } from "./router.ts";

const hasher = await createBlockHasher();

function cluster(policy: RouterPolicy = "kv") {
  const router = new DisaggRouter(policy, { blockSize: TEST_BLOCK, hasher, seed: 3 });
  router.addPrefillWorker("p0", 8);
  router.addPrefillWorker("p1", 8);
  router.addDecodeWorker("d0", 8);
  router.addDecodeWorker("d1", 8);
  return router;
}

describe("disaggregated routing", () => {
  it("sends the prompt to the prefill rank caching its prefix, and decode by load only", () => {
    const router = cluster();
    const req = routeRequest(hasher, "q", docTokens(4, 12));
    router.applyEvent(storedEvent(req, "p1", 5, 12), 0);
    // A decode rank caching the prefix does not attract the request: decode ignores prefixes.
    router.applyEvent(storedEvent(req, "d0", 2, 12), 0);
    const d = router.route(req, 1);
    assert.equal(decisionLabel(d.prefill!), "p1/5");
    assert.equal(d.prefill!.overlapBlocks, 12);
    assert.notEqual(decisionLabel(d.decode), "d0/2");
    // Decode load counts the request's blocks without sharing.
    assert.equal(router.decode.load.activeBlocks(d.decode.targetId), 12);
    assert.equal(router.prefill.load.activeBlocks(d.prefill!.targetId), 0);
  });

  it("balances decode blocks across ranks", () => {
    const router = cluster();
    const ranks = new Set<string>();
    for (let i = 0; i < 16; i++) {
      const d = router.route(routeRequest(hasher, `r${i}`, docTokens(1, 12)), i);
      ranks.add(decisionLabel(d.decode));
    }
    assert.equal(ranks.size, 16);
  });

  it("frees the prefill leg when the KV is handed over and the decode leg at stream end", () => {
    const router = cluster();
    const d = router.route(routeRequest(hasher, "q", docTokens(2, 12)), 0);
    assert.equal(router.prefill.load.prefillTokens(d.prefill!.targetId), 48);
    router.prefillFinished("q", 1);
    assert.equal(router.prefill.load.activeRequests(d.prefill!.targetId), 0);
    assert.equal(router.decode.load.activeRequests(d.decode.targetId), 1);
    router.free("q", 2);
    assert.equal(router.decode.load.activeRequests(d.decode.targetId), 0);
  });

  it("falls back to aggregated KV routing when no prefill worker is routable", () => {
    const router = cluster();
    router.setHealthy("p0", false);
    router.setHealthy("p1", false);
    const req = routeRequest(hasher, "q", docTokens(4, 12));
    router.applyEvent(storedEvent(req, "d1", 3, 12), 0);
    const d = router.route(req, 1);
    assert.equal(d.prefill, null);
    assert.equal(decisionLabel(d.decode), "d1/3");
  });

  it("fails before recording anything when no decode worker is routable", () => {
    const router = cluster();
    router.setHealthy("d0", false);
    router.setHealthy("d1", false);
    assert.throws(
      () => router.route(routeRequest(hasher, "q", docTokens(4, 12)), 0),
      /no routable decode worker/,
    );
    assert.equal(router.prefill.load.size, 0);
  });

  it("follows a round-robin arm on both legs: workers in turn, each leg its own cycle, ranks left to the engines", () => {
    const router = cluster("round-robin");
    const req = routeRequest(hasher, "q", docTokens(4, 12));
    // A cached prefix does not attract the request under round-robin.
    router.applyEvent(storedEvent(req, "p1", 5, 12), 0);
    const legs = Array.from({ length: 4 }, (_, i) => {
      const d = router.route(routeRequest(hasher, `r${i}`, docTokens(4, 12)), i);
      return [decisionLabel(d.prefill!), decisionLabel(d.decode)];
    });
    assert.deepEqual(legs, [
      ["p0", "d0"],
      ["p1", "d1"],
      ["p0", "d0"],
      ["p1", "d1"],
    ]);
  });
});
