import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createBlockHasher } from "../../kv/block-hash.ts";
import type { Router, RouterPolicy } from "../../router/router.ts";
import { fixedSteps, TEST_ENGINE } from "../../testing/mock-engine.ts";
import { waitFor } from "../../testing/wait.ts";
import { type MockWorker, startMockWorker } from "../mock-worker.ts";
import { createDeepSeekTokenizer, type PromptTokenizer } from "../tokenizer.ts";
import { type Frontend, type FrontendOptions, startFrontend } from "./frontend.ts";

const MODEL = "test/model";
const BLOCK = 16;
const ENGINE = TEST_ENGINE;
const STEPS = fixedSteps(1);

let tokenizer: PromptTokenizer;
const workers: MockWorker[] = [];

async function worker(dpSize = 2): Promise<MockWorker> {
  const w = await startMockWorker({
    servedModel: MODEL,
    engine: ENGINE,
    dpSize,
    stepModel: STEPS,
    tokenizer,
  });
  workers.push(w);
  return w;
}

async function frontend(
  ws: MockWorker[],
  policy: RouterPolicy,
  { blocksPerRank, ...extra }: Partial<FrontendOptions> & { blocksPerRank?: number } = {},
) {
  return startFrontend({
    models: [MODEL],
    workers: ws.map((w, i) => ({
      id: `w${i}`,
      url: w.url,
      role: "aggregated",
      dp_size: 2,
      ...(blocksPerRank === undefined ? {} : { kv_blocks_per_rank: blocksPerRank }),
    })),
    policy,
    router: { blockSize: BLOCK, seed: 1, hasher: await createBlockHasher() },
    tokenizer,
    healthIntervalMs: 50,
    ...extra,
  });
}

/** The body as JSON, typed loosely for assertions. */
// biome-ignore lint/suspicious/noExplicitAny: test assertions read arbitrary fields
const jsonOf = async (res: Response): Promise<any> => JSON.parse(await res.text());

const post = (url: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

/** Token ids of a prompt long enough to fill `blocks` KV blocks, distinct per `salt`. */
const idsFor = (blocks: number, salt: number) =>
  Array.from({ length: blocks * BLOCK }, (_, i) => 1000 + salt * 7919 + i);

function dataEvents(text: string): string[] {
  return text
    .split("\n\n")
    .filter((e) => e.startsWith("data: "))
    .map((e) => e.slice(6));
}

const idle = (r: Router) => r.targets.ids().every((t) => r.load.activeRequests(t) === 0);

before(() => {
  tokenizer = createDeepSeekTokenizer();
});
after(async () => {
  await Promise.all(workers.map((w) => w.close()));
  await tokenizer.close();
});

describe("servelab frontend", () => {
  let fe: Frontend;
  let ws: MockWorker[];
  before(async () => {
    ws = [await worker(), await worker()];
    fe = await frontend(ws, "kv");
  });
  after(() => fe.close());

  it("relays a streamed completion chunk by chunk and frees the router's load at the end", async () => {
    const res = await post(fe.url, "/v1/completions", {
      model: MODEL,
      prompt: idsFor(4, 1),
      max_tokens: 5,
      stream: true,
      stream_options: { include_usage: true },
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /text\/event-stream/);
    const events = dataEvents(await res.text());
    assert.equal(events.at(-1), "[DONE]");
    const tokens = events.slice(0, -1).map((e) => JSON.parse(e));
    assert.equal(tokens.filter((t) => t.choices.length > 0).length, 5);
    assert.equal(tokens.at(-1).usage.completion_tokens, 5);
    await waitFor(() => idle(fe.router as Router), "the router to free the request");
  });

  it("serves chat unary, tokenizing the prompt as the worker does", async () => {
    const res = await post(fe.url, "/v1/chat/completions", {
      model: MODEL,
      messages: [{ role: "user", content: "hello frontend ".repeat(40) }],
      max_tokens: 3,
    });
    assert.equal(res.status, 200);
    const body = await jsonOf(res);
    assert.equal(body.usage.completion_tokens, 3);
    const log = await (await fetch(`${ws[0]!.url}/servelab/requests`)).text();
    const log1 = await (await fetch(`${ws[1]!.url}/servelab/requests`)).text();
    const entries = `${log}${log1}`
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const chat = entries.find((e) => e.endpoint === "chat");
    assert.ok(chat, "the chat request reached a worker");
  });

  it("pins a repeated prefix to the rank that cached it (approximate KV mode) and passes the rank to the worker", async () => {
    const approx = await frontend(ws, "kv", {
      router: { blockSize: BLOCK, seed: 1, hasher: await createBlockHasher(), useKvEvents: false },
    });
    try {
      const send = async (prompt: number[]) => {
        const res = await post(approx.url, "/v1/completions", { model: MODEL, prompt, max_tokens: 2 });
        assert.equal(res.status, 200);
        return (await jsonOf(res)).id as string;
      };
      const shared = idsFor(8, 2);
      const ids = [await send(shared)];
      for (let i = 0; i < 6; i++) ids.push(await send(idsFor(8, 100 + i)));
      ids.push(await send(shared));
      const placed = new Map<string, string>();
      for (const [i, w] of ws.entries()) {
        const text = (await (await fetch(`${w.url}/servelab/requests`)).text()).trim();
        for (const line of text.split("\n")) {
          const e = JSON.parse(line);
          placed.set(e.id, `w${i}/${e.dp_rank}`);
        }
      }
      const where = ids.map((id) => placed.get(id));
      assert.equal(where[0], where.at(-1), `the shared prefix went to ${where[0]}, then to ${where.at(-1)}`);
      // Distinct prompts spread over the four ranks, so the repeat landing with the first is not a single-rank fluke.
      assert.ok(new Set(where).size >= 3, where.join(" "));
    } finally {
      await approx.close();
    }
  });

  it("answers errors in OpenAI's envelope with Dynamo's status codes", async () => {
    const unknown = await post(fe.url, "/v1/completions", { model: "nope", prompt: "x", max_tokens: 1 });
    assert.equal(unknown.status, 404);
    assert.equal((await jsonOf(unknown)).error.code, "model_not_found");
    const bad = await post(fe.url, "/v1/completions", "{not json");
    assert.equal(bad.status, 400);
    assert.equal((await jsonOf(bad)).error.code, "invalid_json");
    const invalid = await post(fe.url, "/v1/completions", { model: MODEL, prompt: "x", max_tokens: -1 });
    assert.equal(invalid.status, 400);
    const route = await fetch(`${fe.url}/v1/nothing`);
    assert.equal(route.status, 404);
    const method = await fetch(`${fe.url}/v1/completions`);
    assert.equal(method.status, 405);
  });

  it("serves /v1/models, /live, /health and Dynamo's metrics", async () => {
    const models = await jsonOf(await fetch(`${fe.url}/v1/models`));
    assert.deepEqual(
      models.data.map((m: { id: string }) => m.id),
      [MODEL],
    );
    assert.equal((await jsonOf(await fetch(`${fe.url}/live`))).status, "live");
    const health = await jsonOf(await fetch(`${fe.url}/health`));
    assert.equal(health.status, "healthy");
    assert.equal(health.instances.length, 2);
    const text = await (await fetch(`${fe.url}/metrics`)).text();
    assert.match(
      text,
      /dynamo_frontend_requests_total\{model="test\/model",endpoint="completions",request_type="stream",status="success",error_type="none"\} [1-9]/,
    );
    assert.match(text, /dynamo_frontend_time_to_first_token_seconds_bucket\{le="0",model="test\/model"\} 0/);
    assert.match(text, /dynamo_frontend_requests_total\{[^}]*error_type="not_found"\} 1/);
    assert.match(text, /dynamo_frontend_model_workers\{model="test\/model"\} 2/);
    assert.match(
      text,
      /dynamo_frontend_worker_active_decode_blocks\{worker_id="w0",dp_rank="0",worker_type="aggregated"\}/,
    );
  });
});

describe("frontend worker health", () => {
  it("skips a worker that stops answering and takes it back when it is healthy again", async () => {
    const a = await worker();
    const b = await worker();
    const changes: string[] = [];
    const fe = await frontend([a, b], "round-robin", {
      onWorkerHealth: (id, healthy) => changes.push(`${id}:${healthy}`),
    });
    try {
      await b.close();
      // Requests keep succeeding: the first one to w1 fails over health, later ones go to w0 only.
      let ok = 0;
      for (let i = 0; i < 6; i++) {
        const res = await post(fe.url, "/v1/completions", {
          model: MODEL,
          prompt: idsFor(1, 10 + i),
          max_tokens: 1,
        });
        await res.text();
        if (res.status === 200) ok++;
        else assert.equal(res.status, 503);
      }
      assert.ok(ok >= 5, `${ok} of 6 requests succeeded`);
      assert.ok(changes.includes("w1:false"), changes.join(","));
      assert.equal((fe.router as Router).hasRoutableTargets(), true);
    } finally {
      await fe.close();
    }
  });

  it("answers 503 when no worker is healthy and the overload status when all are busy", async () => {
    const a = await worker();
    const fe = await frontend([a], "kv", {
      busy: { activeDecodeBlocks: 0.005 },
      overloadStatus: 529,
      blocksPerRank: ENGINE.kvCapacityBlocks,
    });
    try {
      const stream = (salt: number) =>
        post(fe.url, "/v1/completions", {
          model: MODEL,
          prompt: idsFor(64, salt),
          max_tokens: 5000,
          stream: true,
        });
      const first = await stream(40);
      const reader = first.body!.getReader();
      await reader.read();
      // 64 of 4,096 blocks held on the rank the first went to; the other rank is idle, so the worker is not busy.
      const second = await stream(41);
      assert.equal(second.status, 200);
      const reader2 = second.body!.getReader();
      await reader2.read();
      const res = await post(fe.url, "/v1/completions", {
        model: MODEL,
        prompt: idsFor(2, 42),
        max_tokens: 1,
      });
      assert.equal(res.status, 529);
      assert.equal((await jsonOf(res)).error.code, "service_overloaded");
      await reader.cancel();
      await reader2.cancel();
      await waitFor(() => idle(fe.router as Router), "the router to free both streams");
      const later = await post(fe.url, "/v1/completions", {
        model: MODEL,
        prompt: idsFor(2, 43),
        max_tokens: 1,
      });
      assert.equal(later.status, 200);
      await later.text();
      await a.close();
      await waitFor(() => !(fe.router as Router).hasRoutableTargets(), "the worker to be marked down");
      const down = await post(fe.url, "/v1/completions", {
        model: MODEL,
        prompt: idsFor(1, 42),
        max_tokens: 1,
      });
      assert.equal(down.status, 503);
      assert.equal((await jsonOf(down)).error.code, "service_unavailable");
    } finally {
      await fe.close();
    }
  });

  it("requires the API key on inference routes only, and sends CORS headers only when asked", async () => {
    const a = await worker();
    const fe = await frontend([a], "round-robin", { apiKey: "k3y", corsOrigin: "https://ui.example" });
    try {
      const denied = await post(fe.url, "/v1/completions", { model: MODEL, prompt: "x", max_tokens: 1 });
      assert.equal(denied.status, 401);
      assert.equal((await jsonOf(denied)).error.code, "invalid_api_key");
      const models = await fetch(`${fe.url}/v1/models`);
      assert.equal(models.status, 401);
      await models.text();
      const ok = await post(
        fe.url,
        "/v1/completions",
        { model: MODEL, prompt: idsFor(1, 50), max_tokens: 1 },
        { authorization: "Bearer k3y" },
      );
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.get("access-control-allow-origin"), "https://ui.example");
      await ok.text();
      assert.equal((await fetch(`${fe.url}/health`)).status, 200);
    } finally {
      await fe.close();
    }
  });

  it("cancels the upstream request when the client disconnects", async () => {
    const a = await worker();
    const fe = await frontend([a], "round-robin");
    try {
      const res = await post(fe.url, "/v1/completions", {
        model: MODEL,
        prompt: idsFor(1, 60),
        max_tokens: 5000,
        stream: true,
      }).catch(() => null);
      assert.ok(res);
      const reader = res.body!.getReader();
      await reader.read();
      await reader.cancel();
      await waitFor(() => a.inFlight() === 0, "the worker to drop the request");
      await waitFor(() => idle(fe.router as Router), "the router to free it");
      const text = await (await fetch(`${fe.url}/metrics`)).text();
      assert.match(text, /error_type="cancelled"\} 1/);
    } finally {
      await fe.close();
    }
  });
});
