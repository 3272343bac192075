import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { createBlockHasher } from "../../kv/block-hash.ts";
import { fixedSteps, TEST_ENGINE } from "../../testing/mock-engine.ts";
import { type MockWorker, startMockWorker } from "../mock-worker.ts";
import { TOKEN_TEXT } from "../openai-response.ts";
import { createDeepSeekTokenizer, type PromptTokenizer } from "../tokenizer.ts";
import { type FrontendOptions, startFrontend } from "./frontend.ts";

const MODEL = "test/model";

// biome-ignore lint/suspicious/noExplicitAny: test assertions read arbitrary fields
type Json = any;

function dataEvents(text: string): string[] {
  return text
    .split("\n\n")
    .filter((e) => e.startsWith("data: "))
    .map((e) => e.slice(6));
}

async function metric(url: string, re: RegExp): Promise<number> {
  const m = re.exec(await (await fetch(`${url}/metrics`)).text());
  return m ? Number(m[1]) : 0;
}

describe("request migration (--migration-limit)", () => {
  let tokenizer: PromptTokenizer;
  const started: { close(): Promise<void> }[] = [];
  before(() => {
    tokenizer = createDeepSeekTokenizer();
  });
  after(async () => {
    for (const s of started) await s.close().catch(() => {});
    await tokenizer.close();
  });

  /** Steps of 5 ms: a 60-token stream lasts long enough to kill its worker in the middle. */
  const worker = async () => {
    const w = await startMockWorker({
      servedModel: MODEL,
      engine: TEST_ENGINE,
      dpSize: 1,
      stepModel: fixedSteps(5),
      tokenizer,
    });
    started.push(w);
    return w;
  };
  const frontend = async (urls: string[], extra: Partial<FrontendOptions> = {}) => {
    const fe = await startFrontend({
      models: [MODEL],
      workers: urls.map((url, i) => ({ id: `w${i}`, url })),
      policy: "round-robin",
      router: { blockSize: 16, seed: 1, hasher: await createBlockHasher() },
      tokenizer,
      healthIntervalMs: 50,
      migrationLimit: 3,
      ...extra,
    });
    started.push(fe);
    return fe;
  };

  /** Streams a chat request, killing `victim` once `killAfter` data events have arrived. */
  async function streamKilling(url: string, victim: MockWorker | null, killAfter: number, maxTokens: number) {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: MODEL,
        messages: [{ role: "user", content: "migrate this request if its worker dies" }],
        max_tokens: maxTokens,
        stream: true,
        stream_options: { include_usage: true },
      }),
    });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    let killed = false;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      if (!killed && victim && dataEvents(text).length >= killAfter) {
        killed = true;
        await victim.close();
      }
    }
    return text;
  }

  it("moves a stream whose worker dies to another worker; the client gets every token once, in one stream", async () => {
    const a = await worker();
    const b = await worker();
    const fe = await frontend([a.url, b.url]);
    // Round-robin sends the first request to w0 (a).
    const text = await streamKilling(fe.url, a, 10, 60);
    const events = dataEvents(text);
    assert.equal(events.at(-1), "[DONE]");
    const chunks: Json[] = events.slice(0, -1).map((e) => JSON.parse(e));
    const content = chunks.filter((c) => c.choices.length > 0);
    assert.equal(content.length, 60, "exactly the requested tokens, none lost or repeated");
    assert.equal(content.map((c) => c.choices[0].delta.content).join(""), TOKEN_TEXT.repeat(60));
    assert.equal(new Set(chunks.map((c) => c.id)).size, 1, "one response id throughout");
    assert.ok(chunks.every((c) => c.object === "chat.completion.chunk"));
    assert.equal(content[0].choices[0].delta.role, "assistant");
    assert.ok(content.slice(1).every((c) => c.choices[0].delta.role === undefined));
    assert.ok(
      chunks.every(
        (c) => c.prompt_token_ids === undefined && c.choices.every((x: Json) => x.token_ids === undefined),
      ),
    );
    assert.equal(content.at(-1).choices[0].finish_reason, "length");
    const usage = chunks.at(-1).usage;
    assert.equal(usage.completion_tokens, 60);
    const migrated = await metric(
      fe.url,
      /dynamo_frontend_model_migration_total\{model="test\/model",migration_type="ongoing_request"\} (\d+)/,
    );
    assert.equal(migrated, 1);
    // The survivor finished the rest: its log holds a completions request for fewer tokens.
    const log = (await (await fetch(`${b.url}/servelab/requests`)).text())
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.equal(log.length, 1);
    assert.equal(log[0].endpoint, "completions");
    assert.ok(log[0].max_tokens < 60 && log[0].max_tokens > 0);
  });

  it("without migration the affected request fails with an in-stream error, and later ones go to the survivor", async () => {
    const a = await worker();
    const b = await worker();
    const fe = await frontend([a.url, b.url], { migrationLimit: 0 });
    const text = await streamKilling(fe.url, a, 5, 60);
    assert.match(text, /event: error/);
    assert.doesNotMatch(text, /\[DONE\]/);
    const res = await fetch(`${fe.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, prompt: "after the failure", max_tokens: 3 }),
    });
    assert.equal(res.status, 200);
    await res.text();
  });

  it("moves a request whose worker hangs once the stream timeout fires", async () => {
    const hung: Server = createServer((req, res) => {
      if (req.url === "/health") {
        res.end("{}");
        return;
      }
      // Accepts the request and never answers.
      req.resume();
    });
    await new Promise<void>((r) => hung.listen(0, "127.0.0.1", () => r()));
    started.push({
      close: () =>
        new Promise<void>((r) => {
          hung.closeAllConnections();
          hung.close(() => r());
        }),
    });
    const good = await worker();
    const fe = await frontend([`http://127.0.0.1:${(hung.address() as AddressInfo).port}`, good.url], {
      streamTimeoutMs: 300,
    });
    const text = await streamKilling(fe.url, null, 0, 8);
    const content = dataEvents(text)
      .slice(0, -1)
      .map((e) => JSON.parse(e))
      .filter((c: Json) => c.choices.length > 0);
    assert.equal(content.length, 8);
    assert.equal(
      await metric(
        fe.url,
        /dynamo_frontend_model_migration_total\{model="test\/model",migration_type="new_request"\} (\d+)/,
      ),
      1,
    );
  });

  it("never migrates a 4xx: the worker's answer is the client's", async () => {
    const a = await worker();
    const b = await worker();
    const fe = await frontend([a.url, b.url]);
    const res = await fetch(`${fe.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: MODEL,
        prompt: Array.from({ length: 70_000 }, (_, i) => i + 1),
        max_tokens: 2,
      }),
    });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as Json).error.code, "context_length_exceeded");
    assert.equal(await metric(fe.url, /dynamo_frontend_model_migration_total\{[^}]*\} (\d+)/), 0);
  });
});
