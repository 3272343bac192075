import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createBlockHasher } from "../kv/block-hash.ts";
import { randomTrace } from "../testing/random-trace.ts";
import { prepareTrace } from "./cluster.ts";
import { shareTrace, unshareTrace } from "./shared-trace.ts";

const hasher = await createBlockHasher();

describe("shared prepared traces", () => {
  it("come back as the same hashes and block ids, over shared memory", () => {
    const original = prepareTrace(randomTrace(3, 50), hasher, 64, 512);
    const shared = shareTrace(original);
    assert.ok(shared.seqs.buffer instanceof SharedArrayBuffer);
    const back = unshareTrace(structuredClone(shared));
    assert.equal(back.rows.length, 50);
    assert.deepEqual(back.blockIds, original.blockIds);
    for (let i = 0; i < 50; i++) {
      assert.deepEqual(Array.from(back.seqs[i]!), Array.from(original.seqs[i]!));
      assert.deepEqual(Array.from(back.locals[i]!), Array.from(original.locals[i]!));
    }
    assert.equal(back.ids.size, original.ids.size);
    for (let id = 0; id < original.ids.size; id++) {
      const lo = original.ids.seqLoOf(id);
      const hi = original.ids.seqHiOf(id);
      assert.equal(back.ids.find(lo, hi), id);
      assert.equal(back.ids.parentOf(id), original.ids.parentOf(id));
      assert.equal(back.ids.localLoOf(id), original.ids.localLoOf(id));
    }
    // Other threads read the same ids: none may be added.
    assert.throws(() => back.ids.intern(back.seqs[0]!, back.locals[0]!), /read-only/);
  });

  it("rejects offsets that do not match the rows", () => {
    const shared = shareTrace(prepareTrace(randomTrace(4, 5), hasher, 64, 512));
    assert.throws(() => unshareTrace({ ...shared, rows: shared.rows.slice(1) }), /do not match its rows/);
  });
});
