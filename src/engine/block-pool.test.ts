import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createRng } from "../random.ts";
import { BlockPool } from "./block-pool.ts";

describe("KV block pool", () => {
  it("reuses cached prompt blocks and evicts the least recently used tail first", () => {
    const stored: number[][] = [];
    const removed: number[][] = [];
    const pool = new BlockPool(6, true, {
      stored: (ids) => stored.push([...ids]),
      removed: (ids) => removed.push([...ids]),
    });
    assert.equal(pool.acquire([1, 2, 3], 1), true);
    assert.deepEqual(stored, [[1, 2, 3]]);
    pool.release([1, 2, 3], 1);
    assert.equal(pool.cached, 3);
    assert.equal(pool.cachedPrefix([1, 2, 9]), 2);
    // 4 fresh blocks + 1 private need room: the tail (3) of the cached prompt goes first.
    assert.equal(pool.acquire([1, 4, 5, 6], 1), true);
    assert.deepEqual(removed, [[3]]);
    assert.equal(pool.inUse, 5);
    assert.equal(pool.cachedPrefix([1, 2]), 2);
  });

  it("refuses what does not fit, changing nothing", () => {
    const pool = new BlockPool(4, true);
    assert.equal(pool.acquire([1, 2, 3], 0), true);
    assert.equal(pool.acquire([7, 8], 0), false);
    assert.equal(pool.inUse, 3);
    assert.equal(pool.acquire([1, 2], 0, 3), true, "fully reused blocks need no room");
    assert.equal(pool.acquirePrivate(2, 4), false);
  });

  it("keeps its invariants under random use", () => {
    const rng = createRng(5);
    const events = { held: new Set<number>() };
    const pool = new BlockPool(40, true, {
      stored: (ids) => {
        for (const id of ids) {
          assert.equal(events.held.has(id), false, `block ${id} stored twice`);
          events.held.add(id);
        }
      },
      removed: (ids) => {
        for (const id of ids)
          assert.equal(events.held.delete(id), true, `block ${id} removed but not stored`);
      },
    });
    const live: { ids: number[]; priv: number }[] = [];
    for (let step = 0; step < 5000; step++) {
      if (live.length > 0 && rng.next() < 0.45) {
        const [req] = live.splice(rng.int(live.length), 1);
        pool.release(req!.ids, req!.priv);
      } else {
        const root = rng.int(6) * 100;
        const ids = Array.from({ length: 1 + rng.int(8) }, (_, i) => root + i);
        const priv = rng.int(3);
        if (pool.acquire(ids, priv)) live.push({ ids, priv });
      }
      const inUse = live.reduce((a, r) => a + r.priv, 0) + new Set(live.flatMap((r) => r.ids)).size;
      assert.equal(pool.inUse, inUse);
      assert.ok(pool.occupied <= pool.capacity, "capacity exceeded");
      // What the events announced is exactly what the pool holds as shared blocks.
      assert.equal(events.held.size, pool.occupied - live.reduce((a, r) => a + r.priv, 0));
    }
  });

  it("without prefix caching, holds everything privately and announces nothing", () => {
    let events = 0;
    const pool = new BlockPool(10, false, { stored: () => events++, removed: () => events++ });
    assert.equal(pool.acquire([1, 2, 3], 1), true);
    assert.equal(pool.cachedPrefix([1, 2, 3]), 0);
    pool.release([1, 2, 3], 1);
    assert.equal(pool.inUse, 0);
    assert.equal(events, 0);
  });
});
