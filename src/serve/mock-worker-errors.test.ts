import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import type { StepTimeModel } from "../engine/perf-model.ts";
import { type MockWorker, startMockWorker } from "./mock-worker.ts";
import type { PromptTokenizer } from "./tokenizer.ts";

/** The body as JSON, typed loosely for assertions (Response.json() is typed unknown). */
const jsonOf = async (res: Response) => JSON.parse(await res.text());

const MODEL = "test/mock-model";
const LIMIT = 4096;

const fastModel: StepTimeModel = { name: "fast", stepMs: () => 1 };

/** One token per character: keeps these tests off the real tokenizer and makes prompt lengths obvious. */
const charTokenizer: PromptTokenizer = {
  encode: async (text) => Uint32Array.from(text, (c) => c.codePointAt(0)!),
  preload: () => {},
  close: async () => {},
};

interface Case {
  name: string;
  path?: string;
  method?: string;
  body: unknown;
  status: number;
  param?: string | null;
  code?: string | null;
  message?: RegExp;
}

const chat = (extra: Record<string, unknown>) => ({
  model: MODEL,
  messages: [{ role: "user", content: "hi" }],
  ...extra,
});
const cmpl = (extra: Record<string, unknown>) => ({ model: MODEL, prompt: "hi", ...extra });

const CASES: Case[] = [
  { name: "malformed JSON", body: "{not json", status: 400, code: "invalid_json", message: /not valid JSON/ },
  { name: "empty body", body: "", status: 400, code: "invalid_json" },
  { name: "a JSON array body", body: "[1]", status: 400, message: /must be a JSON object, got array/ },
  {
    name: "missing model",
    body: { messages: [] },
    status: 400,
    param: "model",
    code: "missing_required_parameter",
  },
  { name: "model not a string", body: chat({ model: 7 }), status: 400, param: "model", code: "invalid_type" },
  {
    name: "unknown model",
    body: chat({ model: "gpt-x" }),
    status: 404,
    param: "model",
    code: "model_not_found",
  },
  {
    name: "missing messages",
    body: { model: MODEL },
    status: 400,
    param: "messages",
    code: "missing_required_parameter",
  },
  {
    name: "messages not a list",
    body: chat({ messages: "hi" }),
    status: 400,
    param: "messages",
    code: "invalid_type",
  },
  { name: "no messages", body: chat({ messages: [] }), status: 400, param: "messages" },
  {
    name: "message not an object",
    body: chat({ messages: ["hi"] }),
    status: 400,
    param: "messages[0]",
    code: "invalid_type",
  },
  {
    name: "unknown role",
    body: chat({ messages: [{ role: "robot", content: "x" }] }),
    status: 400,
    param: "messages[0].role",
  },
  {
    name: "user message without content",
    body: chat({ messages: [{ role: "user" }] }),
    status: 400,
    param: "messages[0].content",
  },
  {
    name: "content part without text",
    body: chat({ messages: [{ role: "user", content: [{ type: "text", text: 3 }] }] }),
    status: 400,
    param: "messages[0].content[0].text",
  },
  {
    name: "user messages with no text",
    body: chat({ messages: [{ role: "user", content: "" }] }),
    status: 400,
    param: "messages",
    message: /no text/,
  },
  {
    name: "stream not a boolean",
    body: chat({ stream: "yes" }),
    status: 400,
    param: "stream",
    code: "invalid_type",
  },
  {
    name: "stream_options without stream",
    body: chat({ stream_options: { include_usage: true } }),
    status: 400,
    param: "stream_options",
  },
  {
    name: "include_usage not a boolean",
    body: chat({ stream: true, stream_options: { include_usage: 1 } }),
    status: 400,
    param: "stream_options.include_usage",
  },
  {
    name: "zero max_completion_tokens",
    body: chat({ max_completion_tokens: 0 }),
    status: 400,
    param: "max_completion_tokens",
  },
  {
    name: "fractional max_tokens",
    body: chat({ max_tokens: 2.5 }),
    status: 400,
    param: "max_tokens",
    code: "invalid_type",
  },
  {
    name: "string max_tokens",
    path: "/v1/completions",
    body: cmpl({ max_tokens: "9" }),
    status: 400,
    param: "max_tokens",
  },
  {
    name: "min_tokens over the limit",
    body: chat({ max_tokens: 2, min_tokens: 3 }),
    status: 400,
    param: "min_tokens",
  },
  { name: "ignore_eos not a boolean", body: chat({ ignore_eos: "no" }), status: 400, param: "ignore_eos" },
  { name: "several choices", body: chat({ n: 2 }), status: 400, param: "n", code: "unsupported_value" },
  {
    name: "prompt missing",
    path: "/v1/completions",
    body: { model: MODEL },
    status: 400,
    param: "prompt",
    code: "missing_required_parameter",
  },
  {
    name: "prompt a number",
    path: "/v1/completions",
    body: cmpl({ prompt: 5 }),
    status: 400,
    param: "prompt",
  },
  {
    name: "empty prompt list",
    path: "/v1/completions",
    body: cmpl({ prompt: [] }),
    status: 400,
    param: "prompt",
  },
  { name: "empty prompt", path: "/v1/completions", body: cmpl({ prompt: "" }), status: 400, param: "prompt" },
  {
    name: "several prompts",
    path: "/v1/completions",
    body: cmpl({ prompt: ["a", "b"] }),
    status: 400,
    param: "prompt",
    code: "unsupported_value",
  },
  {
    name: "negative token id",
    path: "/v1/completions",
    body: cmpl({ prompt: [1, -2] }),
    status: 400,
    param: "prompt",
  },
  {
    name: "context longer than the KV cache",
    path: "/v1/completions",
    body: cmpl({ prompt: "x".repeat(200), max_tokens: 100 }),
    status: 400,
    param: "prompt",
    code: "context_length_exceeded",
    message: /maximum context length is 288 tokens/,
  },
  {
    name: "body over the size limit",
    body: chat({ messages: [{ role: "user", content: "x".repeat(LIMIT) }] }),
    status: 413,
    code: "request_too_large",
  },
  { name: "unknown path", path: "/v1/embeddings", body: {}, status: 404, code: "unknown_url" },
  {
    name: "wrong method",
    path: "/v1/models",
    method: "POST",
    body: {},
    status: 405,
    code: "method_not_allowed",
  },
  {
    name: "GET on a POST route",
    path: "/v1/chat/completions",
    method: "GET",
    body: undefined,
    status: 405,
    code: "method_not_allowed",
  },
  {
    name: "bad log cursor",
    path: "/servelab/requests?after=-1",
    method: "GET",
    body: undefined,
    status: 400,
    param: "after",
  },
];

function assertOpenAiError(status: number, body: unknown, c: Case): void {
  assert.equal(status, c.status, `${c.name}: ${JSON.stringify(body)}`);
  assert.ok(typeof body === "object" && body !== null && "error" in body, `${c.name}: no error object`);
  const err = (body as { error: Record<string, unknown> }).error;
  assert.deepEqual(Object.keys(err).sort(), ["code", "message", "param", "type"], c.name);
  assert.equal(typeof err.message, "string");
  assert.ok((err.message as string).length > 0);
  assert.equal(err.type, "invalid_request_error", c.name);
  if (c.param !== undefined) assert.equal(err.param, c.param, c.name);
  if (c.code !== undefined) assert.equal(err.code, c.code, c.name);
  if (c.message) assert.match(err.message as string, c.message, c.name);
}

describe("mock worker: bad requests", () => {
  let w: MockWorker;
  before(async () => {
    w = await startMockWorker({
      servedModel: MODEL,
      // 20 blocks of 16 tokens, 18 usable under the 10% watermark: a 288-token context.
      engine: {
        maxBatchSize: 4,
        maxNumTokens: 256,
        chunkedPrefill: true,
        blockSize: 16,
        prefixCaching: true,
        kvCapacityBlocks: 20,
        watermark: 0.1,
      },
      stepModel: fastModel,
      maxBodyBytes: LIMIT,
      tokenizer: charTokenizer,
    });
  });
  after(() => w.close());

  for (const c of CASES) {
    it(`answers ${c.name} with ${c.status}`, async () => {
      const method = c.method ?? "POST";
      const res = await fetch(`${w.url}${c.path ?? "/v1/chat/completions"}`, {
        method,
        headers: { "content-type": "application/json" },
        ...(c.body === undefined
          ? {}
          : { body: typeof c.body === "string" ? c.body : JSON.stringify(c.body) }),
      });
      assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
      assertOpenAiError(res.status, await jsonOf(res), c);
      if (c.status === 405) assert.ok(res.headers.get("allow"), "405 without an Allow header");
    });
  }

  it("refuses an oversized body sent without a content length", async () => {
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${w.url}/v1/chat/completions`, { method: "POST" }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          text += d;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on("error", reject);
      // Chunked transfer: the server only learns the size by counting.
      for (let i = 0; i < 8; i++) req.write("x".repeat(LIMIT / 4));
      req.end();
    });
    assertOpenAiError(status, JSON.parse(body), {
      name: "chunked oversize",
      body: null,
      status: 413,
      code: "request_too_large",
    });
  });

  it("keeps serving after every refusal, with nothing left in the engine", async () => {
    assert.equal(w.inFlight(), 0);
    assert.equal(w.engine.hasWork(), false);
    const res = await fetch(`${w.url}/v1/completions`, {
      method: "POST",
      body: JSON.stringify({ model: MODEL, prompt: "hello", max_tokens: 2 }),
    });
    assert.equal(res.status, 200);
    assert.equal((await jsonOf(res)).usage.prompt_tokens, 5);
  });

  it("answers a server-side failure with a 500 error body and carries on", async () => {
    const errors: unknown[] = [];
    const broken = await startMockWorker({
      servedModel: MODEL,
      engine: {
        maxBatchSize: 4,
        maxNumTokens: 256,
        chunkedPrefill: true,
        blockSize: 16,
        prefixCaching: true,
        kvCapacityBlocks: 100,
        watermark: 0,
      },
      stepModel: fastModel,
      tokenizer: { ...charTokenizer, encode: async () => Promise.reject(new Error("vocabulary missing")) },
      onError: (e) => errors.push(e),
    });
    try {
      const res = await fetch(`${broken.url}/v1/completions`, {
        method: "POST",
        body: JSON.stringify({ model: MODEL, prompt: "hello" }),
      });
      assert.equal(res.status, 500);
      const body = await jsonOf(res);
      assert.equal(body.error.type, "server_error");
      assert.match(body.error.message, /vocabulary missing/);
      const ok = await fetch(`${broken.url}/v1/completions`, {
        method: "POST",
        body: JSON.stringify({ model: MODEL, prompt: [1, 2, 3], max_tokens: 1 }),
      });
      assert.equal(ok.status, 200);
    } finally {
      await broken.close();
    }
  });
});
