import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Agent, type Dispatcher } from "undici";
import type { RequestRecord } from "../metrics/record.ts";
import { buildHeaders, buildRequestBody, ENDPOINT_PATHS, type EndpointKind } from "./openai-request.ts";
import {
  type Clock,
  createHrClock,
  createPool,
  type RequestSpec,
  type SendOptions,
  sendRequest,
} from "./stream-client.ts";

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void | Promise<void>;

const sse = (value: unknown): string => `data: ${JSON.stringify(value)}\n\n`;
const chatChunk = (content: string, extra: Record<string, unknown> = {}): string =>
  sse({ object: "chat.completion.chunk", choices: [{ index: 0, delta: { content, ...extra } }] });
const completionChunk = (text: string): string => sse({ object: "text_completion", choices: [{ text }] });

function startSse(res: ServerResponse): void {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  res.flushHeaders();
}

/** Resolves after `ms`, or early (false) when the client went away, so handlers stop writing. */
function wait(res: ServerResponse, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const onClose = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      res.off("close", onClose);
      resolve(!res.destroyed);
    }, ms);
    res.once("close", onClose);
  });
}

const FIRST_TOKEN_DELAY_MS = 80;
const TOKEN_GAP_MS = 25;
const TOKENS = ["Hello", " there", ", how", " are", " you?"];

/** The scenarios the tests ask for, by path. */
const HANDLERS: Record<string, Handler> = {
  "/v1/chat/completions": async (_req, res, body) => {
    const request = JSON.parse(body) as { stream: boolean; messages: { content: string }[] };
    if (!request.stream) {
      await wait(res, 30);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          object: "chat.completion",
          choices: [{ message: { role: "assistant", content: TOKENS.join("") }, finish_reason: "stop" }],
          usage: { prompt_tokens: 12, completion_tokens: 5, prompt_tokens_details: { cached_tokens: 8 } },
        }),
      );
      return;
    }
    startSse(res);
    res.write(chatChunk("", { role: "assistant" })); // role-only: not content
    if (!(await wait(res, FIRST_TOKEN_DELAY_MS))) return;
    for (const [i, token] of TOKENS.entries()) {
      if (i > 0 && !(await wait(res, TOKEN_GAP_MS))) return;
      res.write(chatChunk(token));
    }
    res.write(sse({ choices: [{ index: 0, delta: {}, finish_reason: "stop" }] }));
    res.write(sse({ choices: [], usage: { prompt_tokens: 12, completion_tokens: 5 } }));
    res.end("data: [DONE]\n\n");
  },
  "/v1/completions": async (_req, res) => {
    startSse(res);
    for (const token of ["a", "b", "c"]) {
      if (!(await wait(res, 5))) return;
      res.write(completionChunk(token));
    }
    res.end("data: [DONE]\n\n");
  },
  "/reasoning": async (_req, res) => {
    startSse(res);
    res.write(sse({ choices: [{ delta: { reasoning_content: "think think" } }] }));
    await wait(res, 5);
    res.write(chatChunk("answer"));
    res.write(
      sse({
        choices: [],
        usage: { prompt_tokens: 3, completion_tokens: 9, completion_tokens_details: { reasoning_tokens: 6 } },
      }),
    );
    res.end("data: [DONE]\n\n");
  },
  "/tiny-writes": async (_req, res) => {
    startSse(res);
    const text = [chatChunk("ünï"), ": comment\r\n\r\n", chatChunk("cødé 😀"), "data: [DONE]\r\n\r\n"].join(
      "",
    );
    const bytes = Buffer.from(text, "utf8");
    for (let i = 0; i < bytes.length; i += 3) {
      res.write(bytes.subarray(i, i + 3));
      if (i % 15 === 0 && !(await wait(res, 1))) return;
    }
    res.end();
  },
  "/http-500": (_req, res) => {
    res.writeHead(500, { "content-type": "application/json" });
    res.end('{"error":{"message":"engine crashed","code":500}}');
  },
  "/http-429-long": (_req, res) => {
    res.writeHead(429, { "content-type": "text/plain" });
    res.end("x".repeat(5000));
  },
  "/garbage-json": (_req, res) => {
    startSse(res);
    res.write(chatChunk("ok"));
    res.end('data: {"choices": [{"delta": \n\n');
  },
  "/bad-shape": (_req, res) => {
    startSse(res);
    res.end(sse({ choices: [{ delta: { content: 42 } }] }));
  },
  "/huge-event": (_req, res) => {
    startSse(res);
    res.write(`data: ${"z".repeat(10_000)}`);
    res.end(`${"z".repeat(10_000)}\n\n`);
  },
  "/stream-error": (_req, res) => {
    startSse(res);
    res.write(chatChunk("partial"));
    res.write(
      sse({ error: { object: "error", message: "KV cache exhausted", type: "InternalError", code: 503 } }),
    );
    res.end("data: [DONE]\n\n");
  },
  "/error-event": (_req, res) => {
    startSse(res);
    res.end("event: error\ndata: upstream went away\n\n");
  },
  "/reset-mid-stream": async (_req, res) => {
    startSse(res);
    res.write(chatChunk("one"));
    await wait(res, 20);
    res.socket?.destroy();
  },
  "/stall-body": (_req, res) => {
    startSse(res);
    res.write(chatChunk("one"));
  },
  "/stall-headers": () => {},
  "/slow-stream": async (_req, res) => {
    startSse(res);
    for (let i = 0; i < 100; i++) {
      res.write(chatChunk(`t${i}`));
      if (!(await wait(res, 10))) return;
    }
    res.end("data: [DONE]\n\n");
  },
  "/no-content": (_req, res) => {
    startSse(res);
    res.write(chatChunk("", { role: "assistant" }));
    res.write(sse({ choices: [{ delta: {}, finish_reason: "length" }] }));
    res.end("data: [DONE]\n\n");
  },
  "/empty-json": (_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ choices: [{ message: { content: "" } }] }));
  },
  "/html": (_req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end("<html>proxy login</html>");
  },
  "/unterminated": (_req, res) => {
    startSse(res);
    res.write(chatChunk("one"));
    res.end(`data: ${JSON.stringify({ choices: [{ delta: { content: "two" } }] })}\n`);
  },
  "/no-usage": (_req, res) => {
    startSse(res);
    res.write(chatChunk("a b c"));
    res.end("data: [DONE]\n\n");
  },
};

interface Received {
  path: string;
  headers: IncomingMessage["headers"];
  body: string;
}

let server: Server;
let origin: string;
let pool: Dispatcher;
const received: Received[] = [];
let connections = 0;

before(async () => {
  server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", () => {
      const body = Buffer.concat(parts).toString("utf8");
      const path = req.url ?? "";
      received.push({ path, headers: req.headers, body });
      const handler = HANDLERS[path];
      if (!handler) {
        res.writeHead(404).end();
        return;
      }
      void handler(req, res, body);
    });
  });
  server.on("connection", () => {
    connections++;
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  pool = createPool(origin, { connections: 16 });
});

after(async () => {
  await pool.destroy();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const words = (text: string): number => text.split(/\s+/).filter((w) => w !== "").length;

let nextId = 0;
function spec(
  path: string,
  overrides: Partial<RequestSpec> = {},
  endpoint: EndpointKind = "chat",
): RequestSpec {
  const id = nextId++;
  const streaming = overrides.streaming ?? true;
  const body = buildRequestBody({
    endpoint,
    model: "test-model",
    prompt: "Say hello",
    streaming,
    maxTokens: 16,
  });
  return {
    sessionNum: id,
    requestId: `req-${id}`,
    conversationId: `conv-${id}`,
    turnIndex: 0,
    origin,
    path,
    headers: buildHeaders({ streaming, requestId: `req-${id}`, correlationId: `conv-${id}` }),
    body: JSON.stringify(body),
    streaming,
    inputTokens: 2,
    ...overrides,
  };
}

function options(overrides: Partial<SendOptions> = {}): SendOptions {
  return { clock: createHrClock(), tokens: { source: "client", countTokens: words }, ...overrides };
}

const MS = 1e6;

function chunks(record: RequestRecord): number[] {
  return Array.from(record.chunkNs);
}

function assertIncreasing(record: RequestRecord): void {
  let prev = record.ackNs ?? record.startNs;
  assert.ok(prev >= record.startNs);
  for (const t of chunks(record)) {
    assert.ok(t > prev, `chunk times must increase: ${chunks(record)}`);
    prev = t;
  }
}

describe("sendRequest", () => {
  it("measures a streamed chat response: one stamp per content chunk, TTFT near the server's delay", async () => {
    const s = spec(ENDPOINT_PATHS.chat);
    const record = await sendRequest(pool, s, options());
    assert.equal(record.error, null);
    assert.equal(record.streaming, true);
    assert.equal(record.sessionNum, s.sessionNum);
    assert.equal(record.requestId, s.requestId);
    assert.equal(record.chunkNs.length, TOKENS.length);
    assertIncreasing(record);
    // Causal bounds only (a loaded machine can delay any stamp, never advance one): chunk i cannot arrive before
    // the server sent it, the first-token delay and i token gaps after the request started.
    const stamps = chunks(record);
    for (let i = 0; i < stamps.length; i++) {
      const sinceStartMs = (stamps[i]! - record.startNs) / MS;
      assert.ok(
        sinceStartMs >= FIRST_TOKEN_DELAY_MS + i * TOKEN_GAP_MS - 2,
        `chunk ${i} at ${sinceStartMs} ms`,
      );
    }
    assert.equal(record.outputTokens, words(TOKENS.join("")));
    assert.equal(record.inputTokens, 2);
    assert.equal(record.reasoningTokens, undefined);

    const sent = received.find((r) => r.headers["x-request-id"] === s.requestId);
    assert.ok(sent);
    assert.equal(sent.headers.accept, "text/event-stream");
    assert.equal(sent.headers["x-correlation-id"], s.conversationId);
    assert.deepEqual(JSON.parse(sent.body), JSON.parse(String(s.body)));
  });

  it("takes token counts from usage when asked", async () => {
    const record = await sendRequest(
      pool,
      spec(ENDPOINT_PATHS.chat),
      options({ tokens: { source: "server" } }),
    );
    assert.equal(record.error, null);
    assert.equal(record.outputTokens, 5);
    assert.equal(record.inputTokens, 12);
  });

  it("splits server counts into content and reasoning, and stamps reasoning-only chunks", async () => {
    const server = await sendRequest(pool, spec("/reasoning"), options({ tokens: { source: "server" } }));
    assert.equal(server.error, null);
    assert.equal(server.chunkNs.length, 2);
    assert.equal(server.outputTokens, 3);
    assert.equal(server.reasoningTokens, 6);
    const client = await sendRequest(pool, spec("/reasoning"), options());
    assert.equal(client.outputTokens, 1);
    assert.equal(client.reasoningTokens, 2);
  });

  it("reads a streamed completions response", async () => {
    const record = await sendRequest(
      pool,
      spec(ENDPOINT_PATHS.completions, {}, "completions"),
      options({ tokens: { source: "client", countTokens: (t) => t.length } }),
    );
    assert.equal(record.error, null);
    assert.equal(record.chunkNs.length, 3);
    assertIncreasing(record);
    assert.equal(record.outputTokens, 3);
    const sent = received.at(-1)!;
    assert.equal(JSON.parse(sent.body).prompt, "Say hello");
  });

  it("reads a non-streamed response as one chunk at the end of the body", async () => {
    const record = await sendRequest(pool, spec(ENDPOINT_PATHS.chat, { streaming: false }), options());
    assert.equal(record.error, null);
    assert.equal(record.streaming, false);
    assert.equal(record.chunkNs.length, 1);
    assert.ok(chunks(record)[0]! >= record.ackNs!);
    assert.ok((chunks(record)[0]! - record.startNs) / MS >= 28);
    assert.equal(record.outputTokens, 5);
    assert.equal(record.cachedTokens, 8);
    assert.equal(received.at(-1)!.headers.accept, "application/json");
  });

  it("reassembles SSE written a few bytes at a time, split inside characters and CRLFs", async () => {
    const record = await sendRequest(
      pool,
      spec("/tiny-writes"),
      options({ tokens: { source: "client", countTokens: (t) => [...t].length } }),
    );
    assert.equal(record.error, null);
    assert.equal(record.chunkNs.length, 2);
    assertIncreasing(record);
    assert.equal(record.outputTokens, [..."ünïcødé 😀"].length);
  });

  it("uses the injected clock for every stamp", async () => {
    let calls = 0;
    const clock: Clock = { nowNs: () => ++calls * 1000 };
    const record = await sendRequest(pool, spec("/v1/completions", {}, "completions"), options({ clock }));
    assert.equal(record.error, null);
    assert.equal(record.startNs, 1000);
    assert.equal(record.ackNs, 2000);
    assertIncreasing(record);
    assert.ok(chunks(record).every((t) => t % 1000 === 0 && t <= calls * 1000));
  });

  it("reuses keep-alive connections", async () => {
    const agent = new Agent({ keepAliveTimeout: 10_000 });
    try {
      const before = connections;
      for (let i = 0; i < 3; i++) {
        const record = await sendRequest(agent, spec("/v1/completions", {}, "completions"), options());
        assert.equal(record.error, null);
      }
      assert.equal(connections - before, 1);
    } finally {
      await agent.destroy();
    }
  });

  it("records an HTTP error with its status, reason and body", async () => {
    const record = await sendRequest(pool, spec("/http-500"), options());
    assert.deepEqual(record.error, {
      code: 500,
      type: "Internal Server Error",
      message: '{"error":{"message":"engine crashed","code":500}}',
    });
    assert.equal(record.chunkNs.length, 0);
    assert.ok(record.ackNs !== undefined && record.ackNs >= record.startNs);
  });

  it("keeps only the start of a long error body", async () => {
    const record = await sendRequest(pool, spec("/http-429-long"), options({ errorBodyBytes: 100 }));
    assert.equal(record.error?.code, 429);
    assert.equal(record.error?.type, "Too Many Requests");
    assert.equal(record.error?.message, `${"x".repeat(100)}…`);
  });

  it("records a 404 for an unknown path", async () => {
    const record = await sendRequest(pool, spec("/nope"), options());
    assert.equal(record.error?.code, 404);
    assert.equal(record.error?.type, "Not Found");
  });

  it("records garbage JSON in a data line as a parse error, keeping earlier chunks", async () => {
    const record = await sendRequest(pool, spec("/garbage-json"), options());
    assert.equal(record.error?.code, 200);
    assert.equal(record.error?.type, "ResponseParseError");
    assert.match(record.error?.message ?? "", /^invalid JSON/);
    assert.equal(record.chunkNs.length, 1);
    assert.equal(record.outputTokens, 0);
  });

  it("records a chunk of the wrong shape as a parse error", async () => {
    const record = await sendRequest(pool, spec("/bad-shape"), options());
    assert.equal(record.error?.type, "ResponseParseError");
    assert.match(record.error?.message ?? "", /"delta.content" is number 42/);
  });

  it("records an SSE event over the size limit as a parse error", async () => {
    const record = await sendRequest(pool, spec("/huge-event"), options({ maxEventSize: 4096 }));
    assert.equal(record.error?.type, "ResponseParseError");
    assert.match(record.error?.message ?? "", /exceeds 4096 characters/);
  });

  it("records an error object inside the stream with its own code and type", async () => {
    const record = await sendRequest(pool, spec("/stream-error"), options());
    assert.deepEqual(record.error, { code: 503, type: "InternalError", message: "KV cache exhausted" });
    assert.equal(record.chunkNs.length, 1);
  });

  it("records an `event: error` SSE event", async () => {
    const record = await sendRequest(pool, spec("/error-event"), options());
    assert.deepEqual(record.error, { code: 200, type: "ServerError", message: "upstream went away" });
  });

  it("records a connection destroyed mid-stream as a transport error", async () => {
    const record = await sendRequest(pool, spec("/reset-mid-stream"), options());
    assert.equal(record.error?.code, 0);
    assert.ok(record.error?.type, "the error names what failed");
    assert.equal(record.chunkNs.length, 1);
  });

  it("records a refused connection as a transport error", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const deadOrigin = `http://127.0.0.1:${port}`;
    const deadPool = createPool(deadOrigin);
    try {
      const record = await sendRequest(deadPool, spec("/v1/completions", { origin: deadOrigin }), options());
      assert.equal(record.error?.code, 0);
      assert.equal(record.error?.type, "ECONNREFUSED");
      assert.equal(record.ackNs, undefined);
    } finally {
      await deadPool.destroy();
    }
  });

  it("aborts a stream that stalls past the timeout with 408", async () => {
    const record = await sendRequest(pool, spec("/stall-body"), options({ timeoutMs: 150 }));
    assert.deepEqual(record.error, {
      code: 408,
      type: "RequestTimeoutError",
      message: "no complete response within 150 ms",
    });
    assert.equal(record.chunkNs.length, 1);
  });

  it("times out a server that never sends headers", async () => {
    const record = await sendRequest(pool, spec("/stall-headers"), options({ timeoutMs: 100 }));
    assert.equal(record.error?.code, 408);
    assert.equal(record.ackNs, undefined);
  });

  it("records a caller's abort mid-stream as a cancellation", async () => {
    const controller = new AbortController();
    const pending = sendRequest(pool, spec("/slow-stream", { signal: controller.signal }), options());
    await sleep(60);
    controller.abort();
    const record = await pending;
    assert.equal(record.cancelled, true);
    assert.deepEqual(record.error, {
      code: 499,
      type: "RequestCancellationError",
      message: "Request was cancelled",
    });
    assert.ok(record.chunkNs.length >= 1 && record.chunkNs.length < 100);
  });

  it("does not send a request whose signal is already aborted", async () => {
    const before = received.length;
    const record = await sendRequest(
      pool,
      spec("/v1/completions", { signal: AbortSignal.abort() }),
      options(),
    );
    assert.equal(record.cancelled, true);
    assert.equal(record.error?.code, 499);
    await sleep(20);
    assert.equal(received.length, before);
  });

  it("records a 200 stream without content as an invalid result", async () => {
    const record = await sendRequest(pool, spec("/no-content"), options());
    assert.deepEqual(record.error, {
      code: 200,
      type: "InvalidInferenceResultError",
      message: "Invalid inference result: no responses were received",
    });
  });

  it("records a 200 JSON response with empty content as an invalid result", async () => {
    const record = await sendRequest(pool, spec("/empty-json", { streaming: false }), options());
    assert.equal(record.error?.type, "InvalidInferenceResultError");
  });

  it("records a body that is not JSON as a parse error", async () => {
    const record = await sendRequest(pool, spec("/html", { streaming: false }), options());
    assert.equal(record.error?.type, "ResponseParseError");
    assert.match(record.error?.message ?? "", /<html>proxy login<\/html>/);
  });

  it("keeps a last event that the stream ended without a blank line", async () => {
    const record = await sendRequest(pool, spec("/unterminated"), options());
    assert.equal(record.error, null);
    assert.equal(record.chunkNs.length, 2);
    assert.equal(record.outputTokens, 1);
  });

  it("fails server counting without usage, unless a fallback counter is given", async () => {
    const missing = await sendRequest(pool, spec("/no-usage"), options({ tokens: { source: "server" } }));
    assert.equal(missing.error?.type, "MissingUsageError");
    const fallback = await sendRequest(
      pool,
      spec("/no-usage"),
      options({ tokens: { source: "server", fallback: words } }),
    );
    assert.equal(fallback.error, null);
    assert.equal(fallback.outputTokens, 3);
  });

  it("runs concurrent streams on one pool without mixing their records", async () => {
    const specs = Array.from({ length: 8 }, () => spec("/v1/completions", {}, "completions"));
    const records = await Promise.all(specs.map((s) => sendRequest(pool, s, options())));
    records.forEach((record, i) => {
      assert.equal(record.error, null);
      assert.equal(record.requestId, specs[i]!.requestId);
      assert.equal(record.chunkNs.length, 3);
    });
  });
});
