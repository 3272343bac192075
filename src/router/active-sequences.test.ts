import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createBlockHasher } from "../kv/block-hash.ts";
import { docTokens, routeRequest } from "../testing/route-requests.ts";
import { ActiveSequences } from "./active-sequences.ts";

const hasher = await createBlockHasher();

describe("active sequences", () => {
  it("counts prompt blocks shared by concurrent requests on a target once", () => {
    const load = new ActiveSequences();
    const a = routeRequest(hasher, "a", [...docTokens(1, 6), ...docTokens(2, 2)]);
    const b = routeRequest(hasher, "b", [...docTokens(1, 6), ...docTokens(3, 3)]);
    load.add("a", 0, a.seqs, 0, 32, 0);
    load.add("b", 0, b.seqs, 0, 12, 0);
    load.add("c", 1, b.seqs, 0, 44, 0);
    assert.equal(load.activeBlocks(0), 6 + 2 + 3);
    assert.equal(load.activeBlocks(1), 9);
    assert.equal(load.prefillTokens(0), 44);
    const overlap = load.activeOverlap(
      routeRequest(hasher, "x", [...docTokens(1, 6), ...docTokens(2, 1)]).seqs,
    );
    assert.equal(overlap[0], 7);
    assert.equal(overlap[1], 6);
    load.markPrefillCompleted("a");
    assert.equal(load.prefillTokens(0), 12);
    load.free("a");
    assert.equal(load.activeBlocks(0), 9);
    load.free("b");
    load.free("b");
    assert.equal(load.activeBlocks(0), 0);
    assert.equal(load.activeRequests(0), 0);
  });

  it("keeps a prompt that is a prefix of another, freed in either order", () => {
    for (const order of [
      ["long", "short"],
      ["short", "long"],
    ]) {
      const load = new ActiveSequences();
      load.add("long", 0, routeRequest(hasher, "l", docTokens(1, 5)).seqs, 0, 0, 0);
      load.add("short", 0, routeRequest(hasher, "s", docTokens(1, 2)).seqs, 0, 0, 0);
      assert.equal(load.activeBlocks(0), 5);
      load.free(order[0]!);
      assert.equal(load.activeBlocks(0), order[0] === "long" ? 2 : 5);
      load.free(order[1]!);
      assert.equal(load.activeBlocks(0), 0);
      assert.equal(load.activeOverlap(routeRequest(hasher, "x", docTokens(1, 5)).seqs)[0], 0);
    }
  });

  it("counts private blocks without sharing", () => {
    const load = new ActiveSequences();
    load.add("a", 2, null, 5, 0, 0);
    load.add("b", 2, null, 5, 0, 0);
    assert.equal(load.activeBlocks(2), 10);
    load.free("a");
    assert.equal(load.activeBlocks(2), 5);
  });

  it("expires requests after the expiry, oldest first", () => {
    const load = new ActiveSequences(1000);
    load.add("old", 0, null, 1, 10, 0);
    load.add("new", 0, null, 1, 10, 900);
    load.expire(1000);
    assert.equal(load.has("old"), false);
    assert.equal(load.has("new"), true);
    assert.equal(load.prefillTokens(0), 10);
  });
});
