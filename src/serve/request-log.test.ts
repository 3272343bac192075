import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatLogEntry, RequestLog, type RequestLogEntry } from "./request-log.ts";

const entry = (id: string, firstNs: bigint | null = null): Omit<RequestLogEntry, "seq"> => ({
  id,
  client_request_id: null,
  endpoint: "chat",
  stream: true,
  outcome: "completed",
  dp_rank: 0,
  prompt_tokens: 10,
  cached_tokens: 0,
  max_tokens: 4,
  completion_tokens: 4,
  arrival_unix_ms: 1_700_000_000_000,
  arrival_ns: 1n,
  enqueued_ns: 2n,
  first_token_ns: firstNs,
  last_token_ns: null,
  end_ns: 5n,
});

describe("RequestLog", () => {
  it("keeps the newest entries in order, numbered from 1, and pages by sequence number", () => {
    const log = new RequestLog(3);
    for (const id of ["a", "b", "c", "d", "e"]) log.add(entry(id));
    assert.deepEqual(
      log.since().map((e) => [e.seq, e.id]),
      [
        [3, "c"],
        [4, "d"],
        [5, "e"],
      ],
    );
    assert.deepEqual(
      log.since(4).map((e) => e.id),
      ["e"],
    );
    assert.deepEqual(log.since(5), []);
  });

  it("rejects a capacity that is not a positive integer", () => {
    assert.throws(() => new RequestLog(0), RangeError);
    assert.throws(() => new RequestLog(1.5), RangeError);
  });

  it("writes nanosecond times as exact JSON integers, beyond a double's precision", () => {
    const big = 2n ** 60n + 1n;
    const line = formatLogEntry({ seq: 1, ...entry("x", big) });
    assert.match(line, /"first_token_ns":1152921504606846977[,}]/);
    assert.match(line, /"last_token_ns":null/);
    // Valid JSON with every field present.
    const parsed = JSON.parse(line);
    assert.equal(parsed.id, "x");
    assert.equal(parsed.end_ns, 5);
    assert.deepEqual(Object.keys(parsed).slice(-5), [
      "arrival_ns",
      "enqueued_ns",
      "first_token_ns",
      "last_token_ns",
      "end_ns",
    ]);
  });

  it("escapes client-supplied ids", () => {
    const line = formatLogEntry({ seq: 1, ...entry("x"), client_request_id: '"},"end_ns":0,"x":{"' });
    assert.equal(JSON.parse(line).client_request_id, '"},"end_ns":0,"x":{"');
    assert.equal(JSON.parse(line).end_ns, 5);
  });
});
