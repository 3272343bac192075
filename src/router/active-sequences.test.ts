import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createBlockHasher } from "../kv/block-hash.ts";
import { createRng } from "../random.ts";
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

  it("matches a per-block model of every target's active blocks under random adds, frees and expiries", () => {
    const rng = createRng(11, "active");
    const load = new ActiveSequences(400);
    // Prompts branch from a few shared documents, so they share prefixes of every length.
    const prompt = () => {
      const tokens = docTokens(rng.int(3), 1 + rng.int(6));
      for (let k = rng.int(3); k > 0; k--) tokens.push(...docTokens(10 + rng.int(4), 1 + rng.int(3)));
      return routeRequest(hasher, "p", tokens).seqs;
    };
    const live = new Map<string, { t: number; seqs: Uint32Array; at: number }>();
    const key = (seqs: Uint32Array, i: number) => `${seqs[2 * i]}:${seqs[2 * i + 1]}`;
    for (let step = 0; step < 600; step++) {
      const now = step * 5;
      if (live.size > 0 && rng.next() < 0.4) {
        const ids = [...live.keys()];
        const id = ids[rng.int(ids.length)]!;
        load.free(id);
        live.delete(id);
      } else {
        // Adding expires what is older than the expiry first, as the router does when it routes.
        for (const [id, r] of live) if (now - r.at >= 400) live.delete(id);
        const id = `r${step}`;
        const t = rng.int(3);
        const seqs = prompt();
        load.add(id, t, seqs, 0, 0, now);
        live.set(id, { t, seqs, at: now });
      }
      for (let t = 0; t < 3; t++) {
        const held = new Set<string>();
        for (const r of live.values())
          if (r.t === t) for (let i = 0; i < r.seqs.length / 2; i++) held.add(key(r.seqs, i));
        assert.equal(load.activeBlocks(t), held.size, `step ${step}, target ${t}`);
        const probe = prompt();
        let lead = 0;
        while (lead < probe.length / 2 && held.has(key(probe, lead))) lead++;
        assert.equal(load.activeOverlap(probe)[t], lead, `step ${step}, target ${t} overlap`);
      }
    }
  });
});
