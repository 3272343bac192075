import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import * as zmq from "zeromq";
import { createBlockHasher } from "../../kv/block-hash.ts";
import { decodeVllmMultipart } from "../../kv/codec-vllm.ts";
import { toBigInts } from "../../kv/hash-seq.ts";
import { assertServelabError } from "../../testing/assert-errors.ts";
import { VllmBlockCatalog } from "./block-catalog.ts";
import { endpointBinds, KV_EVENTS_DEFAULTS, offsetEndpointPort, parseKvEventsConfig } from "./config.ts";
import { ZmqEventPublisher } from "./publisher.ts";
import {
  END_SEQ,
  parseReplayReply,
  parseReplayRequest,
  replayBatchFrames,
  replayEndFrames,
  replayRequest,
  seqBytes,
} from "./replay-frames.ts";
import { fromHex, hex, waitFor } from "./testing.ts";

// sha256_cbor known-answer vector (routing-and-ecosystem.md §A.9.3), PYTHONHASHSEED "0": blocks [1,2,3,4] and
// [5,6,7,8] chained, as vLLM publishes their ids.
const H0 = 2164874634404590027n;
const H1 = 17270480062156288726n;

/**
 * The payload msgspec (vLLM ≥ 0.21 with tagged map events) writes for
 * `EventBatch(ts=1.5, events=[BlockStored(block_hashes=[H0, H1], parent_block_hash=None, token_ids=[1..8],
 * block_size=4, lora_id=None, medium="GPU")], data_parallel_rank=0)`: fixmaps, and integers in their shortest
 * unsigned form.
 */
const MSGSPEC_STORED = `
  93 cb3ff8000000000000
     91 87 a474797065 ab426c6f636b53746f726564
           ac626c6f636b5f686173686573 92 cf1e0b2e028ef071cb cfefad121d154ab2d6
           b1706172656e745f626c6f636b5f68617368 c0
           a9746f6b656e5f696473 98 0102030405060708
           aa626c6f636b5f73697a65 04
           a76c6f72615f6964 c0
           a66d656469756d a3475055
     00`;

describe("--kv-events-config", () => {
  it("takes vLLM's keys with vLLM's defaults", () => {
    assert.deepEqual(parseKvEventsConfig("{}"), { ...KV_EVENTS_DEFAULTS, publisher: "null" });
    assert.deepEqual(
      parseKvEventsConfig(
        '{"enable_kv_cache_events":true,"publisher":"zmq","endpoint":"tcp://*:5557","replay_endpoint":"tcp://*:5558","topic":"kv-events","buffer_steps":10000,"hwm":100000,"max_queue_size":100000}',
      ),
      {
        enableKvCacheEvents: true,
        publisher: "zmq",
        endpoint: "tcp://*:5557",
        replayEndpoint: "tcp://*:5558",
        bufferSteps: 10000,
        hwm: 100000,
        maxQueueSize: 100000,
        topic: "kv-events",
      },
    );
    // Enabling events picks the zmq publisher, as vLLM's post-init does.
    assert.equal(parseKvEventsConfig('{"enable_kv_cache_events":true}').publisher, "zmq");
    assert.equal(parseKvEventsConfig('{"enable_kv_cache_events":true,"publisher":"null"}').publisher, "null");
  });

  it("refuses bad JSON, unknown keys and wrong types, naming the key", () => {
    assertServelabError(() => parseKvEventsConfig("{nope"), "KV_EVENTS_CONFIG", "not valid JSON");
    assertServelabError(() => parseKvEventsConfig("[]"), "KV_EVENTS_CONFIG", "expected a JSON object");
    assertServelabError(
      () => parseKvEventsConfig('{"replay_endpont":"tcp://*:1"}'),
      "KV_EVENTS_CONFIG",
      '"replay_endpont"',
    );
    assertServelabError(
      () => parseKvEventsConfig('{"enable_kv_cache_events":"yes"}'),
      "KV_EVENTS_CONFIG",
      "enable_kv_cache_events",
    );
    assertServelabError(() => parseKvEventsConfig('{"publisher":"kafka"}'), "KV_EVENTS_CONFIG", "publisher");
    assertServelabError(
      () => parseKvEventsConfig('{"endpoint":"http://x:1"}'),
      "KV_EVENTS_CONFIG",
      "endpoint",
    );
    assertServelabError(() => parseKvEventsConfig('{"buffer_steps":0}'), "KV_EVENTS_CONFIG", "buffer_steps");
    assertServelabError(() => parseKvEventsConfig('{"hwm":1.5}'), "KV_EVENTS_CONFIG", "hwm");
    assertServelabError(() => parseKvEventsConfig('{"topic":3}'), "KV_EVENTS_CONFIG", "topic");
  });

  it("offsets ports per DP rank and binds or connects by vLLM's rule", () => {
    assert.equal(offsetEndpointPort("tcp://*:5557", 0), "tcp://*:5557");
    assert.equal(offsetEndpointPort("tcp://*:5557", 3), "tcp://*:5560");
    assert.equal(offsetEndpointPort("tcp://10.0.0.1:20080", 1), "tcp://10.0.0.1:20081");
    assert.equal(offsetEndpointPort("tcp://127.0.0.1:0", 2), "tcp://127.0.0.1:0");
    assert.equal(offsetEndpointPort("inproc://kv", 2), "inproc://kv_dp2");
    assertServelabError(() => offsetEndpointPort("ipc:///tmp/kv", 1), "KV_EVENTS_CONFIG", "ipc:///tmp/kv");
    assertServelabError(() => offsetEndpointPort("tcp://*:65535", 1), "KV_EVENTS_CONFIG", "65536");
    assert.equal(endpointBinds("tcp://*:5557"), true);
    assert.equal(endpointBinds("tcp://[::]:5557"), true);
    assert.equal(endpointBinds("ipc:///tmp/kv"), true);
    assert.equal(endpointBinds("inproc://kv"), true);
    assert.equal(endpointBinds("tcp://127.0.0.1:0"), true);
    assert.equal(endpointBinds("tcp://router.local:5557"), false);
  });
});

describe("replay frames", () => {
  const topic = new TextEncoder().encode("kv-events");
  const seq = fromHex("0000000000000007");
  const payload = fromHex("93cb3ff800000000000090 00");
  const id = fromHex("00aabbccdd");

  it("writes vLLM's request, reply and end-marker frames byte for byte", () => {
    assert.deepEqual(replayRequest(5n).map(hex), ["", "0000000000000005"]);
    assert.deepEqual(replayBatchFrames(id, "0.26", topic, seq, payload).map(hex), [
      "00aabbccdd",
      "",
      "6b762d6576656e7473",
      "0000000000000007",
      "93cb3ff80000000000009000",
    ]);
    assert.deepEqual(replayBatchFrames(id, "0.25", topic, seq, payload).map(hex), [
      "00aabbccdd",
      "",
      "0000000000000007",
      "93cb3ff80000000000009000",
    ]);
    assert.deepEqual(replayEndFrames(id, "0.26").map(hex), ["00aabbccdd", "", "", "ffffffffffffffff", ""]);
    assert.deepEqual(replayEndFrames(id, "0.25").map(hex), ["00aabbccdd", "", "ffffffffffffffff", ""]);
    assert.equal(END_SEQ, 2n ** 64n - 1n);
  });

  it("reads requests as a ROUTER receives them, ignoring anything else", () => {
    assert.equal(parseReplayRequest([id, fromHex(""), fromHex("0000000000000102")]), 258n);
    assert.equal(parseReplayRequest([id, fromHex("0000000000000102")]), null);
    assert.equal(parseReplayRequest([id, fromHex("00"), fromHex("0000000000000102")]), null);
    assert.equal(parseReplayRequest([id, fromHex(""), fromHex("0102")]), null);
  });

  it("reads every reply layout publishers have used", () => {
    const e = fromHex("");
    const end = fromHex("ffffffffffffffff");
    const batch = (frames: Uint8Array[]) => {
      const r = parseReplayReply(frames, "test");
      assert.equal(r.kind, "batch");
      return r as Extract<typeof r, { kind: "batch" }>;
    };
    const v26 = batch([e, topic, seq, payload]);
    assert.equal(v26.seq, 7n);
    assert.equal(hex(v26.topic), hex(topic));
    assert.equal(hex(v26.payload), hex(payload));
    assert.equal(batch([e, seq, payload]).seq, 7n);
    // An empty topic in the ≥ 0.26 layout vanishes with the leading empty frames.
    assert.equal(batch([e, e, seq, payload]).seq, 7n);
    for (const marker of [
      [e, e],
      [e, end, e],
      [e, e, end, e],
      [e, topic, end, e],
    ])
      assert.deepEqual(parseReplayReply(marker, "test"), { kind: "end" }, marker.map(hex).join("|"));
    assertServelabError(() => parseReplayReply([e, fromHex("0102"), payload], "src"), "KV_EVENT_DECODE", "8");
  });
});

describe("vLLM block hashes and events from the engine's block ids", () => {
  // Ids 0 → 1 → 2 chain; id 3 is a second child of 0.
  const parents = [-1, 0, 1, 0];
  const catalog = new VllmBlockCatalog({ parentOf: (id) => parents[id]! }, 4, "0");
  catalog.note([0, 1, 2], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  catalog.note([0, 3], [1, 2, 3, 4, 7, 7, 7, 7]);

  it("publishes vLLM's sha256_cbor ids for the tokens", () => {
    assert.equal(catalog.vllmHash(1), H1);
    assert.equal(catalog.vllmHash(0), H0);
  });

  it("writes one BlockStored per chained run, naming its parent, with tokens and block size", () => {
    const out: Parameters<typeof catalog.storedEvents>[1] = [];
    catalog.storedEvents([0, 1, 3, 2], out);
    assert.deepEqual(out, [
      {
        type: "BlockStored",
        blockHashes: [H0, H1],
        parentBlockHash: null,
        tokenIds: [1, 2, 3, 4, 5, 6, 7, 8],
        blockSize: 4,
        loraId: null,
        medium: "GPU",
      },
      {
        type: "BlockStored",
        blockHashes: [catalog.vllmHash(3)],
        parentBlockHash: H0,
        tokenIds: [7, 7, 7, 7],
        blockSize: 4,
        loraId: null,
        medium: "GPU",
      },
      {
        type: "BlockStored",
        blockHashes: [catalog.vllmHash(2)],
        parentBlockHash: H1,
        tokenIds: [9, 10, 11, 12],
        blockSize: 4,
        loraId: null,
        medium: "GPU",
      },
    ]);
    assert.deepEqual(catalog.removedEvent([1]), { type: "BlockRemoved", blockHashes: [H1], medium: "GPU" });
  });
});

describe("the publisher's wire frames", () => {
  const sockets: { close(): unknown }[] = [];
  after(async () => {
    for (const s of sockets) await s.close();
  });

  it("sends [topic, seq u64 BE, msgpack([ts, events, dp_rank])] with seq counting batches from 0", async () => {
    const pub = await ZmqEventPublisher.start({
      endpoint: "tcp://127.0.0.1:*",
      topic: "kv-events",
      clock: () => 1.5,
    });
    sockets.push(pub);
    const sub = new zmq.Subscriber({ linger: 0 });
    sockets.push(sub);
    sub.subscribe("kv-");
    sub.connect(pub.endpoint);
    const received: Uint8Array[][] = [];
    const reading = (async () => {
      for await (const frames of sub) received.push(frames);
    })();
    // PUB drops what it sends before the subscription arrives: publish until the subscriber hears something.
    const stored = {
      type: "BlockStored" as const,
      blockHashes: [H0, H1],
      parentBlockHash: null,
      tokenIds: [1, 2, 3, 4, 5, 6, 7, 8],
      blockSize: 4,
      loraId: null,
      medium: "GPU",
    };
    const seqs: bigint[] = [];
    await waitFor(() => {
      seqs.push(pub.publish([stored], 0)!);
      return received.length > 0;
    }, "the first batch");
    const removedSeq = pub.publish([{ type: "BlockRemoved", blockHashes: [H1], medium: "GPU" }], 0)!;
    assert.deepEqual(
      [...seqs, removedSeq],
      Array.from({ length: seqs.length + 1 }, (_, i) => BigInt(i)),
    );
    await waitFor(
      () => received.at(-1)?.[1] !== undefined && hex(received.at(-1)![1]!) === hex(seqBytes(removedSeq)),
      "the last batch",
    );
    sub.close();
    await reading;
    const first = received[0]!;
    const second = received.at(-1)!;
    assert.equal(hex(first[0]!), "6b762d6576656e7473");
    assert.ok(
      seqs.some((s) => hex(seqBytes(s)) === hex(first[1]!)),
      "the seq frame is a published seq, 8 bytes BE",
    );
    // Byte for byte msgspec's payload except where msgpackr picks another valid form: map16 for the event map
    // (msgspec: fixmap) and int64 for a hash below 2^63 (msgspec: uint64). Every msgpack reader takes both.
    const expected = hex(fromHex(MSGSPEC_STORED))
      .replace("9187a474", "91de0007a474")
      .replace("cf1e0b2e", "d31e0b2e");
    assert.equal(hex(first[2]!), expected);
    assert.equal(
      hex(second[2]!),
      "93cb3ff800000000000091de0003a474797065ac426c6f636b52656d6f766564ac626c6f636b5f68617368657391cfefad121d154ab2d6a66d656469756da347505500",
    );
  });

  it("drops batches after closing instead of failing the engine step", async () => {
    const pub = await ZmqEventPublisher.start({ endpoint: "tcp://127.0.0.1:*" });
    assert.equal(pub.publish([{ type: "AllBlocksCleared" }], 0), 0n);
    await pub.close();
    assert.equal(pub.publish([{ type: "AllBlocksCleared" }], 0), null);
  });

  it("decodes msgspec's exact bytes into the router's events", async () => {
    const hasher = await createBlockHasher();
    const out = decodeVllmMultipart(
      [fromHex("6b762d6576656e7473"), fromHex("0000000000000000"), fromHex(MSGSPEC_STORED)],
      {
        workerId: "w",
        blockHashToTokensHash: (t, b) => toBigInts(hasher.localHashes(t, b)),
      },
    );
    const local = toBigInts(hasher.localHashes([1, 2, 3, 4, 5, 6, 7, 8], 4));
    assert.deepEqual(out.events, [
      {
        workerId: "w",
        dpRank: 0,
        eventId: 0n,
        data: {
          type: "stored",
          parentHash: null,
          blocks: [
            { blockHash: H0, tokensHash: local[0] },
            { blockHash: H1, tokensHash: local[1] },
          ],
        },
      },
    ]);
  });
});
