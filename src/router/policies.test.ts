import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createBlockHasher } from "../kv/block-hash.ts";
import { createRng } from "../random.ts";
import { docTokens, routeRequest, storedEvent, TEST_BLOCK } from "../testing/route-requests.ts";
import { runRouterConformance } from "./conformance.ts";
import { createRouter } from "./create-router.ts";
import { KvRouter } from "./kv-router.ts";
import { decisionLabel, ROUTER_POLICIES } from "./router.ts";
import { kvCost, selectByCost } from "./selection.ts";

const hasher = await createBlockHasher();

for (const policy of ROUTER_POLICIES) {
  runRouterConformance(
    policy,
    (seed) => createRouter(policy, { blockSize: TEST_BLOCK, seed, hasher }),
    hasher,
  );
}
runRouterConformance(
  "kv (approximate, temperature 0.5)",
  (seed) => new KvRouter({ blockSize: TEST_BLOCK, seed, hasher, useKvEvents: false, temperature: 0.5 }),
  hasher,
);

describe("round-robin", () => {
  it("cycles over workers, whatever their dp ranks, and pins no rank (Dynamo's instance-level choice)", () => {
    const router = createRouter("round-robin", { blockSize: TEST_BLOCK });
    router.addWorker("a", 2);
    router.addWorker("b", 8);
    router.addWorker("c", 1);
    const labels: string[] = [];
    for (let i = 0; i < 9; i++)
      labels.push(decisionLabel(router.route(routeRequest(hasher, `r${i}`, docTokens(1, 2)), i)));
    assert.deepEqual(labels, ["a", "b", "c", "a", "b", "c", "a", "b", "c"]);
  });
});

describe("least-loaded", () => {
  it("compares whole workers: the load of all of a worker's requests, wherever the engine put them", () => {
    const router = createRouter("least-loaded", { blockSize: TEST_BLOCK, seed: 1 });
    router.addWorker("a", 8);
    router.addWorker("b", 1);
    // Alternates: after one request on each, the next goes where the sum of blocks is smaller.
    const first = router.route(routeRequest(hasher, "r0", docTokens(1, 8)), 0);
    const second = router.route(routeRequest(hasher, "r1", docTokens(2, 2)), 1);
    assert.notEqual(first.workerId, second.workerId);
    assert.equal(first.dpRank, null);
    const third = router.route(routeRequest(hasher, "r2", docTokens(3, 2)), 2);
    assert.equal(third.workerId, second.workerId);
  });
});

describe("kv router", () => {
  const kv = (opts: Partial<ConstructorParameters<typeof KvRouter>[0]> = {}) => {
    const router = new KvRouter({ blockSize: TEST_BLOCK, hasher, seed: 1, ...opts });
    for (const w of ["a", "b", "c", "d"]) router.addWorker(w, 1);
    return router;
  };

  it("picks the largest overlap when loads are equal", () => {
    const router = kv();
    const req = routeRequest(hasher, "q", docTokens(7, 10));
    router.applyEvent(storedEvent(req, "a", 0, 2), 0);
    router.applyEvent(storedEvent(req, "b", 0, 6), 0);
    router.applyEvent(storedEvent(req, "c", 0, 4), 0);
    const d = router.route(req, 1);
    assert.equal(decisionLabel(d), "b/0");
    assert.equal(d.overlapBlocks, 6);
  });

  it("ignores the cache and spreads load when the overlap weight is 0", () => {
    const router = kv({ overlapScoreWeight: 0 });
    const first = routeRequest(hasher, "q0", docTokens(7, 10));
    router.applyEvent(storedEvent(first, "a", 0, 10), 0);
    const chosen = new Set<string>();
    for (let i = 0; i < 8; i++)
      chosen.add(
        decisionLabel(
          router.route(routeRequest(hasher, `q${i}`, [...docTokens(7, 10), ...docTokens(100 + i, 2)]), i),
        ),
      );
    assert.equal(chosen.size, 4);
  });

  it("honours per-request overrides", () => {
    const router = kv();
    const req = routeRequest(hasher, "q", docTokens(7, 10));
    router.applyEvent(storedEvent(req, "c", 0, 10), 0);
    assert.equal(decisionLabel(router.route(req, 1)), "c/0");
    const other = { ...routeRequest(hasher, "q2", docTokens(7, 10)), overrides: { overlapScoreWeight: 0 } };
    // Weight 0 leaves only decode blocks, where c is now the busiest target.
    assert.notEqual(decisionLabel(router.route(other, 2)), "c/0");
  });

  it("does not starve other targets in a shared-prefix storm when temperature > 0", () => {
    const router = kv({ temperature: 1 });
    for (const w of ["e", "f", "g", "h"]) router.addWorker(w, 1);
    const counts = new Map<string, number>();
    for (let i = 0; i < 400; i++) {
      const req = routeRequest(hasher, `s${i}`, [...docTokens(1, 16), ...docTokens(1000 + i, 1)]);
      const d = router.route(req, i);
      // The engine caches what it served, so the prefix piles up on whoever served it first.
      router.applyEvent(storedEvent(req, d.workerId, d.dpRank!, 17), i);
      counts.set(d.workerId, (counts.get(d.workerId) ?? 0) + 1);
    }
    assert.equal(counts.size, 8, JSON.stringify([...counts]));
    for (const [w, n] of counts) assert.ok(n >= 10, `${w} got ${n} of 400`);
  });

  it("drops KV events from workers outside its pool", () => {
    const router = kv();
    const req = routeRequest(hasher, "q", docTokens(7, 4));
    router.removeWorker("d");
    router.applyEvent(storedEvent(req, "d", 0, 4), 0);
    router.applyEvent(storedEvent(req, "stray", 0, 4), 0);
    assert.equal(router.ignoredEvents, 2);
    assert.equal(router.index.entries, 0);
    assert.equal(router.targets.find({ workerId: "stray", dpRank: 0 }), -1);
  });

  it("approximate mode learns from its own decisions", () => {
    const router = kv({ useKvEvents: false });
    const req = routeRequest(hasher, "q", docTokens(9, 8));
    const first = router.route(req, 0);
    router.free("q", 1);
    const again = router.route({ ...req, requestId: "q2" }, 2);
    assert.equal(again.targetId, first.targetId);
    assert.equal(again.overlapBlocks, 8);
    // After the TTL the decision is forgotten.
    router.free("q2", 3);
    assert.equal(router.route({ ...req, requestId: "q3" }, 200_000).overlapBlocks, 0);
  });
});

describe("KV cost selection", () => {
  it("reproduces Dynamo's worked example (weight 1: 18, 10, 11 → W2)", () => {
    const costs = [kvCost(8, 10, 1), kvCost(5, 5, 1), kvCost(2, 9, 1)];
    assert.deepEqual(costs, [18, 10, 11]);
    assert.equal(selectByCost(costs, [0, 0, 0], 0, createRng(0)), 1);
  });

  it("weights the whole prefill term", () => {
    assert.equal(kvCost(8, 10, 0.5), 14);
    assert.equal(kvCost(8, 10, 0), 10);
  });

  it("breaks ties by the smallest tree, then at random", () => {
    assert.equal(selectByCost([2, 2, 2], [5, 2, 9], 0, createRng(0)), 1);
    const rng = createRng(4);
    const picks = new Set(Array.from({ length: 50 }, () => selectByCost([2, 2, 2, 3], [1, 1, 1, 0], 0, rng)));
    assert.deepEqual([...picks].sort(), [0, 1, 2]);
  });

  it("samples by softmax at temperature > 0", () => {
    const rng = createRng(5);
    const counts = [0, 0];
    for (let i = 0; i < 20_000; i++) counts[selectByCost([0, 10], [0, 0], 1, rng)]!++;
    // p(cheap) = 1 / (1 + e^-1) ≈ 0.731.
    assert.ok(Math.abs(counts[0]! / 20_000 - 0.731) < 0.015, `${counts}`);
    const uniform = new Set(Array.from({ length: 40 }, () => selectByCost([3, 3, 3], [0, 9, 9], 0.5, rng)));
    assert.equal(uniform.size, 3);
  });
});
