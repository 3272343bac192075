import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { Packr } from "msgpackr";
import { type BlockHasher, createBlockHasher } from "../../kv/block-hash.ts";
import { decodeVllmMultipart, encodeVllmMultipart, type VllmEncodeOptions } from "../../kv/codec-vllm.ts";
import { toBigInts } from "../../kv/hash-seq.ts";
import { VllmFastDecoder } from "./fast-decode.ts";
import { seqBytes } from "./replay-frames.ts";
import { fromHex } from "./testing.ts";

const BIG = 15760518052499183552n;
const packr = new Packr({ useRecords: false, variableMapSize: true });
let hasher: BlockHasher;
let fast: VllmFastDecoder;
before(async () => {
  hasher = await createBlockHasher();
  fast = new VllmFastDecoder(hasher);
});

/** What the full codec makes of a payload, in the fast decoder's terms; or the error it throws. */
function full(payload: Uint8Array, seq = 9n, dpRank = 3) {
  const out = decodeVllmMultipart([new Uint8Array(0), seqBytes(seq), payload], {
    workerId: "w",
    dpRank,
    blockHashToTokensHash: (t, b) => toBigInts(hasher.localHashes(t, b)),
  });
  return {
    dpRank: out.dpRank,
    events: out.events,
    skipped: out.skipped.nonDeviceMedium + out.skipped.unknownType,
  };
}

const same = (payload: Uint8Array, what: string) => {
  const got = fast.decode(payload, 9n, "w", 3);
  assert.notEqual(got, null, `${what}: the fast path declined`);
  assert.deepEqual(got, full(payload), what);
};

describe("the subscriber's direct payload reader", () => {
  it("decodes every wire form exactly as the codec does", () => {
    const events = [
      {
        type: "BlockStored" as const,
        blockHashes: [BIG, 1n, 300n],
        parentBlockHash: null,
        tokenIds: [1, 2, 3, 4, 5, 600, 70000, 2 ** 31],
        blockSize: 2,
        medium: "GPU",
      },
      {
        type: "BlockStored" as const,
        blockHashes: [2n ** 40n],
        parentBlockHash: 7n,
        tokenIds: [9, 9],
        blockSize: 2,
        loraId: 3,
      },
      {
        type: "BlockStored" as const,
        blockHashes: [5n],
        parentBlockHash: null,
        tokenIds: [1, 1],
        blockSize: 2,
        medium: "CPU",
      },
      { type: "BlockRemoved" as const, blockHashes: [BIG, 2n ** 63n - 1n] },
      { type: "BlockRemoved" as const, blockHashes: [5n], medium: "cpu" },
      { type: "AllBlocksCleared" as const },
    ];
    // Three stored blocks need six tokens; the first event above carries eight for a mismatch test below.
    events[0]!.tokenIds = [1, 2, 3, 4, 5, 600];
    for (const eventForm of ["map", "array"] as const)
      for (const hashForm of ["uint64", "bytes"] as const)
        for (const dpRank of [undefined, null, 1]) {
          const opts: VllmEncodeOptions = { eventForm, hashForm };
          const [, , payload] = encodeVllmMultipart(
            { topic: "", seq: 9n, timestamp: 2.5, dpRank, events },
            opts,
          );
          same(payload!, JSON.stringify({ ...opts, dpRank }));
        }
  });

  it("skips fields and positions newer engines add, and unknown event types", () => {
    const payload = packr.pack([
      1.25,
      [
        {
          type: "BlockStored",
          block_hashes: [-3, 12],
          parent_block_hash: -1,
          token_ids: [1, 2, 3, 4],
          block_size: 2,
          lora_id: null,
          medium: null,
          lora_name: "adapter",
          extra_keys: [[new Uint8Array([1, 2]), "salt", 1.5], null],
          group_idx: 0,
          kv_cache_spec_kind: "full_attention",
          kv_cache_spec_sliding_window: { w: 128 },
        },
        ["BlockStored", [4], 12, [5, 6], 2, null, "GPU", "lora", [null], 0, "mla_attention"],
        ["BlockRemoved", [4], "GPU", 1],
        { type: "BlockMoved", block_hashes: [1] },
        ["AllBlocksCleared", "extra"],
      ],
      0,
      "trailing",
    ]);
    same(new Uint8Array(payload), "extended events");
  });

  it("reads msgspec's byte layout (fixmaps, uint64) the codec's way", () => {
    same(
      fromHex(`93 cb3ff8000000000000 91 87 a474797065 ab426c6f636b53746f726564 ac626c6f636b5f686173686573 92
        cf1e0b2e028ef071cb cfefad121d154ab2d6 b1706172656e745f626c6f636b5f68617368 c0 a9746f6b656e5f696473 98
        0102030405060708 aa626c6f636b5f73697a65 04 a76c6f72615f6964 c0 a66d656469756d a3475055 00`),
      "msgspec bytes",
    );
  });

  it("declines what only the full codec can judge, which then decodes or names the fault", () => {
    const cases: [string, unknown][] = [
      ["a map-shaped batch", { ts: 1, events: [], data_parallel_rank: 0 }],
      [
        "too few tokens",
        [
          1,
          [
            {
              type: "BlockStored",
              block_hashes: [1],
              parent_block_hash: null,
              token_ids: [1],
              block_size: 2,
            },
          ],
        ],
      ],
      ["a nil hash", [1, [{ type: "BlockRemoved", block_hashes: [null] }]]],
      ["a negative token", [1, [["BlockStored", [1], null, [-1, 2], 2, null]]]],
      ["a numeric medium", [1, [{ type: "BlockRemoved", block_hashes: [1], medium: 3 }]]],
      ["a string timestamp", ["now", []]],
      ["a rank above 2^32", [1, [], 2 ** 33]],
    ];
    for (const [what, value] of cases) {
      const payload = new Uint8Array(packr.pack(value));
      assert.equal(fast.decode(payload, 0n, "w", 0), null, what);
      if (what === "a map-shaped batch") assert.deepEqual(full(payload).events, []);
      else assert.throws(() => full(payload), /KV events/, what);
    }
    assert.equal(fast.decode(fromHex("93cb3ff8"), 0n, "w", 0), null, "truncated");
    assert.equal(fast.decode(fromHex("92cb3ff800000000000090c0"), 0n, "w", 0), null, "trailing bytes");
  });
});
