import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type CborValue,
  encodeCanonicalCbor,
  externalBlockId,
  noneHash,
  vllmBlockHashes,
} from "./vllm-hash.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const cbor = (v: CborValue) => hex(encodeCanonicalCbor(v));

// Known-answer vectors for sha256_cbor with PYTHONHASHSEED="0", computed with Python's cbor2 (canonical=True).
const NONE_HASH_SEED0 = "4e1195df020de59e0d65a33a4279f1183e7ae4e5d980e309f8b55adff2e61c3e";
const BLOCK0 = "c9d58ba695280d69b243e1e0df813136ca9196b286fb1a021e0b2e028ef071cb";
const BLOCK1 = "24125b23e68883b5c2141db2959d48433fe6bde2f26bd914efad121d154ab2d6";

describe("canonical CBOR encoder", () => {
  it("writes unsigned integers with the shortest head at every width boundary", () => {
    const cases: [CborValue, string][] = [
      [0, "00"],
      [23, "17"],
      [24, "1818"],
      [255, "18ff"],
      [256, "190100"],
      [65535, "19ffff"],
      [65536, "1a00010000"],
      [2 ** 32 - 1, "1affffffff"],
      [2 ** 32, "1b0000000100000000"],
      [1_000_000_000_000, "1b000000e8d4a51000"],
      [Number.MAX_SAFE_INTEGER, "1b001fffffffffffff"],
      [2n ** 64n - 1n, "1bffffffffffffffff"],
      [24n, "1818"],
      [2n ** 32n, "1b0000000100000000"],
    ];
    for (const [v, want] of cases) assert.equal(cbor(v), want, `encoding ${String(v)}`);
  });

  it("writes negative integers as major type 1 with the shortest head", () => {
    const cases: [CborValue, string][] = [
      [-1, "20"],
      [-10, "29"],
      [-24, "37"],
      [-25, "3818"],
      [-100, "3863"],
      [-256, "38ff"],
      [-257, "390100"],
      [-1000, "3903e7"],
      [-65537, "3a00010000"],
      [-(2 ** 32) - 1, "3b0000000100000000"],
      [-(2n ** 64n), "3bffffffffffffffff"],
    ];
    for (const [v, want] of cases) assert.equal(cbor(v), want, `encoding ${String(v)}`);
  });

  it("writes text, bytes, arrays and simple values as cbor2 does", () => {
    assert.equal(cbor(""), "60");
    assert.equal(cbor("0"), "6130");
    assert.equal(cbor("IETF"), "6449455446");
    assert.equal(cbor("\u00fc"), "62c3bc");
    assert.equal(cbor("\u6c34"), "63e6b0b4");
    assert.equal(cbor("\ud800\udd51"), "64f0908591");
    assert.equal(cbor(new Uint8Array()), "40");
    assert.equal(cbor(new Uint8Array([1, 2, 3, 4])), "4401020304");
    assert.equal(cbor(new Uint8Array(24)), `5818${"00".repeat(24)}`);
    assert.equal(cbor([]), "80");
    assert.equal(cbor([1, [2, 3], [4, 5]]), "8301820203820405");
    const twentyFive = Array.from({ length: 25 }, (_, i) => i + 1);
    assert.equal(cbor(twentyFive), "98190102030405060708090a0b0c0d0e0f101112131415161718181819");
    assert.equal(cbor(null), "f6");
    assert.equal(cbor(false), "f4");
    assert.equal(cbor(true), "f5");
  });

  it("refuses values it cannot encode exactly", () => {
    assert.throws(() => encodeCanonicalCbor(1.5), /\$: 1\.5 is not a safe integer/);
    assert.throws(() => encodeCanonicalCbor(2 ** 53), /not a safe integer/);
    assert.throws(() => encodeCanonicalCbor(2n ** 64n), /does not fit in 64 bits/);
    assert.throws(() => encodeCanonicalCbor(-(2n ** 64n) - 1n), /does not fit in 64 bits/);
    assert.throws(
      () => encodeCanonicalCbor(["ok", "\ud800"]),
      /\$\[1\]: the string holds a lone UTF-16 surrogate/,
    );
    assert.throws(
      () => encodeCanonicalCbor([{ a: 1 }] as unknown as CborValue),
      /\$\[0\]: cannot encode an object/,
    );
    let deep: CborValue = [];
    for (let i = 0; i < 100; i++) deep = [deep];
    assert.throws(() => encodeCanonicalCbor(deep), /nested deeper than 64/);
  });
});

describe("vLLM sha256_cbor block hashes", () => {
  it("derives NONE_HASH from PYTHONHASHSEED", () => {
    assert.equal(hex(noneHash("0")), NONE_HASH_SEED0);
    assert.notEqual(hex(noneHash("1")), NONE_HASH_SEED0);
  });

  it("matches the known-answer chain for seed 0", () => {
    const blocks = vllmBlockHashes([1, 2, 3, 4, 5, 6, 7, 8], 4, { pythonHashSeed: "0" });
    assert.equal(blocks.length, 2);
    assert.equal(hex(blocks[0]!.digest), BLOCK0);
    assert.equal(blocks[0]!.externalId, 2164874634404590027n);
    assert.equal(hex(blocks[1]!.digest), BLOCK1);
    assert.equal(blocks[1]!.externalId, 17270480062156288726n);
  });

  it("hashes only full blocks", () => {
    const blocks = vllmBlockHashes([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 4, { pythonHashSeed: "0" });
    assert.deepEqual(
      blocks.map((b) => hex(b.digest)),
      [BLOCK0, BLOCK1],
    );
    assert.deepEqual(vllmBlockHashes([1, 2, 3], 4, { pythonHashSeed: "0" }), []);
    assert.deepEqual(vllmBlockHashes([], 4, { pythonHashSeed: "0" }), []);
  });

  it("continues a chain from a parent digest", () => {
    const [first] = vllmBlockHashes([1, 2, 3, 4], 4, { pythonHashSeed: "0" });
    const [second] = vllmBlockHashes([5, 6, 7, 8], 4, { pythonHashSeed: "0", parentDigest: first!.digest });
    assert.equal(hex(second!.digest), BLOCK1);
  });

  it("mixes per-block extra keys into the hash, with null meaning none", () => {
    const plain = vllmBlockHashes([1, 2, 3, 4, 5, 6, 7, 8], 4, { pythonHashSeed: "0" });
    const withNulls = vllmBlockHashes([1, 2, 3, 4, 5, 6, 7, 8], 4, {
      pythonHashSeed: "0",
      extraKeys: [null, null],
    });
    assert.deepEqual(withNulls, plain);
    const salted = vllmBlockHashes([1, 2, 3, 4, 5, 6, 7, 8], 4, {
      pythonHashSeed: "0",
      extraKeys: [["salt"], null],
    });
    assert.notEqual(hex(salted[0]!.digest), BLOCK0);
    // The salt changes block 0, and block 1 chains from it, so it changes too.
    assert.notEqual(hex(salted[1]!.digest), BLOCK1);
    // An empty tuple is not None in Python, so it must not hash like null.
    const empty = vllmBlockHashes([1, 2, 3, 4], 4, { pythonHashSeed: "0", extraKeys: [[]] });
    assert.notEqual(hex(empty[0]!.digest), BLOCK0);
  });

  it("is deterministic", () => {
    const tokens = Array.from({ length: 64 }, (_, i) => (i * 7919) % 151_000);
    const a = vllmBlockHashes(tokens, 16, { pythonHashSeed: "42" });
    const b = vllmBlockHashes(tokens, 16, { pythonHashSeed: "42" });
    assert.deepEqual(a, b);
    assert.equal(a.length, 4);
  });

  it("reads the external id as the digest's low 64 bits, big-endian", () => {
    const digest = new Uint8Array(32);
    digest.set([0x80, 0, 0, 0, 0, 0, 0, 1], 24);
    assert.equal(externalBlockId(digest), 0x8000000000000001n);
    assert.equal(externalBlockId(new Uint8Array([1, 2])), 0x0102n);
    assert.throws(() => externalBlockId(new Uint8Array()), /must not be empty/);
  });

  it("rejects bad arguments with messages that name them", () => {
    const seed = { pythonHashSeed: "0" };
    assert.throws(() => vllmBlockHashes([1, 2], 0, seed), /blockSize must be a positive integer, got 0/);
    assert.throws(() => vllmBlockHashes([1, 2], 1.5, seed), /blockSize must be a positive integer/);
    assert.throws(() => vllmBlockHashes([1, -2], 2, seed), /tokenIds\[1\] must be a non-negative integer/);
    assert.throws(() => vllmBlockHashes([1, 2.5], 2, seed), /tokenIds\[1\]/);
    assert.throws(
      () => vllmBlockHashes([1, 2, 3, 4], 2, { pythonHashSeed: "0", extraKeys: [null] }),
      /extraKeys has 1 entries but 4 tokens make 2 full blocks of 2/,
    );
    assert.throws(
      () => vllmBlockHashes([1, 2], 2, { pythonHashSeed: 0 as unknown as string }),
      /pythonHashSeed must be a string/,
    );
    assert.throws(
      () => vllmBlockHashes([1, 2], 2, { pythonHashSeed: "0", parentDigest: new Uint8Array() }),
      /parentDigest must be a non-empty Uint8Array/,
    );
  });
});
