import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createRng } from "../random.ts";
import { type SseEvent, SseParseError, SseParser } from "./sse-parser.ts";

const enc = new TextEncoder();

/** Events without their times, for comparing how a stream was split apart. */
function strip(events: readonly SseEvent[]): Omit<SseEvent, "firstByteNs">[] {
  return events.map(({ firstByteNs: _, ...rest }) => rest);
}

/** Feeds `bytes` cut at `cuts` (sorted offsets); piece k arrives at time k. */
function feedSplit(bytes: Uint8Array, cuts: readonly number[]): SseEvent[] {
  const parser = new SseParser();
  const out: SseEvent[] = [];
  let prev = 0;
  [...cuts, bytes.length].forEach((cut, k) => {
    out.push(...parser.feed(bytes.subarray(prev, cut), k));
    prev = cut;
  });
  return out;
}

/** The piece (as numbered by feedSplit) that holds byte `offset`. */
function pieceOf(offset: number, cuts: readonly number[]): number {
  let k = 0;
  while (k < cuts.length && cuts[k]! <= offset) k++;
  return k;
}

interface Fixture {
  name: string;
  text: string;
  events: Omit<SseEvent, "firstByteNs">[];
  /** Byte offset of each event's first byte. */
  starts: number[];
}

const FIXTURES: Fixture[] = [
  {
    name: "OpenAI stream with LF",
    text: 'data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n',
    events: [{ data: '{"a":1}' }, { data: '{"b":2}' }, { data: "[DONE]" }],
    starts: [0, 15, 30],
  },
  {
    name: "CRLF, comments, multi-line data, event and id",
    text: ": keep-alive\r\n\r\nevent: add\r\ndata: one\r\ndata:two\r\ndata:  three\r\nid: 7\r\n\r\ndata\r\n\r\n",
    events: [
      { event: "add", data: "one\ntwo\n three", id: "7" },
      { data: "", id: "7" },
    ],
    starts: [16, 72],
  },
  {
    name: "bare CR line endings and a comment inside an event",
    text: "data: x\r:note\rdata: y\r\rretry: 10\rdata:z\r\r",
    events: [{ data: "x\ny" }, { data: "z" }],
    starts: [0, 23],
  },
  {
    name: "multibyte UTF-8 and a BOM",
    text: "\ufeffdata: héllo 😀 ✓\n\ndata: 日本\n\n",
    events: [{ data: "héllo 😀 ✓" }, { data: "日本" }],
    starts: [3, 3 + enc.encode("data: héllo 😀 ✓\n\n").length],
  },
  {
    name: "field without a colon, unknown field, id reset, mixed endings",
    text: "id: a\nfoo: bar\ndata: 1\r\n\nid\ndata: 2\r\rdata:\n\n",
    events: [{ data: "1", id: "a" }, { data: "2" }, { data: "" }],
    starts: [0, 25, 37],
  },
];

describe("SseParser", () => {
  for (const fx of FIXTURES) {
    const bytes = enc.encode(fx.text);

    it(`${fx.name}: whole stream`, () => {
      const events = feedSplit(bytes, []);
      assert.deepEqual(strip(events), fx.events);
    });

    it(`${fx.name}: every two-way split gives the same events and first-byte times`, () => {
      for (let cut = 0; cut <= bytes.length; cut++) {
        const events = feedSplit(bytes, [cut]);
        assert.deepEqual(strip(events), fx.events, `split at ${cut}`);
        assert.deepEqual(
          events.map((e) => e.firstByteNs),
          fx.starts.map((s) => pieceOf(s, [cut])),
          `times, split at ${cut}`,
        );
      }
    });

    it(`${fx.name}: byte by byte`, () => {
      const cuts = Array.from({ length: bytes.length - 1 }, (_, i) => i + 1);
      const events = feedSplit(bytes, cuts);
      assert.deepEqual(strip(events), fx.events);
      assert.deepEqual(
        events.map((e) => e.firstByteNs),
        fx.starts.map((s) => pieceOf(s, cuts)),
      );
    });

    it(`${fx.name}: random multi-way splits`, () => {
      const rng = createRng(20251125, fx.name);
      for (let trial = 0; trial < 200; trial++) {
        const n = 1 + rng.int(8);
        const cuts = [...new Set(Array.from({ length: n }, () => rng.int(bytes.length + 1)))].sort(
          (a, b) => a - b,
        );
        const events = feedSplit(bytes, cuts);
        assert.deepEqual(strip(events), fx.events, `cuts ${cuts}`);
        assert.deepEqual(
          events.map((e) => e.firstByteNs),
          fx.starts.map((s) => pieceOf(s, cuts)),
          `times, cuts ${cuts}`,
        );
      }
    });
  }

  it("gives the same events for string chunks as for bytes", () => {
    for (const fx of FIXTURES) {
      const parser = new SseParser();
      const events: SseEvent[] = [];
      for (let i = 0; i < fx.text.length; i += 3) events.push(...parser.feed(fx.text.slice(i, i + 3), i));
      assert.deepEqual(strip(events), fx.events, fx.name);
    }
  });

  it("stamps a character split across chunks with the time of its first byte", () => {
    const bytes = enc.encode("data: a\n\n😀: x\ndata: b\n\n");
    // The emoji (4 bytes at offset 9) arrives in three pieces; the event it starts began with the first.
    const parser = new SseParser();
    assert.deepEqual(parser.feed(bytes.subarray(0, 10), 1), [{ data: "a", firstByteNs: 1 }]);
    assert.deepEqual(parser.feed(bytes.subarray(10, 11), 2), []);
    assert.deepEqual(parser.feed(bytes.subarray(11), 3), [{ data: "b", firstByteNs: 1 }]);
  });

  it("strips only the first BOM of the stream", () => {
    const parser = new SseParser();
    const events = parser.feed("\ufeffdata: 1\n\n\ufeffdata: 2\n\ndata: 3\n\n", 0);
    // The second BOM makes the field name "\ufeffdata", which is not "data", so that event has no data.
    assert.deepEqual(strip(events), [{ data: "1" }, { data: "3" }]);
  });

  it("replaces invalid UTF-8 instead of failing", () => {
    const parser = new SseParser();
    const events = parser.feed(
      new Uint8Array([0x64, 0x61, 0x74, 0x61, 0x3a, 0xff, 0xe2, 0x28, 0x0a, 0x0a]),
      0,
    );
    assert.deepEqual(strip(events), [{ data: "\ufffd\ufffd(" }]);
  });

  it("does not dispatch an event with no data lines, and forgets its type", () => {
    const parser = new SseParser();
    assert.deepEqual(strip(parser.feed("event: ping\n\ndata: x\n\n", 0)), [{ data: "x" }]);
  });

  it("ignores an id holding NUL and keeps the last id across events", () => {
    const parser = new SseParser();
    const events = parser.feed("id: 1\ndata: a\n\nid: 2\u0000\ndata: b\n\n", 0);
    assert.deepEqual(strip(events), [
      { data: "a", id: "1" },
      { data: "b", id: "1" },
    ]);
  });

  it("reads retry only when it is all digits", () => {
    const parser = new SseParser();
    parser.feed("retry: 1500\n\n", 0);
    assert.equal(parser.retry, 1500);
    parser.feed("retry: 15x\n\nretry:\n\n", 0);
    assert.equal(parser.retry, 1500);
  });

  it("returns the unterminated last event from finish, and nothing when the stream ended cleanly", () => {
    const parser = new SseParser();
    assert.deepEqual(parser.feed("data: a\n\n: c\nevent: e\ndata: b", 5), [{ data: "a", firstByteNs: 5 }]);
    assert.deepEqual(parser.finish(9), { event: "e", data: "b", firstByteNs: 5 });
    const clean = new SseParser();
    clean.feed("data: a\n\n", 0);
    assert.equal(clean.finish(1), null);
  });

  it("decodes an unfinished UTF-8 sequence at the end of the stream as U+FFFD", () => {
    const parser = new SseParser();
    parser.feed(new Uint8Array([...enc.encode("data: x"), 0xf0, 0x9f]), 0);
    assert.deepEqual(parser.finish(1), { data: "x\ufffd", firstByteNs: 0 });
  });

  it("fails an event larger than the limit, in one line or many, and stays failed", () => {
    const oneLine = new SseParser({ maxEventSize: 64 });
    oneLine.feed(`data: ${"x".repeat(40)}`, 0);
    assert.throws(() => oneLine.feed("x".repeat(40), 1), SseParseError);
    assert.throws(() => oneLine.feed("\n\n", 2), SseParseError);

    const manyLines = new SseParser({ maxEventSize: 64 });
    assert.throws(() => {
      for (let i = 0; i < 100; i++) manyLines.feed("data: 0123456789\n", i);
    }, /exceeds 64 characters/);
  });

  it("accepts events up to the limit and counts each event afresh", () => {
    const parser = new SseParser({ maxEventSize: 64 });
    const line = `data: ${"y".repeat(50)}\n\n`;
    for (let i = 0; i < 100; i++) assert.equal(parser.feed(line, i).length, 1);
  });

  it("rejects a non-positive limit", () => {
    assert.throws(() => new SseParser({ maxEventSize: 0 }), RangeError);
  });
});
