import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Packr } from "msgpackr";
import { assertServelabError } from "../testing/assert-errors.ts";
import {
  decodeVllmMultipart,
  encodeVllmMultipart,
  eventIdFor,
  type VllmDecodeContext,
  type VllmEncodeOptions,
  type VllmWireEvent,
} from "./codec-vllm.ts";
import { U64_MASK } from "./events.ts";
import { vllmBlockHashes } from "./vllm-hash.ts";

const BIG = 15760518052499183552n; // a real vLLM 0.26 block hash, above 2^63
const packr = new Packr({ useRecords: false, int64AsType: "bigint" });
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const fromHex = (h: string) => new Uint8Array(Buffer.from(h.replace(/\s+/g, ""), "hex"));

/** A stand-in for the router's content hash: deterministic, order-sensitive, one value per full block. */
function fakeTokensHash(tokenIds: readonly number[], blockSize: number): bigint[] {
  const out: bigint[] = [];
  for (let start = 0; start + blockSize <= tokenIds.length; start += blockSize) {
    let h = 1337n;
    for (const t of tokenIds.slice(start, start + blockSize)) h = (h * 1_000_003n + BigInt(t)) & U64_MASK;
    out.push(h);
  }
  return out;
}

const ctx: VllmDecodeContext = { workerId: "pod-a", blockHashToTokensHash: fakeTokensHash };

function seqFrame(seq: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, seq, false);
  return b;
}

function frames(payload: unknown, seq = 3n, topic = "kv@pod-a@model"): Uint8Array[] {
  return [new TextEncoder().encode(topic), seqFrame(seq), packr.pack(payload)];
}

function assertDecodeError(fn: () => unknown, ...fragments: string[]): void {
  assertServelabError(fn, "KV_EVENT_DECODE", ...fragments);
}

describe("vLLM KV events: fixtures", () => {
  it("decodes current vLLM map events in a positional batch, ignoring fields it does not use", () => {
    const payload = [
      1_752_000_000.25,
      [
        {
          type: "BlockStored",
          block_hashes: [BIG, 7],
          parent_block_hash: 2n ** 63n,
          token_ids: [1, 2, 3, 4, 5, 6, 7, 8],
          block_size: 4,
          lora_id: null,
          medium: "GPU",
          lora_name: null,
          extra_keys: [null, ["mm-hash"]],
          group_idx: 0,
          kv_cache_spec_kind: "full_attention",
        },
      ],
      1,
    ];
    const out = decodeVllmMultipart(frames(payload, 5n), ctx);
    assert.equal(out.topic, "kv@pod-a@model");
    assert.equal(out.seq, 5n);
    assert.equal(out.timestamp, 1_752_000_000.25);
    assert.equal(out.dpRank, 1);
    assert.deepEqual(out.skipped, { nonDeviceMedium: 0, unknownType: 0 });
    const [h0, h1] = fakeTokensHash([1, 2, 3, 4, 5, 6, 7, 8], 4);
    assert.deepEqual(out.events, [
      {
        workerId: "pod-a",
        dpRank: 1,
        eventId: 5n * 65536n,
        data: {
          type: "stored",
          parentHash: 2n ** 63n,
          blocks: [
            { blockHash: BIG, tokensHash: h0 },
            { blockHash: 7n, tokensHash: h1 },
          ],
        },
      },
    ]);
  });

  it("decodes legacy tagged arrays, with or without the appended fields", () => {
    const payload = [
      2.5,
      [
        ["BlockStored", [11, 12], null, [1, 2, 3, 4], 2, null],
        ["BlockStored", [13], 12, [5, 6], 2, 3, "gpu", "adapter", [null], 0, "full_attention"],
        ["BlockRemoved", [11]],
        ["BlockRemoved", [12], "GPU"],
        ["AllBlocksCleared"],
      ],
    ];
    const out = decodeVllmMultipart(frames(payload), { ...ctx, dpRank: 4 });
    assert.equal(out.dpRank, 4, "falls back to the socket's rank when the batch has none");
    assert.deepEqual(
      out.events.map((e) => [e.eventId, e.dpRank, e.data]),
      [
        [
          eventIdFor(3n, 0),
          4,
          {
            type: "stored",
            parentHash: null,
            blocks: [
              { blockHash: 11n, tokensHash: fakeTokensHash([1, 2], 2)[0] },
              { blockHash: 12n, tokensHash: fakeTokensHash([3, 4], 2)[0] },
            ],
          },
        ],
        [
          eventIdFor(3n, 1),
          4,
          {
            type: "stored",
            parentHash: 12n,
            blocks: [{ blockHash: 13n, tokensHash: fakeTokensHash([5, 6], 2)[0] }],
          },
        ],
        [eventIdFor(3n, 2), 4, { type: "removed", blockHashes: [11n] }],
        [eventIdFor(3n, 3), 4, { type: "removed", blockHashes: [12n] }],
        [eventIdFor(3n, 4), 4, { type: "cleared" }],
      ],
    );
  });

  it("keeps uint64 hashes above 2^63 exact, packed as msgpack uint64", () => {
    const f = frames([0, [{ type: "BlockRemoved", block_hashes: [BIG, 2n ** 64n - 1n] }], 0]);
    const payloadHex = hex(f[2]!);
    assert.ok(payloadHex.includes(`cf${BIG.toString(16)}`), "BIG is packed as 0xcf uint64");
    assert.ok(payloadHex.includes("cfffffffffffffffff"), "2^64-1 is packed as 0xcf uint64");
    const out = decodeVllmMultipart(f, ctx);
    assert.deepEqual(out.events[0]!.data, { type: "removed", blockHashes: [BIG, 2n ** 64n - 1n] });
  });

  it("reinterprets negative int64 hashes as their u64 bit pattern", () => {
    const f = frames([0, [{ type: "BlockRemoved", block_hashes: [-3n, -1, -(2n ** 63n)] }], 0]);
    const payloadHex = hex(f[2]!);
    assert.ok(payloadHex.includes("d3fffffffffffffffd"), "-3n is packed as 0xd3 int64");
    const out = decodeVllmMultipart(f, ctx);
    assert.deepEqual(out.events[0]!.data, {
      type: "removed",
      blockHashes: [2n ** 64n - 3n, 2n ** 64n - 1n, 2n ** 63n],
    });
  });

  it("reduces 32-byte digest hashes to their low 64 bits, as vLLM does", () => {
    const [b0, b1] = vllmBlockHashes([1, 2, 3, 4, 5, 6, 7, 8], 4, { pythonHashSeed: "0" });
    const payload = [
      0,
      [
        {
          type: "BlockStored",
          block_hashes: [b1!.digest],
          parent_block_hash: b0!.digest,
          token_ids: [5, 6, 7, 8],
          block_size: 4,
          lora_id: null,
          medium: "GPU",
        },
        { type: "BlockRemoved", block_hashes: [new Uint8Array([0x01, 0x02]), fromHex("ff".repeat(9))] },
      ],
    ];
    const f = frames(payload);
    assert.ok(hex(f[2]!).includes(`c420${hex(b1!.digest)}`), "digest is packed as bin8 of 32 bytes");
    const out = decodeVllmMultipart(f, ctx);
    const stored = out.events[0]!.data;
    assert.equal(stored.type, "stored");
    assert.equal(stored.parentHash, 2164874634404590027n);
    assert.equal(stored.blocks[0]!.blockHash, 17270480062156288726n);
    assert.deepEqual(out.events[1]!.data, { type: "removed", blockHashes: [0x0102n, U64_MASK] });
  });

  it("accepts a map-shaped batch", () => {
    const out = decodeVllmMultipart(
      frames({ ts: 9, events: [{ type: "AllBlocksCleared" }], data_parallel_rank: 2, extra: "ignored" }),
      { ...ctx, dpRank: 0 },
    );
    assert.equal(out.timestamp, 9);
    assert.equal(out.dpRank, 2, "the batch's rank wins over the socket's");
    assert.deepEqual(out.events[0]!.data, { type: "cleared" });
    const noRank = decodeVllmMultipart(frames({ ts: 9, events: [], data_parallel_rank: null }), ctx);
    assert.equal(noRank.dpRank, 0);
  });

  it("skips events about other tiers and unknown event types, and counts them", () => {
    const payload = [
      0,
      [
        {
          type: "BlockStored",
          block_hashes: [1],
          parent_block_hash: null,
          token_ids: [1, 2],
          block_size: 2,
          medium: "CPU",
        },
        ["BlockStored", [2], null, [1, 2], 2, null, "cpu"],
        { type: "BlockRemoved", block_hashes: [1], medium: "DISK" },
        ["BlockRemoved", [2], "CPU"],
        { type: "BlockUpdated", block_hashes: [3] },
        ["SomethingNew", 1, 2],
        { type: "BlockRemoved", block_hashes: [4], medium: null },
      ],
    ];
    const out = decodeVllmMultipart(frames(payload, 1n), ctx);
    assert.deepEqual(out.skipped, { nonDeviceMedium: 4, unknownType: 2 });
    assert.equal(out.events.length, 1);
    assert.equal(out.events[0]!.eventId, eventIdFor(1n, 6), "ids count skipped events too");
    assert.deepEqual(out.events[0]!.data, { type: "removed", blockHashes: [4n] });
  });

  it("accepts token ids and sizes that arrive as bigints", () => {
    const payload = [0n, [["BlockStored", [1n], null, [1n, 2n], 2n, null]], 0n];
    const out = decodeVllmMultipart(frames(payload), ctx);
    assert.deepEqual(out.events[0]!.data, {
      type: "stored",
      parentHash: null,
      blocks: [{ blockHash: 1n, tokensHash: fakeTokensHash([1, 2], 2)[0] }],
    });
  });

  it("decodes a message written out byte by byte", () => {
    const topic = fromHex("6b7640706f642d61406d"); // "kv@pod-a@m"
    const seq = fromHex("0000000000000007");
    const payload = fromHex(`
      93 cb3ff8000000000000
         93 97 ab426c6f636b53746f726564 91cfdab89baa7b5857c0 c0 9401020304 04 c0 a3475055
            82 a474797065 ac426c6f636b52656d6f766564 ac626c6f636b5f686173686573 91d3fffffffffffffffd
            81 a474797065 b0416c6c426c6f636b73436c6561726564
         02`);
    const out = decodeVllmMultipart([topic, seq, payload], ctx);
    assert.equal(out.topic, "kv@pod-a@m");
    assert.equal(out.seq, 7n);
    assert.equal(out.timestamp, 1.5);
    assert.equal(out.dpRank, 2);
    assert.deepEqual(out.events, [
      {
        workerId: "pod-a",
        dpRank: 2,
        eventId: 458752n,
        data: {
          type: "stored",
          parentHash: null,
          blocks: [{ blockHash: BIG, tokensHash: fakeTokensHash([1, 2, 3, 4], 4)[0] }],
        },
      },
      {
        workerId: "pod-a",
        dpRank: 2,
        eventId: 458753n,
        data: { type: "removed", blockHashes: [2n ** 64n - 3n] },
      },
      { workerId: "pod-a", dpRank: 2, eventId: 458754n, data: { type: "cleared" } },
    ]);
  });
});

describe("vLLM KV events: encoder", () => {
  const events: VllmWireEvent[] = [
    {
      type: "BlockStored",
      blockHashes: [BIG, 1n],
      parentBlockHash: null,
      tokenIds: [1, 2, 3, 4],
      blockSize: 2,
      medium: "GPU",
    },
    {
      type: "BlockStored",
      blockHashes: [2n ** 40n],
      parentBlockHash: 1n,
      tokenIds: [9, 9],
      blockSize: 2,
      loraId: 3,
    },
    { type: "BlockRemoved", blockHashes: [BIG] },
    { type: "BlockRemoved", blockHashes: [5n], medium: "CPU" },
    { type: "AllBlocksCleared" },
  ];
  const forms: VllmEncodeOptions[] = [];
  for (const eventForm of ["map", "array"] as const) {
    for (const batchForm of ["array", "map"] as const) {
      for (const hashForm of ["uint64", "bytes"] as const) forms.push({ eventForm, batchForm, hashForm });
    }
  }

  it("round-trips every combination of wire forms", () => {
    for (const form of forms) {
      const label = JSON.stringify(form);
      const out = decodeVllmMultipart(
        encodeVllmMultipart({ topic: "t", seq: 12n, timestamp: 3.25, dpRank: 1, events }, form),
        ctx,
      );
      assert.equal(out.seq, 12n, label);
      assert.equal(out.timestamp, 3.25, label);
      assert.equal(out.dpRank, 1, label);
      assert.deepEqual(out.skipped, { nonDeviceMedium: 1, unknownType: 0 }, label);
      assert.deepEqual(
        out.events.map((e) => e.data),
        [
          {
            type: "stored",
            parentHash: null,
            blocks: [
              { blockHash: BIG, tokensHash: fakeTokensHash([1, 2], 2)[0] },
              { blockHash: 1n, tokensHash: fakeTokensHash([3, 4], 2)[0] },
            ],
          },
          {
            type: "stored",
            parentHash: 1n,
            blocks: [{ blockHash: 2n ** 40n, tokensHash: fakeTokensHash([9, 9], 2)[0] }],
          },
          { type: "removed", blockHashes: [BIG] },
          { type: "cleared" },
        ],
        label,
      );
      assert.deepEqual(
        out.events.map((e) => e.eventId),
        [0, 1, 2, 4].map((i) => eventIdFor(12n, i)),
        label,
      );
    }
  });

  it("writes the shapes engines write", () => {
    const [topic, seq, payload] = encodeVllmMultipart(
      {
        topic: "kv",
        seq: 258n,
        timestamp: 1.5,
        dpRank: 0,
        events: [{ type: "BlockRemoved", blockHashes: [BIG, 5n] }],
      },
      { eventForm: "array" },
    );
    assert.equal(hex(topic!), "6b76");
    assert.equal(hex(seq!), "0000000000000102");
    assert.equal(
      hex(payload!),
      `93cb3ff8000000000000 9192 ac426c6f636b52656d6f766564 92cf${BIG.toString(16)}05 00`.replace(/ /g, ""),
    );
    const bytes = encodeVllmMultipart(
      { topic: "", seq: 0n, timestamp: 0, events: [{ type: "BlockRemoved", blockHashes: [5n] }] },
      { hashForm: "bytes", batchForm: "map" },
    );
    assert.ok(
      hex(bytes[2]!).includes(`c420${"00".repeat(31)}05`),
      "a 32-byte digest with the id in its low bytes",
    );
    assert.ok(
      !hex(bytes[2]!).includes(hex(new TextEncoder().encode("data_parallel_rank"))),
      "no rank when none given",
    );
  });

  it("refuses to encode values outside their wire types", () => {
    const msg = { topic: "t", seq: 0n, timestamp: 0, events: [] as VllmWireEvent[] };
    assert.throws(() => encodeVllmMultipart({ ...msg, seq: -1n }), /seq must be a bigint/);
    assert.throws(
      () => encodeVllmMultipart({ ...msg, timestamp: Number.NaN }),
      /timestamp must be a finite number/,
    );
    assert.throws(() => encodeVllmMultipart({ ...msg, dpRank: 1.5 }), /dpRank must be an integer/);
    assert.throws(
      () => encodeVllmMultipart({ ...msg, events: [{ type: "BlockRemoved", blockHashes: [2n ** 64n] }] }),
      /events\[0\]\.blockHashes\[0\] must be a bigint in \[0, 2\^64\)/,
    );
    assert.throws(
      () =>
        encodeVllmMultipart({
          ...msg,
          events: [
            {
              type: "BlockStored",
              blockHashes: [1n],
              parentBlockHash: null,
              tokenIds: [-1, 2],
              blockSize: 2,
            },
          ],
        }),
      /events\[0\]\.tokenIds\[0\]/,
    );
  });
});

describe("vLLM KV events: malformed messages", () => {
  const good = () => frames([0, [], 0]);

  it("rejects the wrong number of frames or bad frame contents", () => {
    assertDecodeError(
      () => decodeVllmMultipart(good().slice(0, 2), ctx),
      'KV events from worker "pod-a": message: expected 3 frames (topic, seq, payload), got 2',
    );
    assertDecodeError(() => decodeVllmMultipart([...good(), new Uint8Array()], ctx), "got 4");
    assertDecodeError(
      () => decodeVllmMultipart("x" as unknown as Uint8Array[], ctx),
      "expected an array of frames",
    );
    const [topic, , payload] = good();
    assertDecodeError(
      () => decodeVllmMultipart([topic!, new Uint8Array(4), payload!], ctx),
      "frame 1 (seq): expected 8 bytes (a big-endian u64), got 4",
    );
    assertDecodeError(
      () => decodeVllmMultipart([topic!, seqFrame(1n << 48n), payload!], ctx),
      "frame 1 (seq)",
      "too large",
    );
    assertDecodeError(
      () => decodeVllmMultipart([fromHex("ff"), seqFrame(0n), payload!], ctx),
      "frame 0 (topic): is not valid UTF-8",
    );
    assertDecodeError(
      () => decodeVllmMultipart([topic!, "seq" as unknown as Uint8Array, payload!], ctx),
      "frame 1 (seq): expected bytes, got the string",
    );
    assertDecodeError(
      () => decodeVllmMultipart([topic!, seqFrame(0n)], { ...ctx, where: "tcp://10.0.0.5:5557" }),
      "tcp://10.0.0.5:5557: message: expected 3 frames",
    );
  });

  it("rejects payloads that are not msgpack, wrapping the parser's error", () => {
    const [topic, seq] = good();
    for (const bad of [
      fromHex(""),
      fromHex("93 01"),
      fromHex("0102"),
      new TextEncoder().encode("hello world"),
    ]) {
      assertDecodeError(
        () => decodeVllmMultipart([topic!, seq!, bad], ctx),
        "frame 2 (payload): is not valid msgpack (",
      );
    }
    assertDecodeError(
      () => decodeVllmMultipart([topic!, seq!, fromHex("c7010500")], ctx),
      "not valid msgpack",
      "extension",
    );
  });

  it("rejects batches of the wrong shape, naming the field", () => {
    assertDecodeError(
      () => decodeVllmMultipart(frames("batch"), ctx),
      'seq 3: batch: expected an array [ts, events, dp_rank?] or a map, got the string "batch"',
    );
    assertDecodeError(
      () => decodeVllmMultipart(frames([0]), ctx),
      "batch: expected [ts, events, dp_rank?], got an array of 1",
    );
    assertDecodeError(
      () => decodeVllmMultipart(frames([0, { type: "AllBlocksCleared" }]), ctx),
      "batch[1] (events): expected an array of events, got a map",
    );
    assertDecodeError(
      () => decodeVllmMultipart(frames({ ts: 0, events: 5 }), ctx),
      "batch.events: expected an array of events, got number 5",
    );
    assertDecodeError(
      () => decodeVllmMultipart(frames(["now", []]), ctx),
      "batch[0] (ts): expected a finite number of seconds",
    );
    assertDecodeError(
      () => decodeVllmMultipart(frames({ events: [] }), ctx),
      "batch.ts: expected a finite number of seconds, got nothing",
    );
    assertDecodeError(
      () => decodeVllmMultipart(frames([0, [], -1]), ctx),
      "batch[2] (dp_rank): expected a rank",
    );
    assertDecodeError(() => decodeVllmMultipart(frames([0, [], "0"]), ctx), "batch[2] (dp_rank)");
  });

  it("rejects malformed events, naming the event and field", () => {
    const one = (ev: unknown) => frames([0, [{ type: "AllBlocksCleared" }, ev]]);
    const stored = (over: Record<string, unknown>) =>
      one({
        type: "BlockStored",
        block_hashes: [1, 2],
        parent_block_hash: null,
        token_ids: [1, 2, 3, 4],
        block_size: 2,
        ...over,
      });
    assertDecodeError(
      () => decodeVllmMultipart(one(7), ctx),
      "events[1]: expected a map or a tagged array, got number 7",
    );
    assertDecodeError(
      () => decodeVllmMultipart(one({ block_hashes: [] }), ctx),
      "events[1].type: expected the event type as a string, got nothing",
    );
    assertDecodeError(
      () => decodeVllmMultipart(one([5]), ctx),
      "events[1][0]: expected the event type as a string, got number 5",
    );
    assertDecodeError(
      () => decodeVllmMultipart(stored({ token_ids: [1, 2, 3] }), ctx),
      "events[1].token_ids: holds 3 tokens, but 2 blocks of 2 need 4",
    );
    assertDecodeError(
      () => decodeVllmMultipart(one(["BlockStored", [1], null, [1, 2, 3], 2, null]), ctx),
      "events[1][3] (token_ids): holds 3 tokens, but 1 blocks of 2 need 2",
    );
    assertDecodeError(
      () => decodeVllmMultipart(stored({ block_hashes: [1, "2"] }), ctx),
      'events[1].block_hashes[1]: expected an integer or bytes hash, got the string "2"',
    );
    assertDecodeError(
      () => decodeVllmMultipart(stored({ block_hashes: [1, 2.5] }), ctx),
      "events[1].block_hashes[1]",
      "number 2.5",
    );
    assertDecodeError(
      () => decodeVllmMultipart(stored({ block_hashes: [1, new Uint8Array()] }), ctx),
      "events[1].block_hashes[1]: expected a hash, got empty bytes",
    );
    assertDecodeError(
      () => decodeVllmMultipart(stored({ block_hashes: 1 }), ctx),
      "events[1].block_hashes: expected an array of hashes",
    );
    assertDecodeError(
      () => decodeVllmMultipart(stored({ parent_block_hash: true }), ctx),
      "events[1].parent_block_hash: expected an integer or bytes hash, got true",
    );
    assertDecodeError(
      () => decodeVllmMultipart(stored({ token_ids: [1, 2, 3, -4] }), ctx),
      "events[1].token_ids[3]: expected a token id",
    );
    assertDecodeError(
      () => decodeVllmMultipart(stored({ token_ids: "abcd" }), ctx),
      "events[1].token_ids: expected an array of token ids",
    );
    assertDecodeError(
      () => decodeVllmMultipart(stored({ block_size: 0 }), ctx),
      "events[1].block_size: expected a positive block size, got 0",
    );
    assertDecodeError(
      () => decodeVllmMultipart(stored({ block_size: undefined }), ctx),
      "events[1].block_size: expected a positive block size",
    );
    assertDecodeError(
      () => decodeVllmMultipart(stored({ medium: 1 }), ctx),
      "events[1].medium: expected a string or nil, got number 1",
    );
    assertDecodeError(
      () => decodeVllmMultipart(one(["BlockRemoved"]), ctx),
      "events[1][1] (block_hashes): expected an array of hashes, got nothing",
    );
  });

  it("reports a caller's bad context or hash function as a programming error, not a decode error", () => {
    assert.throws(() => decodeVllmMultipart(good(), { ...ctx, workerId: "" }), TypeError);
    assert.throws(() => decodeVllmMultipart(good(), { ...ctx, dpRank: -1 }), RangeError);
    const stored = frames([0, [["BlockStored", [1, 2], null, [1, 2, 3, 4], 2, null]]]);
    assert.throws(
      () => decodeVllmMultipart(stored, { ...ctx, blockHashToTokensHash: () => [1n] }),
      /returned an array of 1 for 2 blocks of 2 tokens/,
    );
    assert.throws(
      () => decodeVllmMultipart(stored, { ...ctx, blockHashToTokensHash: () => [1n, -1n] }),
      /not a u64 bigint/,
    );
  });
});
