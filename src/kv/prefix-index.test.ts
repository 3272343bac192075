import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createRng } from "../random.ts";
import { hashSeqFrom } from "./hash-seq.ts";
import { PrefixIndex } from "./prefix-index.ts";

/** Block i of branch b under shared trunk: distinct 64-bit ids, chained by construction of the paths. */
const id = (branch: number, i: number) => BigInt(branch) * 1_000_003n + BigInt(i) + (1n << 40n);

describe("prefix index matching", () => {
  it("bisecting over prefix-closed holdings agrees with the block-by-block walk", () => {
    const rng = createRng(21);
    for (let round = 0; round < 30; round++) {
      const index = new PrefixIndex(70);
      const trunk = 1 + rng.int(40);
      const paths = Array.from({ length: 6 }, (_, b) =>
        Array.from({ length: trunk + 1 + rng.int(60) }, (_, i) => (i < trunk ? id(0, i) : id(b + 1, i))),
      );
      // Each target holds a prefix of one path: holdings stay prefix-closed.
      for (let t = 0; t < 70; t++) {
        const path = paths[rng.int(paths.length)]!;
        const seq = hashSeqFrom(path.slice(0, rng.int(path.length + 1)));
        let parent = -1;
        for (let i = 0; i < seq.length / 2; i++) {
          parent = index.ensure(seq[2 * i]!, seq[2 * i + 1]!, parent, 0, 0);
          index.addHolder(parent, t);
        }
      }
      for (const path of paths) {
        const seq = hashSeqFrom(path);
        const walked = new Int32Array(96);
        const bisected = new Int32Array(96);
        const d1 = index.match(seq, walked);
        const d2 = index.match(seq, bisected, true);
        assert.deepEqual(bisected, walked);
        assert.equal(d2, d1);
      }
    }
  });

  it("moves between one inline holder and a bitset of many", () => {
    const index = new PrefixIndex(64);
    const seq = hashSeqFrom([id(0, 0)]);
    const node = index.ensure(seq[0]!, seq[1]!, -1, 0, 0);
    let scores = new Int32Array(64);
    for (const t of [63, 5, 31]) assert.equal(index.addHolder(node, t), true);
    assert.equal(index.addHolder(node, 5), false);
    index.match(seq, scores, true);
    assert.deepEqual([scores[63], scores[5], scores[31], scores[0]], [1, 1, 1, 0]);
    index.removeHolder(node, 5);
    index.removeHolder(node, 63);
    assert.equal(index.holds(node, 31), true);
    assert.equal(index.holds(node, 63), false);
    assert.equal(index.holderCount(node), 1);
    index.ensureTargets(200);
    assert.equal(index.addHolder(node, 150), true);
    scores = new Int32Array(224);
    index.match(seq, scores, true);
    assert.deepEqual([scores[31], scores[150], scores[5]], [1, 1, 0]);
  });

  it("frees nodes bottom-up once unheld and childless", () => {
    const index = new PrefixIndex(4);
    const seq = hashSeqFrom([id(0, 0), id(0, 1), id(0, 2)]);
    const a = index.ensure(seq[0]!, seq[1]!, -1, 0, 0);
    const b = index.ensure(seq[2]!, seq[3]!, a, 0, 0);
    const c = index.ensure(seq[4]!, seq[5]!, b, 0, 0);
    index.addHolder(a, 1);
    index.addHolder(c, 1);
    assert.equal(index.nodeCount, 3);
    index.removeHolder(c, 1);
    // b was never held and c is gone: both freed; a is still held.
    assert.equal(index.nodeCount, 1);
    assert.equal(index.find(seq[2]!, seq[3]!), -1);
    index.removeHolder(a, 1);
    assert.equal(index.nodeCount, 0);
  });
});
