import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import type { StepTimeModel } from "../engine/perf-model.ts";
import { createRng } from "../random.ts";
import { TEST_ENGINE } from "../testing/mock-engine.ts";
import { waitFor } from "../testing/wait.ts";
import { KV_RELEASE_PATH } from "./disagg/kv-handover.ts";
import { type DisaggContext, encodeBody, type JsonObject } from "./disagg/protocol.ts";
import { vllmNixlProtocol } from "./disagg/vllm-nixl.ts";
import { type MockWorker, type MockWorkerOptions, startMockWorker } from "./mock-worker.ts";
import type { PromptTokenizer } from "./tokenizer.ts";

// biome-ignore lint/suspicious/noExplicitAny: response bodies are free-form JSON read for assertions
type Json = Record<string, any>;

const MODEL = "test/disagg-model";
const ENGINE = TEST_ENGINE;
/** 100 prompt tokens at 1e5 bytes each over 1 GB/s: 10 ms modelled. */
const KV = { bandwidthGBps: 1, bytesPerToken: 100_000 };
const ISL = 100;

/** Prefill steps take 4 ms, decode steps 2 ms; counts the prompt tokens the engine computed. */
function countingModel() {
  const counter = { prefillTokens: 0 };
  const model: StepTimeModel = {
    name: "counting",
    stepMs: (ranks) => {
      let tokens = 0;
      for (const r of ranks) for (const c of r.prefill) tokens += c.tokens;
      counter.prefillTokens += tokens;
      return tokens > 0 ? 4 : 2;
    },
  };
  return { model, counter };
}

/** One token per character: chat prompts without loading a vocabulary. */
const charTokenizer: PromptTokenizer = {
  encode: async (text) => Uint32Array.from(text, (c) => c.codePointAt(0)!),
  preload() {},
  close: async () => {},
};

function start(o: Partial<MockWorkerOptions>): Promise<MockWorker> {
  return startMockWorker({
    servedModel: MODEL,
    engine: ENGINE,
    stepModel: countingModel().model,
    tokenizer: charTokenizer,
    kvTransfer: KV,
    ...o,
  });
}

const jsonOf = async (res: Response): Promise<Json> => JSON.parse(await res.text());

function post(
  url: string,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
) {
  return fetch(`${url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : encodeBody(body),
    ...(signal ? { signal } : {}),
  });
}

async function sseData(res: Response): Promise<string[]> {
  const text = await res.text();
  assert.ok(text.endsWith("\n\n"), "stream ended mid-event");
  return text
    .split("\n\n")
    .filter((e) => e !== "")
    .map((e) => {
      assert.ok(e.startsWith("data: "), `not an SSE data event: ${e}`);
      return e.slice(6);
    });
}

async function logOf(w: MockWorker): Promise<Json[]> {
  const res = await fetch(`${w.url}/servelab/requests`);
  return (await res.text())
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l));
}

const eventually = (check: () => Promise<boolean> | boolean, what: string, ms = 3000) =>
  waitFor(check, what, ms, 5);

const prompt = Array.from({ length: ISL }, (_, i) => 1000 + i);
const ctxFor = (w: MockWorker): DisaggContext => ({
  endpoint: "completions",
  prefill: { host: w.host },
  rng: createRng(7),
});

describe("prefill and decode mock workers through the vLLM NIXL adapter", () => {
  const vllm = vllmNixlProtocol();
  let prefill: MockWorker;
  let decode: MockWorker;
  const decodeModel = countingModel();

  before(async () => {
    prefill = await start({ disaggregationMode: "prefill" });
    decode = await start({ disaggregationMode: "decode", stepModel: decodeModel.model });
  });
  after(async () => {
    await Promise.all([prefill?.close(), decode?.close()]);
  });

  it("prefill leg, hand-over, streamed decode leg: no prompt recomputed, the transfer charged, blocks released", async () => {
    const body: JsonObject = {
      model: MODEL,
      prompt,
      max_tokens: 5,
      min_tokens: 2,
      stream: true,
      stream_options: { include_usage: true },
    };
    const ctx = ctxFor(prefill);
    const headers = { "x-request-id": "req-e2e-1" };
    const pre = await post(prefill.url, "/v1/completions", vllm.prefillRequest(body, ctx), headers);
    assert.equal(pre.status, 200);
    const answer = await jsonOf(pre);
    assert.equal(answer.choices[0].finish_reason, "length");
    assert.deepEqual([answer.usage.prompt_tokens, answer.usage.completion_tokens], [ISL, 1]);
    const params = answer.kv_transfer_params;
    assert.equal(params.do_remote_prefill, true);
    assert.equal(params.do_remote_decode, false);
    assert.equal(typeof params.remote_engine_id, "string");
    assert.equal(params.remote_request_id, answer.id);
    assert.equal(params.remote_block_ids.length, Math.ceil(ISL / ENGINE.blockSize));
    assert.deepEqual(
      [params.remote_host, params.remote_port, params.tp_size, params.remote_num_tokens],
      ["127.0.0.1", prefill.port, 1, ISL],
    );
    // Every field of the recorded vLLM answer is there, so a decode server reading vLLM's fields finds them.
    const recorded = JSON.parse(
      readFileSync(new URL("./disagg/fixtures/vllm-nixl-chat.json", import.meta.url), "utf8"),
    ).prefill_response;
    for (const key of Object.keys(recorded.kv_transfer_params)) assert.ok(key in params, `no ${key}`);
    for (const key of ["id", "object", "created", "model", "choices", "usage"])
      assert.ok(key in answer, `no ${key}`);
    // Held for the decode worker after the prefill finished.
    assert.equal(prefill.engine.ranks[0]!.pool.inUse, Math.ceil(ISL / ENGINE.blockSize));

    const decodeBody = vllm.handoff(answer, body, ctx);
    assert.ok(decodeBody);
    const computedBefore = decodeModel.counter.prefillTokens;
    const res = await post(decode.url, "/v1/completions", decodeBody, headers);
    assert.equal(res.status, 200);
    const events = await sseData(res);
    assert.equal(events.at(-1), "[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    assert.equal(
      chunks.filter((c) => c.choices.length === 1).length,
      5,
      "all five tokens come from the decode worker",
    );
    const u = chunks.at(-1).usage;
    assert.deepEqual(
      [u.prompt_tokens, u.completion_tokens, u.prompt_tokens_details.cached_tokens],
      [ISL, 5, ISL],
    );
    assert.equal(
      decodeModel.counter.prefillTokens,
      computedBefore,
      "the decode worker computed no prompt token",
    );

    const [d] = (await logOf(decode)).filter((e) => e.client_request_id === "req-e2e-1");
    assert.ok(d);
    assert.equal(d.outcome, "completed");
    assert.equal(d.cached_tokens, ISL);
    assert.deepEqual(d.kv_transfer, {
      role: "decode",
      remote_engine_id: params.remote_engine_id,
      remote_request_id: answer.id,
      tokens: ISL,
      bytes: ISL * KV.bytesPerToken,
      modelled_ms: 10,
    });
    // The server itself waited at least the modelled transfer before the first token (timers never fire early
    // by more than their millisecond rounding).
    assert.ok(
      d.first_token_ns - d.enqueued_ns >= 9e6,
      `first token ${(d.first_token_ns - d.enqueued_ns) / 1e6} ms after enqueue`,
    );

    const [p] = (await logOf(prefill)).filter((e) => e.client_request_id === "req-e2e-1");
    assert.ok(p);
    assert.deepEqual(p.kv_transfer, {
      role: "prefill",
      tokens: ISL,
      blocks: 7,
      held: true,
      lease_ms: 480_000,
    });
    assert.equal(p.completion_tokens, 1);
    // The decode worker's notice frees the blocks well before the lease.
    await eventually(
      () => prefill.engine.ranks[0]!.pool.inUse === 0,
      "the prefill worker to release the blocks",
    );
    const health = await jsonOf(await fetch(`${prefill.url}/health`));
    assert.equal(health.disaggregation_mode, "prefill");
    assert.deepEqual(health.kv_leases, { held: 0, released: 1, expired: 0 });
  });

  it("chat, unary, one output token: the decode worker answers as the KV lands", async () => {
    const body: JsonObject = {
      model: MODEL,
      messages: [{ role: "user", content: "x".repeat(40) }],
      max_completion_tokens: 1,
    };
    const ctx = { ...ctxFor(prefill), endpoint: "chat" as const };
    const answer = await jsonOf(
      await post(prefill.url, "/v1/chat/completions", vllm.prefillRequest(body, ctx)),
    );
    assert.equal(answer.object, "chat.completion");
    assert.equal(answer.kv_transfer_params.remote_num_tokens, 40);
    const res = await post(decode.url, "/v1/chat/completions", vllm.handoff(answer, body, ctx));
    assert.equal(res.status, 200);
    const out = await jsonOf(res);
    assert.equal(out.choices[0].finish_reason, "length");
    assert.deepEqual(
      [out.usage.prompt_tokens, out.usage.completion_tokens, out.usage.prompt_tokens_details.cached_tokens],
      [40, 1, 40],
    );
    assert.equal(decode.engine.ranks[0]!.reserved, 0, "the held place was given back");
  });

  it("KV for part of the prompt (full blocks only, as older vLLM sends): only the rest is prefilled", async () => {
    const before = decodeModel.counter.prefillTokens;
    const params = {
      do_remote_prefill: true,
      remote_engine_id: "older-vllm",
      remote_request_id: "part",
      remote_block_ids: [10, 11, 12, 13, 14, 15],
      remote_host: "127.0.0.1",
      remote_port: 9,
    };
    const res = await post(
      decode.url,
      "/v1/completions",
      { model: MODEL, prompt, max_tokens: 2, kv_transfer_params: params },
      { "x-request-id": "part" },
    );
    assert.equal(res.status, 200);
    const out = await jsonOf(res);
    assert.deepEqual([out.usage.prompt_tokens, out.usage.prompt_tokens_details.cached_tokens], [ISL, 96]);
    assert.equal(decodeModel.counter.prefillTokens - before, ISL - 96);
    const [entry] = (await logOf(decode)).filter((e) => e.client_request_id === "part");
    assert.ok(entry);
    assert.equal(entry.kv_transfer.modelled_ms, 9.6);
  });

  it("a decode worker given no kv_transfer_params prefills the prompt itself", async () => {
    const before = decodeModel.counter.prefillTokens;
    const res = await post(
      decode.url,
      "/v1/completions",
      { model: MODEL, prompt, max_tokens: 3 },
      { "x-request-id": "local" },
    );
    assert.equal(res.status, 200);
    const out = await jsonOf(res);
    assert.deepEqual(
      [out.usage.prompt_tokens, out.usage.completion_tokens, out.usage.prompt_tokens_details.cached_tokens],
      [ISL, 3, 0],
    );
    assert.equal(decodeModel.counter.prefillTokens - before, ISL);
    const [entry] = (await logOf(decode)).filter((e) => e.client_request_id === "local");
    assert.ok(entry);
    assert.equal(entry.kv_transfer, undefined);
  });

  it("refuses kv_transfer_params it cannot serve with a 400 naming the field", async () => {
    const good = {
      do_remote_prefill: true,
      do_remote_decode: false,
      remote_engine_id: "e",
      remote_request_id: "r",
      remote_block_ids: [1, 2, 3, 4, 5, 6, 7],
      remote_host: "127.0.0.1",
      remote_port: 1,
      tp_size: 1,
      remote_num_tokens: ISL,
    };
    const { remote_engine_id: _, ...noEngine } = good;
    const cases: [unknown, string, RegExp][] = [
      ["params", "kv_transfer_params", /must be an object/],
      [{ ...good, remote_port: "abc" }, "kv_transfer_params.remote_port", /port number/],
      [{ ...good, remote_block_ids: "1,2" }, "kv_transfer_params.remote_block_ids", /list of block ids/],
      [noEngine, "kv_transfer_params.remote_engine_id", /required/],
      [{ ...good, remote_num_tokens: 99 }, "kv_transfer_params.remote_num_tokens", /another prompt's/],
      [
        { ...good, remote_block_ids: [1, 2, 3, 4, 5, 6, 7, 8] },
        "kv_transfer_params.remote_block_ids",
        /fill 7 blocks/,
      ],
      [{ ...good, do_remote_decode: true }, "kv_transfer_params", /both/],
      [{ do_remote_decode: true }, "kv_transfer_params.do_remote_decode", /only decodes/],
    ];
    for (const [params, param, message] of cases) {
      const res = await post(decode.url, "/v1/completions", {
        model: MODEL,
        prompt,
        max_tokens: 2,
        kv_transfer_params: params,
      });
      assert.equal(res.status, 400, JSON.stringify(params));
      const { error } = await jsonOf(res);
      assert.equal(error.param, param, JSON.stringify(params));
      assert.match(error.message, message);
    }
    assert.equal(decode.engine.ranks[0]!.reserved, 0, "no place held for a refused request");
  });

  it("a prefill worker serves only unary one-token prefill legs", async () => {
    const leg = { model: MODEL, prompt, max_tokens: 1, kv_transfer_params: { do_remote_decode: true } };
    const cases: [JsonObject, string][] = [
      [{ model: MODEL, prompt, max_tokens: 1 }, "kv_transfer_params"],
      [{ ...leg, stream: true }, "stream"],
      [{ ...leg, max_tokens: 4 }, "max_tokens"],
    ];
    for (const [body, param] of cases) {
      const res = await post(prefill.url, "/v1/completions", body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal((await jsonOf(res)).error.param, param);
    }
  });

  it("the read notice: 404 for blocks not held, 400 for a malformed body", async () => {
    const unknown = await post(prefill.url, KV_RELEASE_PATH, {
      remote_engine_id: "x",
      remote_request_id: "y",
    });
    assert.equal(unknown.status, 404);
    assert.equal((await jsonOf(unknown)).error.code, "unknown_kv_lease");
    const bad = await post(prefill.url, KV_RELEASE_PATH, { remote_engine_id: 3 });
    assert.equal(bad.status, 400);
    assert.equal((await jsonOf(bad)).error.param, "remote_engine_id");
    const onDecode = await post(decode.url, KV_RELEASE_PATH, {
      remote_engine_id: "x",
      remote_request_id: "y",
    });
    assert.equal(onDecode.status, 404);
  });
});

describe("KV lease and cancellation", () => {
  it("a prefill worker lets go of unread blocks when the lease runs out", async () => {
    const w = await start({ disaggregationMode: "prefill", kvTransfer: { ...KV, leaseS: 0.05 } });
    try {
      const res = await post(
        w.url,
        "/v1/completions",
        vllmNixlProtocol().prefillRequest({ model: MODEL, prompt }, ctxFor(w)),
      );
      assert.equal(res.status, 200);
      await res.text();
      assert.ok(w.engine.ranks[0]!.pool.inUse > 0);
      await eventually(
        async () => (await jsonOf(await fetch(`${w.url}/health`))).kv_leases.expired === 1,
        "the lease to expire",
      );
      assert.equal(w.engine.ranks[0]!.pool.inUse, 0);
    } finally {
      await w.close();
    }
  });

  it("a client gone while the KV is in flight frees the decode worker's held place", async () => {
    // 100 tokens at 1e8 bytes over 1 GB/s: 10 s modelled, far longer than the test waits.
    const w = await start({
      disaggregationMode: "decode",
      kvTransfer: { bandwidthGBps: 1, bytesPerToken: 100_000_000 },
    });
    try {
      const ac = new AbortController();
      const params = {
        do_remote_prefill: true,
        remote_engine_id: "e",
        remote_request_id: "r",
        remote_block_ids: [1, 2, 3, 4, 5, 6, 7],
        remote_host: "127.0.0.1",
        remote_port: 9,
      };
      const res = await post(
        w.url,
        "/v1/completions",
        { model: MODEL, prompt, stream: true, kv_transfer_params: params },
        {},
        ac.signal,
      );
      assert.equal(res.status, 200);
      await eventually(() => w.engine.ranks[0]!.reserved === 1, "the place to be held");
      ac.abort();
      await eventually(() => w.engine.ranks[0]!.reserved === 0, "the place to be given back");
      await eventually(
        async () => (await logOf(w)).some((e) => e.outcome === "cancelled"),
        "the cancellation to be logged",
      );
      assert.equal(w.inFlight(), 0);
    } finally {
      await w.close();
    }
  });

  it("a prefill or decode worker needs the KV transfer settings", async () => {
    await assert.rejects(
      start({ disaggregationMode: "decode", kvTransfer: undefined }),
      /KV transfer settings/,
    );
    await assert.rejects(
      start({ disaggregationMode: "prefill", kvTransfer: { bandwidthGBps: 0, bytesPerToken: 1 } }),
      /bandwidth/,
    );
    await assert.rejects(start({ disaggregationMode: "split" as "decode" }), /disaggregation mode/);
  });
});
