import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createRng } from "../random.ts";
import { ApproxKvIndex } from "./approx-index.ts";
import type { BlockDirectory } from "./block-directory.ts";
import { createBlockHasher } from "./block-hash.ts";
import type { RouterEvent, StoredBlock } from "./events.ts";
import { hashPrefix, hashSeqFrom, toBigInts } from "./hash-seq.ts";
import { KvIndex } from "./kv-index.ts";

const hasher = await createBlockHasher();

/** Tokens 0..n−1 of "document" d, in blocks of 4: content shared by every request reading that document. */
function doc(d: number, blocks: number): number[] {
  return Array.from({ length: blocks * 4 }, (_, i) => d * 1000 + i);
}

function request(tokens: number[]) {
  const locals = hasher.localHashes(tokens, 4);
  return { locals, seqs: hasher.sequenceHashes(locals) };
}

/** A stored event as an engine would send it: its own block hashes (here seq + salt) and our local hashes. */
function stored(
  workerId: string,
  dpRank: number,
  tokens: number[],
  from: number,
  to: number,
  salt = 7n,
): RouterEvent {
  const { locals, seqs } = request(tokens);
  const l = toBigInts(locals);
  const s = toBigInts(seqs);
  const blocks: StoredBlock[] = [];
  for (let i = from; i < to; i++) blocks.push({ blockHash: s[i]! ^ salt, tokensHash: l[i]! });
  return {
    workerId,
    dpRank,
    eventId: 0n,
    data: { type: "stored", parentHash: from === 0 ? null : s[from - 1]! ^ salt, blocks },
  };
}

function scoresOf(index: KvIndex, tokens: number[]): Record<string, number> {
  const m = index.findMatches(request(tokens).seqs);
  const out: Record<string, number> = {};
  for (const t of index.targets.ids()) {
    const { workerId, dpRank } = index.targets.get(t);
    if (m.scores[t]! > 0) out[`${workerId}/${dpRank}`] = m.scores[t]!;
  }
  return out;
}

describe("KV index", () => {
  it("scores each target by the leading blocks it holds", () => {
    const index = new KvIndex(hasher);
    const tokens = doc(1, 6);
    index.apply(stored("w1", 0, tokens, 0, 2));
    index.apply(stored("w1", 0, tokens, 2, 4));
    index.apply(stored("w2", 3, tokens, 0, 6));
    index.apply(stored("w3", 0, doc(2, 3), 0, 3));
    assert.deepEqual(scoresOf(index, tokens), { "w1/0": 4, "w2/3": 6 });
    assert.deepEqual(scoresOf(index, [...tokens.slice(0, 8), ...doc(9, 2)]), { "w1/0": 2, "w2/3": 2 });
    const m = index.findMatches(request(tokens).seqs);
    assert.equal(m.depth, 6);
    assert.equal(m.treeSizes[index.targets.find({ workerId: "w1", dpRank: 0 })], 4);
    assert.equal(index.errors.parentNotFound, 0);
  });

  it("stops a target's run at a block it lost, and frees unheld blocks", () => {
    const index = new KvIndex(hasher);
    const tokens = doc(1, 4);
    index.apply(stored("w1", 0, tokens, 0, 4));
    const s = toBigInts(request(tokens).seqs);
    index.apply({
      workerId: "w1",
      dpRank: 0,
      eventId: 1n,
      data: { type: "removed", blockHashes: [s[1]! ^ 7n] },
    });
    assert.deepEqual(scoresOf(index, tokens), { "w1/0": 1 });
    assert.equal(index.entries, 3);
    index.apply({ workerId: "w1", dpRank: 0, eventId: 2n, data: { type: "cleared" } });
    assert.deepEqual(scoresOf(index, tokens), {});
    assert.equal(index.entries, 0);
    assert.equal(index.nodes, 0);
  });

  it("counts events that name unknown parents or blocks, without throwing", () => {
    const index = new KvIndex(hasher);
    const tokens = doc(1, 4);
    assert.equal(index.apply(stored("w1", 0, tokens, 2, 4)), false);
    assert.equal(index.errors.parentNotFound, 1);
    assert.equal(
      index.apply({ workerId: "w1", dpRank: 0, eventId: 1n, data: { type: "removed", blockHashes: [123n] } }),
      false,
    );
    assert.equal(index.errors.blockNotFound, 1);
    assert.equal(index.entries, 0);
  });

  it("removes a worker with all its dp ranks", () => {
    const index = new KvIndex(hasher);
    const tokens = doc(1, 3);
    for (const r of [0, 1, 2]) index.apply(stored("w1", r, tokens, 0, 3));
    index.apply(stored("w2", 0, tokens, 0, 1));
    index.removeWorker("w1");
    assert.deepEqual(scoresOf(index, tokens), { "w2/0": 1 });
    assert.equal(index.targets.find({ workerId: "w1", dpRank: 1 }), -1);
  });

  it("rebuilds an identical index from its dump, orphaned blocks included", () => {
    const rng = createRng(11);
    const index = new KvIndex(hasher);
    const docs = Array.from({ length: 6 }, (_, d) => doc(d, 2 + rng.int(6)));
    for (let i = 0; i < 200; i++) {
      const tokens = docs[rng.int(docs.length)]!;
      const w = `w${rng.int(5)}`;
      const r = rng.int(3);
      const n = tokens.length / 4;
      if (rng.next() < 0.7) index.apply(stored(w, r, tokens, 0, 1 + rng.int(n)));
      else {
        const s = toBigInts(request(tokens).seqs);
        index.apply({
          workerId: w,
          dpRank: r,
          eventId: 0n,
          data: { type: "removed", blockHashes: [s[rng.int(n)]! ^ 7n] },
        });
      }
    }
    const copy = new KvIndex(hasher);
    for (const ev of index.dumpEvents()) assert.notEqual(copy.apply(ev), false);
    assert.equal(copy.entries, index.entries);
    assert.equal(copy.errors.parentNotFound, 0);
    for (const tokens of docs) assert.deepEqual(scoresOf(copy, tokens), scoresOf(index, tokens));
    for (const t of index.targets.ids()) {
      const other = copy.targets.find(index.targets.get(t));
      assert.equal(copy.treeSize(other), index.treeSize(t));
    }
  });

  it("grows past 32 targets", () => {
    const index = new KvIndex(hasher);
    const tokens = doc(3, 2);
    for (let w = 0; w < 100; w++) index.apply(stored(`w${w}`, 0, tokens, 0, 1 + (w % 2)));
    const scores = Object.values(scoresOf(index, tokens));
    assert.equal(scores.length, 100);
    assert.equal(scores.filter((s) => s === 2).length, 50);
  });
});

describe("KV index under unusual engine hashes", () => {
  const block = (blockHash: bigint, tokensHash: bigint): StoredBlock => ({ blockHash, tokensHash });
  const ev = (workerId: string, data: RouterEvent["data"]): RouterEvent => ({
    workerId,
    dpRank: 0,
    eventId: 0n,
    data,
  });

  it("keeps a block named by two engine hashes until both are removed", () => {
    const index = new KvIndex(hasher);
    index.apply(ev("w", { type: "stored", parentHash: null, blocks: [block(100n, 7n)] }));
    index.apply(ev("w", { type: "stored", parentHash: null, blocks: [block(200n, 7n)] }));
    assert.equal(index.entries, 1);
    index.apply(ev("w", { type: "removed", blockHashes: [100n] }));
    assert.equal(index.entries, 1, "still cached under its other name");
    assert.equal(index.apply(ev("w", { type: "stored", parentHash: 200n, blocks: [block(300n, 8n)] })), true);
    index.apply(ev("w", { type: "removed", blockHashes: [200n, 300n] }));
    assert.equal(index.entries, 0);
    assert.equal(index.nodes, 0);
  });

  it("holds a block re-stored from the root under a reused hash, even when that frees its old chain", () => {
    const index = new KvIndex(hasher);
    index.apply(ev("w", { type: "stored", parentHash: null, blocks: [block(1n, 11n), block(2n, 12n)] }));
    index.apply(ev("w", { type: "removed", blockHashes: [1n] }));
    // Hash 2 now names a root block with tokens 11: the old block 12 (and its emptied parent) go.
    index.apply(ev("w", { type: "stored", parentHash: null, blocks: [block(2n, 11n)] }));
    index.apply(ev("x", { type: "stored", parentHash: null, blocks: [block(5n, 55n)] }));
    assert.equal(index.entries, 2);
    assert.equal(index.nodes, 2);
    const t = index.targets.find({ workerId: "w", dpRank: 0 });
    assert.equal(index.findMatches(hashSeqFrom([11n])).scores[t], 1);
    assert.equal(index.findMatches(hashSeqFrom([55n])).scores[t], 0);
  });
});

/** Applies the same random stores, removals and clears to both indexes, checking they answer alike. */
function replayAlike(seed: number, a: KvIndex, b: KvIndex, docs: number[][]): void {
  const rng = createRng(seed);
  for (let i = 0; i < 300; i++) {
    const tokens = docs[rng.int(docs.length)]!;
    const w = `w${rng.int(4)}`;
    const r = rng.int(2);
    const n = tokens.length / 4;
    const ev: RouterEvent =
      rng.next() < 0.7
        ? stored(w, r, tokens, 0, 1 + rng.int(n), 0n)
        : rng.next() < 0.9
          ? {
              workerId: w,
              dpRank: r,
              eventId: 0n,
              data: { type: "removed", blockHashes: [toBigInts(request(tokens).seqs)[rng.int(n)]!] },
            }
          : { workerId: w, dpRank: r, eventId: 0n, data: { type: "cleared" } };
    assert.equal(b.apply(ev), a.apply(ev));
  }
  assert.equal(b.entries, a.entries);
  assert.equal(b.nodes, a.nodes);
  assert.deepEqual(b.errors, a.errors);
  for (const tokens of docs) assert.deepEqual(scoresOf(b, tokens), scoresOf(a, tokens));
}

/** A directory numbering the blocks of some documents, as a simulation numbers its trace's prompt blocks. */
function directoryOf(docs: number[][]): BlockDirectory {
  const seqs: bigint[] = [];
  const locals: bigint[] = [];
  const ids = new Map<bigint, number>();
  for (const tokens of docs) {
    const r = request(tokens);
    const l = toBigInts(r.locals);
    toBigInts(r.seqs).forEach((s, i) => {
      if (ids.has(s)) return;
      ids.set(s, seqs.push(s) - 1);
      locals.push(l[i]!);
    });
  }
  const word = (of: bigint[], id: number, w: 0 | 1) => hashSeqFrom([of[id]!])[w]!;
  return {
    size: seqs.length,
    find: (lo, hi) => ids.get((BigInt(hi) << 32n) | BigInt(lo)) ?? -1,
    seqLoOf: (id) => word(seqs, id, 0),
    seqHiOf: (id) => word(seqs, id, 1),
    localLoOf: (id) => word(locals, id, 0),
    localHiOf: (id) => word(locals, id, 1),
  };
}

describe("sequence-addressed KV index", () => {
  it("behaves as the general index when engines name blocks by sequence hash", () => {
    const rng = createRng(3);
    const general = new KvIndex(hasher);
    const addressed = new KvIndex(hasher, undefined, 64, true);
    const docs = Array.from({ length: 5 }, (_, d) => doc(d, 2 + rng.int(6)));
    replayAlike(3, general, addressed, docs);
    const rebuilt = new KvIndex(hasher, undefined, 64, true);
    for (const ev of addressed.dumpEvents()) rebuilt.apply(ev);
    assert.equal(rebuilt.entries, addressed.entries);
    for (const tokens of docs) assert.deepEqual(scoresOf(rebuilt, tokens), scoresOf(addressed, tokens));
  });

  it("behaves the same with a block directory, for blocks in it and blocks not in it", () => {
    const rng = createRng(4);
    const docs = Array.from({ length: 6 }, (_, d) => doc(d, 2 + rng.int(6)));
    // Half the documents are known up front; the others' blocks take nodes outside the directory.
    const directory = directoryOf(docs.slice(0, 3));
    const plain = new KvIndex(hasher, undefined, 64, true);
    const directed = new KvIndex(hasher, undefined, 64, true, directory);
    replayAlike(4, plain, directed, docs);
    const rebuilt = new KvIndex(hasher, undefined, 64, true, directory);
    for (const ev of directed.dumpEvents()) rebuilt.apply(ev);
    assert.equal(rebuilt.entries, directed.entries);
    for (const tokens of docs) assert.deepEqual(scoresOf(rebuilt, tokens), scoresOf(directed, tokens));
  });

  it("keeps a directory block at its number, and checks the number a caller passes", () => {
    const known = doc(1, 3);
    const directory = directoryOf([known]);
    const index = new KvIndex(hasher, undefined, 64, true, directory);
    const t = index.addTarget("w1", 0);
    const { seqs, locals } = request(known);
    const at = (i: number) => [seqs[2 * i]!, seqs[2 * i + 1]!, locals[2 * i]!, locals[2 * i + 1]!] as const;
    // Numbered is not stored: nobody holds the blocks yet.
    assert.equal(index.findMatches(seqs).depth, 0);
    assert.equal(index.storeBlockUnder(t, -1, ...at(0), 0), 0);
    // A wrong number (block 2's, for block 1) is caught: block 1 still lands at its own number.
    assert.equal(index.storeBlockUnder(t, 0, ...at(1), 2), 1);
    assert.equal(index.storeBlockUnder(t, 1, ...at(2)), 2);
    assert.equal(index.findMatches(seqs).scores[t], 3);
    // A block outside the directory gets a node past it.
    const other = request(doc(9, 1));
    const node = index.storeBlockUnder(
      t,
      -1,
      other.seqs[0]!,
      other.seqs[1]!,
      other.locals[0]!,
      other.locals[1]!,
    );
    assert.ok(node >= directory.size);
    assert.equal(index.removeBlockAt(t, 2, seqs[4]!, seqs[5]!), true);
    assert.equal(index.findMatches(seqs).scores[t], 2);
    assert.equal(index.removeBlockAt(t, 2, seqs[4]!, seqs[5]!), false);
    assert.equal(index.nodes, 3);
  });
});

describe("block-by-block stores by sequence hash", () => {
  it("chains blocks under the node of the one before, and finds held parents by hash", () => {
    const index = new KvIndex(hasher, undefined, 64, true);
    const t = index.addTarget("w1", 0);
    const u = index.addTarget("w2", 0);
    const { seqs, locals } = request(doc(1, 4));
    const storeBlocks = (from: number, to: number, under: number) => {
      let parent = under;
      for (let i = from; i < to; i++) {
        const [sLo, sHi, lLo, lHi] = [seqs[2 * i]!, seqs[2 * i + 1]!, locals[2 * i]!, locals[2 * i + 1]!];
        parent = index.storeBlockUnder(t, parent, sLo, sHi, lLo, lHi);
      }
      return parent;
    };
    const second = storeBlocks(0, 2, -1);
    assert.equal(index.heldNode(t, seqs[2]!, seqs[3]!), second);
    // Another target does not hold it, so a batch of its own cannot hang under it.
    assert.equal(index.heldNode(u, seqs[2]!, seqs[3]!), -1);
    storeBlocks(2, 4, index.heldNode(t, seqs[2]!, seqs[3]!));
    const m = index.findMatches(seqs);
    assert.equal(m.scores[t], 4);
    assert.equal(m.scores[u], 0);
    assert.equal(index.entries, 4);
    index.removeSeq(t, seqs.subarray(4));
    assert.equal(index.findMatches(seqs).scores[t], 2);
    assert.equal(index.errors.blockNotFound, 0);
  });

  it("removes and re-stores through node hints, and ignores hints whose node was freed and reused", () => {
    const index = new KvIndex(hasher, undefined, 64, true);
    const t = index.addTarget("w1", 0);
    const a = request(doc(1, 2));
    const b = request(doc(2, 1));
    const at = (r: typeof a, i: number) =>
      [r.seqs[2 * i]!, r.seqs[2 * i + 1]!, r.locals[2 * i]!, r.locals[2 * i + 1]!] as const;
    const first = index.storeBlockUnder(t, -1, ...at(a, 0));
    const second = index.storeBlockUnder(t, first, ...at(a, 1));
    assert.equal(index.removeBlockAt(t, second, a.seqs[2]!, a.seqs[3]!), true);
    assert.equal(index.removeBlockAt(t, first, a.seqs[0]!, a.seqs[1]!), true);
    assert.equal(index.entries, 0);
    // Both nodes are free; another block takes one of them, so the old hint now names a different block.
    const other = index.storeBlockUnder(t, -1, ...at(b, 0));
    assert.ok(other === first || other === second);
    const again = index.storeBlockUnder(t, -1, ...at(a, 0), other);
    assert.notEqual(again, other);
    assert.equal(index.findMatches(a.seqs).scores[t], 1);
    assert.equal(index.findMatches(b.seqs).scores[t], 1);
    // A stale hint falls back to the hash; a block the target does not hold is counted, not thrown.
    assert.equal(index.removeBlockAt(t, other, a.seqs[0]!, a.seqs[1]!), true);
    assert.equal(index.findMatches(b.seqs).scores[t], 1);
    assert.equal(index.removeBlockAt(t, -1, a.seqs[2]!, a.seqs[3]!), false);
    assert.equal(index.errors.blockNotFound, 1);
  });
});

describe("approximate KV index", () => {
  it("records routing decisions and forgets them after the TTL", () => {
    const index = new KvIndex(hasher);
    const approx = new ApproxKvIndex(index, { ttlMs: 1000 });
    const t = index.addTarget("w1", 0);
    const { seqs, locals } = request(doc(1, 4));
    approx.record(t, seqs, locals, 0);
    assert.equal(index.findMatches(seqs).scores[t], 4);
    approx.record(t, hashPrefix(seqs, 2), hashPrefix(locals, 2), 600);
    approx.expire(1000);
    // The first two blocks were routed again at 600 ms, so they outlive the rest.
    assert.equal(index.findMatches(seqs).scores[t], 2);
    approx.expire(1600);
    assert.equal(index.findMatches(seqs).scores[t], 0);
    assert.equal(index.entries, 0);
  });

  it("prunes to the target ratio, leaves before shared prefixes", () => {
    const index = new KvIndex(hasher);
    const approx = new ApproxKvIndex(index, { maxEntries: 10, pruneTargetRatio: 0.5 });
    const t = index.addTarget("w1", 0);
    const { seqs, locals } = request(doc(1, 8));
    approx.record(t, seqs, locals, 0);
    approx.record(t, hashPrefix(seqs, 4), hashPrefix(locals, 4), 0);
    const other = request(doc(2, 4));
    approx.record(t, other.seqs, other.locals, 0);
    // 12 entries > 10: pruned to 5 by dropping the deepest blocks first, so both documents keep their heads.
    assert.equal(index.entries, 5);
    const kept = index.findMatches(hashSeqFrom(toBigInts(seqs))).scores[t]!;
    assert.ok(kept >= 2 && kept <= 3, `${kept}`);
    assert.ok(index.findMatches(other.seqs).scores[t]! >= 2);
  });
});
