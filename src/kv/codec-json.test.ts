import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { assertServelabError } from "../testing/assert-errors.ts";
import {
  decodeKvCacheEventsJson,
  decodeRouterEventJson,
  encodeKvCacheEventsJson,
  encodeRouterEventJson,
} from "./codec-json.ts";
import type { RouterEvent } from "./events.ts";

const BIG = 15760518052499183552n; // above 2^63, from a real vLLM capture
const MAX = 2n ** 64n - 1n;

function assertDecodeError(fn: () => unknown, ...fragments: string[]): void {
  assertServelabError(fn, "KV_EVENT_DECODE", ...fragments);
}

describe("RouterEvent JSON fixtures", () => {
  it("decodes a stored event as Dynamo writes it", () => {
    const text = `{"worker_id":7587888274617917443,"event":{"event_id":42,"data":{"stored":{"parent_hash":${BIG},
      "blocks":[{"block_hash":${MAX},"tokens_hash":9007199254740993},{"block_hash":0,"tokens_hash":1}]}},"dp_rank":3}}`;
    assert.deepEqual(decodeRouterEventJson(text), {
      workerId: "7587888274617917443",
      dpRank: 3,
      eventId: 42n,
      data: {
        type: "stored",
        parentHash: BIG,
        blocks: [
          { blockHash: MAX, tokensHash: 9007199254740993n },
          { blockHash: 0n, tokensHash: 1n },
        ],
      },
    });
  });

  it("decodes a root stored event, whose parent is null or absent", () => {
    const withNull = decodeRouterEventJson(
      '{"worker_id":1,"event":{"event_id":0,"data":{"stored":{"parent_hash":null,"blocks":[]}}}}',
    );
    assert.deepEqual(withNull.data, { type: "stored", parentHash: null, blocks: [] });
    assert.equal(withNull.dpRank, 0, "dp_rank defaults to 0");
    const absent = decodeRouterEventJson(
      '{"worker_id":1,"event":{"event_id":0,"data":{"stored":{"blocks":[]}}}}',
    );
    assert.deepEqual(absent.data, withNull.data);
  });

  it("decodes removed and cleared events", () => {
    const removed = decodeRouterEventJson(
      `{"worker_id":2,"event":{"event_id":18446744073709551615,"data":{"removed":{"block_hashes":[${BIG},5]}},"dp_rank":0}}`,
    );
    assert.deepEqual(removed, {
      workerId: "2",
      dpRank: 0,
      eventId: MAX,
      data: { type: "removed", blockHashes: [BIG, 5n] },
    });
    const cleared = decodeRouterEventJson(
      '{"worker_id":2,"event":{"event_id":9,"data":"cleared","dp_rank":1}}',
    );
    assert.deepEqual(cleared.data, { type: "cleared" });
    const mapForm = decodeRouterEventJson('{"worker_id":2,"event":{"event_id":9,"data":{"cleared":null}}}');
    assert.deepEqual(mapForm.data, { type: "cleared" });
  });

  it("ignores unknown keys and tolerates whitespace and escapes", () => {
    const text = `
      {
        "worker_id" : "pod-\\u0061\\n",
        "schema": {"nested": [1.5, -2e10, true, false, null, "x\\"y"]},
        "event": {
          "event_id": 1,
          "data": {"stored": {"parent_hash": 3, "blocks": [{"block_hash": 4, "tokens_hash": 5, "mm_extra_info": {"mm_hashes": [1]}}]}},
          "dp_rank": 0,
          "placement": {"tier": "device"}
        }
      }`;
    const ev = decodeRouterEventJson(text);
    assert.equal(ev.workerId, "pod-a\n");
    assert.deepEqual(ev.data, {
      type: "stored",
      parentHash: 3n,
      blocks: [{ blockHash: 4n, tokensHash: 5n }],
    });
  });
});

describe("RouterEvent JSON round trip", () => {
  const events: RouterEvent[] = [
    {
      workerId: "18446744073709551615",
      dpRank: 4294967295,
      eventId: MAX,
      data: {
        type: "stored",
        parentHash: BIG,
        blocks: [
          { blockHash: BIG + 1n, tokensHash: 2n ** 63n },
          { blockHash: 0n, tokensHash: MAX },
        ],
      },
    },
    { workerId: "0", dpRank: 0, eventId: 0n, data: { type: "stored", parentHash: null, blocks: [] } },
    { workerId: "decode-2", dpRank: 1, eventId: 17n, data: { type: "removed", blockHashes: [BIG, 1n, MAX] } },
    { workerId: "0012", dpRank: 2, eventId: 18n, data: { type: "cleared" } },
    { workerId: 'name with "quotes" ✓', dpRank: 0, eventId: 19n, data: { type: "removed", blockHashes: [] } },
  ];

  it("decodes what it encodes, exactly", () => {
    for (const ev of events) assert.deepEqual(decodeRouterEventJson(encodeRouterEventJson(ev)), ev);
  });

  it("writes u64 values as exact JSON integers and lease ids as numbers", () => {
    const text = encodeRouterEventJson(events[0]!);
    assert.equal(
      text,
      '{"worker_id":18446744073709551615,"event":{"event_id":18446744073709551615,"data":{"stored":' +
        '{"parent_hash":15760518052499183552,"blocks":[{"block_hash":15760518052499183553,' +
        '"tokens_hash":9223372036854775808},{"block_hash":0,"tokens_hash":18446744073709551615}]}},' +
        '"dp_rank":4294967295}}',
    );
    assert.ok(
      encodeRouterEventJson(events[3]!).startsWith('{"worker_id":"0012",'),
      "non-canonical decimal stays a string",
    );
    assert.ok(encodeRouterEventJson(events[2]!).startsWith('{"worker_id":"decode-2",'));
    assert.ok(
      encodeRouterEventJson({ ...events[1]!, workerId: "18446744073709551616" }).startsWith('{"worker_id":"'),
    );
    assert.ok(encodeRouterEventJson(events[3]!).includes('"data":"cleared"'));
  });

  it("refuses to encode values outside their wire types", () => {
    const base = events[1]!;
    assert.throws(
      () => encodeRouterEventJson({ ...base, eventId: -1n }),
      /eventId must be a bigint in \[0, 2\^64\)/,
    );
    assert.throws(() => encodeRouterEventJson({ ...base, eventId: 2n ** 64n }), /eventId/);
    assert.throws(() => encodeRouterEventJson({ ...base, dpRank: -1 }), /dpRank must be an integer/);
    assert.throws(
      () => encodeRouterEventJson({ ...base, workerId: "" }),
      /workerId must be a non-empty string/,
    );
    assert.throws(
      () =>
        encodeRouterEventJson({
          ...base,
          data: {
            type: "stored",
            parentHash: null,
            blocks: [{ blockHash: 1n, tokensHash: 1 as unknown as bigint }],
          },
        }),
      /blocks\[0\]\.tokensHash must be a bigint/,
    );
  });
});

describe("KvCacheEvents JSON", () => {
  it("round-trips a batch under the worker id the caller names", () => {
    const events: RouterEvent[] = [
      { workerId: "w", dpRank: 0, eventId: 1n, data: { type: "removed", blockHashes: [BIG] } },
      { workerId: "w", dpRank: 2, eventId: 2n, data: { type: "cleared" } },
    ];
    const text = encodeKvCacheEventsJson(events, true);
    assert.equal(
      text,
      '{"events":[{"event_id":1,"data":{"removed":{"block_hashes":[15760518052499183552]}},"dp_rank":0},' +
        '{"event_id":2,"data":"cleared","dp_rank":2}],"shutdown":true}',
    );
    assert.deepEqual(decodeKvCacheEventsJson(text, "w"), { events, shutdown: true });
  });

  it("names the failing event and field", () => {
    assertDecodeError(
      () =>
        decodeKvCacheEventsJson(
          '{"events":[{"event_id":1,"data":"cleared"},{"data":"cleared"}],"shutdown":false}',
          "w",
        ),
      "KvCacheEvents JSON: events[1].event_id: is missing",
    );
    assertDecodeError(() => decodeKvCacheEventsJson('{"events":[]}', "w"), "shutdown: is missing");
    assertDecodeError(
      () => decodeKvCacheEventsJson('{"events":[],"shutdown":1}', "w"),
      "shutdown: expected true or false",
    );
    assert.throws(
      () => decodeKvCacheEventsJson('{"events":[],"shutdown":true}', ""),
      /needs the non-empty id/,
    );
  });
});

describe("RouterEvent JSON errors", () => {
  const stored = (blocks: string) =>
    `{"worker_id":1,"event":{"event_id":1,"data":{"stored":{"parent_hash":null,"blocks":[${blocks}]}}}}`;
  const good = '{"block_hash":1,"tokens_hash":2}';

  it("names the JSON path of a wrong-typed or out-of-range value", () => {
    assertDecodeError(
      () =>
        decodeRouterEventJson(stored(`${good},${good},{"block_hash":1,"tokens_hash":18446744073709551616}`)),
      "RouterEvent JSON: event.data.stored.blocks[2].tokens_hash: expected a non-negative integer below 2^64, got the integer 18446744073709551616",
    );
    assertDecodeError(
      () => decodeRouterEventJson(stored('{"block_hash":-1,"tokens_hash":2}')),
      "blocks[0].block_hash",
      "-1",
    );
    assertDecodeError(
      () => decodeRouterEventJson(stored('{"block_hash":1.0,"tokens_hash":2}')),
      "got the number 1",
    );
    assertDecodeError(
      () => decodeRouterEventJson(stored('{"block_hash":"1","tokens_hash":2}')),
      'got the string "1"',
    );
    assertDecodeError(
      () => decodeRouterEventJson(stored('{"block_hash":1}')),
      "event.data.stored.blocks[0].tokens_hash: is missing",
    );
    assertDecodeError(
      () => decodeRouterEventJson(stored("7")),
      "event.data.stored.blocks[0]: expected an object, got the integer 7",
    );
    assertDecodeError(
      () =>
        decodeRouterEventJson(
          '{"worker_id":1,"event":{"event_id":1,"data":{"stored":{"parent_hash":null}}}}',
        ),
      "event.data.stored.blocks: is missing",
    );
    assertDecodeError(
      () =>
        decodeRouterEventJson(
          '{"worker_id":1,"event":{"event_id":1,"data":{"removed":{"block_hashes":[1,null]}}}}',
        ),
      "event.data.removed.block_hashes[1]: expected a non-negative integer below 2^64, got null",
    );
    assertDecodeError(
      () =>
        decodeRouterEventJson('{"worker_id":1,"event":{"event_id":1,"data":"cleared","dp_rank":4294967296}}'),
      "event.dp_rank: expected a non-negative integer below 2^32",
    );
    assertDecodeError(
      () => decodeRouterEventJson('{"worker_id":1,"event":{"event_id":1,"data":"cleared","dp_rank":null}}'),
      "event.dp_rank",
    );
  });

  it("rejects missing or malformed top-level fields", () => {
    assertDecodeError(() => decodeRouterEventJson('{"event":{}}'), "worker_id: is missing");
    assertDecodeError(
      () => decodeRouterEventJson('{"worker_id":""}'),
      "worker_id: expected a non-negative integer",
    );
    assertDecodeError(
      () => decodeRouterEventJson('{"worker_id":1.5,"event":{}}'),
      "worker_id:",
      "the number 1.5",
    );
    assertDecodeError(() => decodeRouterEventJson('{"worker_id":1}'), "event: is missing");
    assertDecodeError(
      () => decodeRouterEventJson('{"worker_id":1,"event":[]}'),
      "event: expected an object, got an array of 0",
    );
    assertDecodeError(() => decodeRouterEventJson("[1]"), "(root): expected an object");
  });

  it("rejects unknown or ambiguous event kinds", () => {
    const withData = (d: string) => `{"worker_id":1,"event":{"event_id":1,"data":${d}}}`;
    assertDecodeError(
      () => decodeRouterEventJson(withData('"flushed"')),
      'event.data: unknown event kind "flushed"',
    );
    assertDecodeError(
      () => decodeRouterEventJson(withData('{"updated":{}}')),
      'unknown event kind "updated"',
    );
    assertDecodeError(
      () => decodeRouterEventJson(withData('{"stored":{"blocks":[]},"removed":{"block_hashes":[]}}')),
      'as its only key, got {"stored", "removed"}',
    );
    assertDecodeError(
      () => decodeRouterEventJson(withData('{"cleared":{}}')),
      "event.data.cleared: expected null",
    );
  });

  it("reports JSON syntax errors with line and column, under the caller's label", () => {
    assertDecodeError(
      () => decodeRouterEventJson('{"worker_id":1,}', "events.jsonl:3"),
      "events.jsonl:3: invalid JSON at line 1, column 16",
    );
    assertDecodeError(
      () => decodeRouterEventJson('{\n  "worker_id": 01}'),
      "line 2, column 17",
      "expected ',' or '}'",
    );
    assertDecodeError(() => decodeRouterEventJson(""), "expected a JSON value, found the end of the input");
    assertDecodeError(() => decodeRouterEventJson('{"a":1} x'), "unexpected content after the JSON value");
    assertDecodeError(() => decodeRouterEventJson('{"a":"unterminated'), "unterminated string");
    assertDecodeError(() => decodeRouterEventJson('{"a":"\\x"}'), "invalid escape \\x");
    assertDecodeError(() => decodeRouterEventJson('{"a":"\\u12"}'), "four hex digits");
    assertDecodeError(() => decodeRouterEventJson('{"a":"tab\there"}'), "control character");
    assertDecodeError(() => decodeRouterEventJson('{"a":-}'), "a number needs digits");
    assertDecodeError(() => decodeRouterEventJson('{"a":1.}'), "decimal point");
    assertDecodeError(() => decodeRouterEventJson('{"a":1e}'), "exponent");
    assertDecodeError(() => decodeRouterEventJson('{"a":tru}'), "expected a JSON value");
    assertDecodeError(() => decodeRouterEventJson('{"a":1,"a":2}'), 'duplicate key "a"');
    assertDecodeError(
      () => decodeRouterEventJson(`${"[".repeat(200)}${"]".repeat(200)}`),
      "nested deeper than 128",
    );
    assertDecodeError(() => decodeRouterEventJson(42 as unknown as string), "expected JSON text, got number");
  });
});
