import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ApiError } from "./openai-errors.ts";
import { parseRequestBody } from "./openai-request.ts";

const opts = { servedModel: "m", defaultMaxTokens: 16 };

describe("parseRequestBody", () => {
  it("joins the user messages' text parts without a template, skipping other roles and non-text parts", () => {
    const r = parseRequestBody(
      "chat",
      {
        model: "m",
        messages: [
          { role: "system", content: "sys " },
          { role: "user", name: "text", content: "one " },
          { role: "assistant", content: null },
          {
            role: "user",
            content: [
              { type: "text", text: "two" },
              { type: "image_url", image_url: { url: "data:," } },
              { type: "text", text: " three" },
            ],
          },
        ],
      },
      opts,
    );
    assert.deepEqual(r.prompt, { text: "one two three" });
    assert.equal(r.stream, false);
    assert.equal(r.includeUsage, false);
    assert.equal(r.maxTokens, 16);
  });

  it("reads every completions prompt form AIPerf and other clients send", () => {
    const prompt = (p: unknown) => parseRequestBody("completions", { model: "m", prompt: p }, opts).prompt;
    assert.deepEqual(prompt("abc"), { text: "abc" });
    assert.deepEqual(prompt(["abc"]), { text: "abc" });
    assert.deepEqual(prompt([1, 2, 3]), { tokenIds: [1, 2, 3] });
    assert.deepEqual(prompt([[4, 5]]), { tokenIds: [4, 5] });
  });

  it("prefers max_completion_tokens over max_tokens and takes streaming options", () => {
    const r = parseRequestBody(
      "chat",
      {
        model: "m",
        messages: [{ role: "user", content: "x" }],
        max_completion_tokens: 5,
        max_tokens: 9,
        min_tokens: 5,
        ignore_eos: true,
        stream: true,
        stream_options: { include_usage: true },
        temperature: 0.7,
        n: 1,
      },
      opts,
    );
    assert.equal(r.maxTokens, 5);
    assert.equal(r.stream, true);
    assert.equal(r.includeUsage, true);
    const legacy = parseRequestBody(
      "completions",
      { model: "m", prompt: "x", max_tokens: 9, stream: null },
      opts,
    );
    assert.equal(legacy.maxTokens, 9);
    assert.equal(legacy.stream, false);
  });

  it("names the offending field", () => {
    const fails = (body: unknown, status: number, param: string | null) =>
      assert.throws(
        () => parseRequestBody("chat", body, opts),
        (e: unknown) => e instanceof ApiError && e.status === status && e.param === param,
      );
    fails(null, 400, null);
    fails({ model: "n", messages: [] }, 404, "model");
    fails({ model: "m", messages: [{ role: "user", content: 3 }] }, 400, "messages[0].content");
    fails(
      { model: "m", messages: [{ role: "user", content: [{ text: "x" }] }] },
      400,
      "messages[0].content[0]",
    );
    fails(
      { model: "m", messages: [{ role: "user", content: "x" }], stream_options: [] },
      400,
      "stream_options",
    );
  });
});
