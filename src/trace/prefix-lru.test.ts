import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createRng } from "../random.ts";
import { PrefixLru } from "./prefix-lru.ts";

/** The obvious quadratic model: an array ordered from most to least recent. */
function referenceHits(capacity: number, requests: number[][]): number[] {
  let order: number[] = [];
  return requests.map((ids) => {
    let hits = 0;
    while (hits < ids.length && order.includes(ids[hits]!)) hits++;
    for (let i = ids.length - 1; i >= 0; i--) order = [ids[i]!, ...order.filter((x) => x !== ids[i])];
    order = order.slice(0, capacity);
    return hits;
  });
}

describe("PrefixLru", () => {
  it("hits only on leading cached blocks", () => {
    const lru = new PrefixLru(10);
    assert.equal(lru.access([1, 2, 3]), 0);
    assert.equal(lru.access([1, 2, 4]), 2);
    assert.equal(lru.access([5, 2]), 0);
  });

  it("evicts a prefix's tail before its head", () => {
    const lru = new PrefixLru(2);
    lru.access([1, 2, 3]);
    assert.equal(lru.access([1, 2]), 2);
  });

  it("caches nothing at capacity zero", () => {
    const lru = new PrefixLru(0);
    lru.access([1]);
    assert.equal(lru.access([1]), 0);
  });

  it("agrees with a reference model on random workloads", () => {
    const rng = createRng(7);
    for (const capacity of [1, 3, 8, 20]) {
      const requests = Array.from({ length: 300 }, () => {
        const len = 1 + rng.int(12);
        const root = rng.int(4);
        return Array.from({ length: len }, (_, i) => (i === 0 ? root : root * 100 + rng.int(6) * 10 + i));
      });
      const lru = new PrefixLru(capacity);
      assert.deepEqual(
        requests.map((r) => lru.access(r)),
        referenceHits(capacity, requests),
        `capacity ${capacity}`,
      );
    }
  });
});
