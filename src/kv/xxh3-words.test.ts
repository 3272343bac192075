import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createXXHash3 } from "hash-wasm";
import { createRng } from "../random.ts";
import { createBlockHasher, XXH3_SEED } from "./block-hash.ts";
import { hashAt } from "./hash-seq.ts";
import { XXH3_WORDS_MAX_BYTES, XXH3_WORDS_MIN_BYTES, xxh3Words } from "./xxh3-words.ts";

describe("XXH3 of 17 to 128 bytes of u32 words", () => {
  it("agrees with the reference XXH3-64 (seed 1337) at every length, on random and extreme words", async () => {
    const reference = await createXXHash3(XXH3_SEED, 0);
    const rng = createRng(7);
    const out = new Uint32Array(2);
    for (let count = Math.ceil(XXH3_WORDS_MIN_BYTES / 4); count * 4 <= XXH3_WORDS_MAX_BYTES; count++) {
      for (let trial = 0; trial < 200; trial++) {
        // Words at an offset, with neighbours that must not leak into the hash.
        const words = new Uint32Array(count + 5);
        for (let k = 0; k < words.length; k++) words[k] = Math.floor(rng.next() * 2 ** 32);
        if (trial === 0) words.fill(0, 3, 3 + count);
        if (trial === 1) words.fill(0xffffffff, 3, 3 + count);
        reference.init();
        reference.update(new Uint8Array(words.buffer, 12, count * 4));
        const expected = new DataView(reference.digest("binary").buffer).getBigUint64(0, false);
        xxh3Words(words, 3, count, out, 0);
        assert.equal(hashAt(out, 0), expected, `${count} words, trial ${trial}`);
      }
    }
  });

  it("refuses lengths outside its range", () => {
    const words = new Uint32Array(64);
    const out = new Uint32Array(2);
    assert.throws(() => xxh3Words(words, 0, 4, out, 0), RangeError);
    assert.throws(() => xxh3Words(words, 0, 33, out, 0), RangeError);
  });
});

describe("the block hasher's word and byte paths", () => {
  it("give the WebAssembly hasher's hash for every block size, aligned or not", async () => {
    const hasher = await createBlockHasher();
    const reference = await createXXHash3(XXH3_SEED, 0);
    const rng = createRng(11);
    const out = new Uint32Array(2);
    for (const blockSize of [1, 2, 3, 4, 5, 8, 16, 31, 32, 33, 64, 100]) {
      const tokens = Array.from({ length: blockSize * 3 }, () => rng.int(200_000));
      const words = Uint32Array.from(tokens);
      const locals = hasher.localHashes(tokens, blockSize);
      for (let b = 0; b < 3; b++) {
        reference.init();
        reference.update(new Uint8Array(words.buffer, b * blockSize * 4, blockSize * 4));
        const expected = new DataView(reference.digest("binary").buffer).getBigUint64(0, false);
        assert.equal(hashAt(locals, b), expected, `localHashes, block size ${blockSize}`);
        hasher.hashWordsInto(words, b * blockSize, blockSize, out, 0);
        assert.equal(hashAt(out, 0), expected, `hashWordsInto, block size ${blockSize}`);
        hasher.hashBytesInto(new Uint8Array(words.buffer, b * blockSize * 4, blockSize * 4), out, 0);
        assert.equal(hashAt(out, 0), expected, `hashBytesInto, block size ${blockSize}`);
        // The same bytes at an odd offset take the WebAssembly path.
        const shifted = new Uint8Array(blockSize * 4 + 1);
        shifted.set(new Uint8Array(words.buffer, b * blockSize * 4, blockSize * 4), 1);
        hasher.hashBytesInto(shifted.subarray(1), out, 0);
        assert.equal(hashAt(out, 0), expected, `unaligned hashBytesInto, block size ${blockSize}`);
      }
    }
  });
});
