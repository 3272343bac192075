import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createRng } from "../../random.ts";
import { SseEventCounter } from "./sse-count.ts";

const token = (i: number) =>
  `data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"t${i}"}}]}\n\n`;
const usage = 'data: {"id":"x","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}\n\n';

function countIn(text: string, cuts: number[]): SseEventCounter & { total: number } {
  const c = new SseEventCounter() as SseEventCounter & { total: number };
  const buf = Buffer.from(text);
  let total = 0;
  let at = 0;
  for (const cut of [...cuts, buf.length]) {
    total += c.feed(buf.subarray(at, cut));
    at = cut;
  }
  c.total = total;
  return c;
}

describe("SseEventCounter", () => {
  const stream = `${token(1)}${token(2)}${token(3)}${token(4)}${usage}data: [DONE]\n\n`;

  it("counts token chunks, not the usage chunk or the end marker, however the bytes are cut", () => {
    const rng = createRng(7, "sse-cuts");
    for (let trial = 0; trial < 200; trial++) {
      const cuts = Array.from({ length: rng.int(8) }, () => rng.int(stream.length)).sort((a, b) => a - b);
      const c = countIn(stream, cuts);
      assert.equal(c.total, 4, `cuts ${cuts.join(",")}`);
      assert.equal(c.done, true);
      assert.equal(c.sawError, false);
    }
  });

  it("sees an in-stream error event and a stream that ends without [DONE]", () => {
    const c = countIn(`${token(1)}event: error\ndata: {"error":{"message":"boom"}}\n\n`, [10]);
    assert.equal(c.sawError, true);
    assert.equal(c.done, false);
    const cut = countIn(`${token(1)}${token(2)}`, []);
    assert.equal(cut.total, 2);
    assert.equal(cut.done, false);
  });

  it("classifies a very long line from its start rather than holding it", () => {
    const long = `data: {"choices":[{"delta":{"content":"${"y".repeat(200_000)}"}}]}\n\n`;
    const c = countIn(`${long}data: [DONE]\n\n`, [70_000, 140_000]);
    assert.equal(c.total, 1);
    assert.equal(c.done, true);
  });
});
