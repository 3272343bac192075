import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createXXHash3 } from "hash-wasm";
import { createRng } from "../random.ts";
import { XXH3_SEED } from "./block-hash.ts";
import { hashAt } from "./hash-seq.ts";
import { xxh3Pair } from "./xxh3-pair.ts";

describe("XXH3 of a 16-byte pair", () => {
  it("agrees with the reference XXH3-64 (seed 1337) on random and extreme inputs", async () => {
    const reference = await createXXHash3(XXH3_SEED, 0);
    const rng = createRng(99);
    const bytes = new Uint8Array(16);
    const view = new DataView(bytes.buffer);
    const out = new Uint32Array(2);
    const cases: number[][] = [
      [0, 0, 0, 0],
      [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff],
      [1, 0, 0, 0x80000000],
    ];
    for (let i = 0; i < 5000; i++) cases.push([0, 0, 0, 0].map(() => Math.floor(rng.next() * 2 ** 32)));
    for (const words of cases) {
      words.forEach((w, k) => {
        view.setUint32(4 * k, w, true);
      });
      reference.init();
      reference.update(bytes);
      const expected = new DataView(reference.digest("binary").buffer).getBigUint64(0, false);
      xxh3Pair(words[0]!, words[1]!, words[2]!, words[3]!, out, 0);
      assert.equal(hashAt(out, 0), expected, `input ${words.map((w) => w.toString(16))}`);
    }
  });
});
