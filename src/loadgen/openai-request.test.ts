import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { assertServelabError } from "../testing/assert-errors.ts";
import {
  buildHeaders,
  buildRequestBody,
  ENDPOINT_PATHS,
  parseExtraInputs,
  parseResponseObject,
  parseResponseText,
} from "./openai-request.ts";

describe("buildRequestBody", () => {
  it("builds a streamed chat body that asks for usage", () => {
    const body = buildRequestBody({
      endpoint: "chat",
      model: "m",
      prompt: "hi",
      streaming: true,
      maxTokens: 8,
    });
    assert.deepEqual(body, {
      model: "m",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
      max_completion_tokens: 8,
      stream_options: { include_usage: true },
    });
  });

  it("builds a non-streamed chat body without stream_options or a token cap", () => {
    const body = buildRequestBody({ endpoint: "chat", model: "m", prompt: "hi", streaming: false });
    assert.deepEqual(body, { model: "m", messages: [{ role: "user", content: "hi" }], stream: false });
  });

  it("uses max_tokens for completions and for legacy chat", () => {
    assert.deepEqual(
      buildRequestBody({ endpoint: "completions", model: "m", prompt: "p", streaming: false, maxTokens: 3 }),
      { model: "m", prompt: "p", stream: false, max_tokens: 3 },
    );
    const legacy = buildRequestBody({
      endpoint: "chat",
      model: "m",
      prompt: "p",
      streaming: false,
      maxTokens: 3,
      legacyMaxTokens: true,
    });
    assert.equal(legacy.max_tokens, 3);
    assert.equal("max_completion_tokens" in legacy, false);
  });

  it("lets a streamed request go without usage", () => {
    const body = buildRequestBody({
      endpoint: "completions",
      model: "m",
      prompt: "p",
      streaming: true,
      includeUsage: false,
    });
    assert.equal("stream_options" in body, false);
  });

  it("merges extra inputs last, replacing generated keys whole", () => {
    const body = buildRequestBody({
      endpoint: "chat",
      model: "m",
      prompt: "p",
      streaming: true,
      maxTokens: 5,
      extraInputs: {
        ignore_eos: true,
        max_completion_tokens: 9,
        stream_options: { continuous_usage_stats: true },
      },
    });
    assert.equal(body.ignore_eos, true);
    assert.equal(body.max_completion_tokens, 9);
    assert.deepEqual(body.stream_options, { continuous_usage_stats: true });
  });

  it("rejects a token cap that is not a positive integer", () => {
    for (const maxTokens of [0, -1, 1.5, Number.NaN]) {
      assert.throws(
        () => buildRequestBody({ endpoint: "chat", model: "m", prompt: "p", streaming: false, maxTokens }),
        RangeError,
      );
    }
  });

  it("names the endpoint paths", () => {
    assert.equal(ENDPOINT_PATHS.chat, "/v1/chat/completions");
    assert.equal(ENDPOINT_PATHS.completions, "/v1/completions");
  });
});

describe("buildHeaders", () => {
  it("sends AIPerf's headers, with -H headers replacing generated ones case-insensitively", () => {
    const headers = buildHeaders({
      streaming: true,
      requestId: "r1",
      correlationId: "c1",
      apiKey: "k",
      extra: { "X-Request-ID": "mine", "X-Extra": "1" },
    });
    assert.deepEqual(headers, {
      "user-agent": "servelab",
      "content-type": "application/json",
      accept: "text/event-stream",
      "x-request-id": "mine",
      "x-correlation-id": "c1",
      authorization: "Bearer k",
      "x-extra": "1",
    });
    const plain = buildHeaders({ streaming: false, requestId: "r2" });
    assert.equal(plain.accept, "application/json");
    assert.equal("authorization" in plain, false);
  });
});

describe("parseExtraInputs", () => {
  it("coerces values as AIPerf does", () => {
    assert.deepEqual(
      parseExtraInputs([
        "ignore_eos:true",
        "flag: FALSE",
        "seed:none",
        "stop:null",
        "min_tokens:16",
        "temperature:0.7",
        "tiny:1e-3",
        "big:123456789012345678901",
        "name:a:b",
        'nvext:{"ignore_eos":true}',
        "list:[1,2]",
        "broken:{not json",
      ]),
      {
        ignore_eos: true,
        flag: false,
        seed: null,
        stop: null,
        min_tokens: 16,
        temperature: 0.7,
        tiny: 0.001,
        big: "123456789012345678901",
        name: "a:b",
        nvext: { ignore_eos: true },
        list: [1, 2],
        broken: "{not json",
      },
    );
  });

  it("takes JSON objects, later keys winning", () => {
    assert.deepEqual(parseExtraInputs(['{"a":1,"b":{"c":2}}', "a:3"]), { a: 3, b: { c: 2 } });
  });

  it("rejects malformed arguments as usage errors", () => {
    assertServelabError(() => parseExtraInputs(["novalue"]), "USAGE", "key:value");
    assertServelabError(() => parseExtraInputs([":v"]), "USAGE");
    assertServelabError(() => parseExtraInputs(["{bad"]), "USAGE", "not valid JSON");
  });
});

describe("parseResponseText", () => {
  it("reads a chat delta with content, reasoning and finish reason", () => {
    const r = parseResponseText(
      '{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi","reasoning_content":"hmm"},"finish_reason":"stop"}]}',
    );
    assert.deepEqual(r, { ok: true, value: { content: "Hi", reasoning: "hmm", finishReason: "stop" } });
  });

  it("reads `reasoning` when `reasoning_content` is absent, and counts duplicated reasoning once", () => {
    const only = parseResponseObject({ choices: [{ delta: { reasoning: "r" } }] });
    assert.deepEqual(only, { ok: true, value: { content: "", reasoning: "r" } });
    const both = parseResponseObject({ choices: [{ delta: { reasoning: "r", reasoning_content: "r" } }] });
    assert.deepEqual(both, { ok: true, value: { content: "", reasoning: "r" } });
  });

  it("reads a non-streamed chat message with usage", () => {
    const r = parseResponseObject({
      object: "chat.completion",
      choices: [{ message: { role: "assistant", content: "done" }, finish_reason: "length" }],
      usage: {
        prompt_tokens: 10,
        completion_tokens: 7,
        completion_tokens_details: { reasoning_tokens: 2 },
        prompt_tokens_details: { cached_tokens: 4 },
      },
    });
    assert.deepEqual(r, {
      ok: true,
      value: {
        content: "done",
        reasoning: "",
        finishReason: "length",
        usage: { promptTokens: 10, completionTokens: 7, reasoningTokens: 2, cachedTokens: 4 },
      },
    });
  });

  it("reads completions text and a usage-only chunk with empty choices", () => {
    assert.deepEqual(parseResponseObject({ object: "text_completion", choices: [{ text: "abc" }] }), {
      ok: true,
      value: { content: "abc", reasoning: "" },
    });
    assert.deepEqual(
      parseResponseObject({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 4 } }),
      {
        ok: true,
        value: { content: "", reasoning: "", usage: { promptTokens: 3, completionTokens: 4 } },
      },
    );
  });

  it("treats null fields as absent", () => {
    const r = parseResponseObject({
      choices: [{ delta: { content: null, role: "assistant" }, finish_reason: null }],
      usage: null,
    });
    assert.deepEqual(r, { ok: true, value: { content: "", reasoning: "" } });
  });

  it("reads error objects in the shapes servers send", () => {
    assert.deepEqual(
      parseResponseObject({
        error: { object: "error", message: "too long", type: "BadRequestError", param: null, code: 400 },
      }),
      {
        ok: true,
        value: {
          content: "",
          reasoning: "",
          error: { message: "too long", type: "BadRequestError", code: 400 },
        },
      },
    );
    assert.deepEqual(parseResponseObject({ object: "error", message: "m", type: "T", code: "503" }), {
      ok: true,
      value: { content: "", reasoning: "", error: { message: "m", type: "T", code: 503 } },
    });
    assert.deepEqual(parseResponseObject({ error: "plain" }), {
      ok: true,
      value: { content: "", reasoning: "", error: { message: "plain" } },
    });
    const noMessage = parseResponseObject({ error: { code: "overloaded" } });
    assert.equal(noMessage.ok && noMessage.value.error?.message, '{"code":"overloaded"}');
    assert.equal(noMessage.ok && noMessage.value.error?.code, undefined);
  });

  it("fails on invalid JSON with an excerpt of the text", () => {
    const r = parseResponseText('{"choices": [');
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.message : "", /^invalid JSON .*\{"choices": \[$/);
  });

  it("fails on fields of the wrong type instead of reading them as empty", () => {
    const bad: [unknown, RegExp][] = [
      [[1, 2], /expected a JSON object, got an array/],
      ["text", /expected a JSON object/],
      [{ choices: {} }, /"choices" is an object, not an array/],
      [{ choices: [3] }, /"choices\[0\]" is number 3/],
      [{ choices: [{ delta: "x" }] }, /"delta" is the string "x"/],
      [{ choices: [{ delta: { content: 5 } }] }, /"delta.content" is number 5/],
      [{ choices: [{ message: { reasoning_content: [] } }] }, /"message.reasoning_content" is an array/],
      [{ choices: [{ text: true }] }, /"text" is boolean true/],
      [{ choices: [{ text: "a", finish_reason: 1 }] }, /"finish_reason" is number 1/],
      [{ usage: 3 }, /"usage" is number 3/],
      [{ usage: { completion_tokens: -1 } }, /"usage.completion_tokens" is number -1/],
      [{ usage: { prompt_tokens: 1.5 } }, /"usage.prompt_tokens" is number 1.5/],
      [{ usage: { completion_tokens_details: [] } }, /"usage.completion_tokens_details" is an array/],
      [{ usage: { prompt_tokens_details: { cached_tokens: "4" } } }, /cached_tokens" is the string "4"/],
      [{ error: 42 }, /"error" is number 42/],
    ];
    for (const [value, pattern] of bad) {
      const r = parseResponseObject(value);
      assert.equal(r.ok, false, JSON.stringify(value));
      assert.match(!r.ok ? r.message : "", pattern);
    }
  });
});
