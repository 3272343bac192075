import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createBlockHasher } from "./block-hash.ts";
import { hashAt, hashCount, toBigInts } from "./hash-seq.ts";
import { traceLocalHashes, traceSequenceHashes } from "./trace-blocks.ts";

const hasher = await createBlockHasher();

describe("Dynamo block hashing", () => {
  it("matches the reference vector: tokens [1,2,3,4], block size 4", () => {
    assert.equal(hashAt(hasher.localHashes([1, 2, 3, 4], 4), 0), 14643705804678351452n);
  });

  it("ignores a trailing partial block and is position independent", () => {
    const locals = hasher.localHashes([1, 2, 3, 4, 1, 2, 3, 4, 9], 4);
    assert.equal(hashCount(locals), 2);
    assert.equal(hashAt(locals, 0), hashAt(locals, 1));
  });

  it("chains sequence hashes from the first local hash", () => {
    const locals = hasher.localHashes([1, 2, 3, 4, 1, 2, 3, 4], 4);
    const seqs = hasher.sequenceHashes(locals);
    assert.equal(hashAt(seqs, 0), hashAt(locals, 0));
    assert.notEqual(hashAt(seqs, 1), hashAt(locals, 1));
    // seq[1] = XXH3(le_u64(seq[0]) ‖ le_u64(local[1])).
    const bytes = new Uint8Array(16);
    const view = new DataView(bytes.buffer);
    view.setBigUint64(0, hashAt(seqs, 0), true);
    view.setBigUint64(8, hashAt(locals, 1), true);
    const out = new Uint32Array(2);
    hasher.hashBytesInto(bytes, out, 0);
    assert.equal(hashAt(seqs, 1), hashAt(out, 0));
  });
});

describe("trace-path block identities", () => {
  const a = { ids: [0, 1, 2], len: 1300 };
  const b = { ids: [0, 1, 3], len: 1536 };
  for (const kv of [64, 100, 512, 700, 1024]) {
    it(`share router blocks exactly where trace blocks are shared (kv block ${kv})`, () => {
      const sa = toBigInts(traceSequenceHashes(hasher, a.ids, a.len, kv));
      const sb = toBigInts(traceSequenceHashes(hasher, b.ids, b.len, kv));
      assert.equal(sa.length, Math.floor(a.len / kv));
      assert.equal(sb.length, Math.floor(b.len / kv));
      // Tokens [0, 1024) come from the shared ids 0 and 1: exactly the blocks ending by token 1024 match.
      const shared = Math.floor(1024 / kv);
      for (let i = 0; i < Math.min(sa.length, sb.length); i++) {
        assert.equal(sa[i] === sb[i], i < shared, `block ${i}`);
      }
    });
  }

  it("counts only the tokens of the partial last trace block", () => {
    assert.equal(hashCount(traceLocalHashes(hasher, [5, 6], 600, 64)), 9);
    assert.equal(hashCount(traceLocalHashes(hasher, [5, 6], 2000, 64)), 16);
  });

  it("gives distinct blocks within one trace block", () => {
    const locals = toBigInts(traceLocalHashes(hasher, [7], 512, 64));
    assert.equal(new Set(locals).size, 8);
  });
});
