import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createBlockHasher } from "../../kv/block-hash.ts";
import { fixedSteps, TEST_ENGINE } from "../../testing/mock-engine.ts";
import { type MockWorker, startMockWorker } from "../mock-worker.ts";
import { createDeepSeekTokenizer, type PromptTokenizer } from "../tokenizer.ts";
import { type Frontend, startFrontend } from "./frontend.ts";

const MODEL = "test/model";
const BLOCK = 16;
const ENGINE = TEST_ENGINE;
const STEPS = fixedSteps(1);
const KV = { bandwidthGBps: 100, bytesPerToken: 1000 };

const idsFor = (blocks: number, salt: number) =>
  Array.from({ length: blocks * BLOCK }, (_, i) => 3000 + salt * 7919 + i);

async function logOf(w: MockWorker): Promise<Record<string, unknown>[]> {
  const text = (await (await fetch(`${w.url}/servelab/requests`)).text()).trim();
  return text === "" ? [] : text.split("\n").map((l) => JSON.parse(l));
}

describe("disaggregated frontend (vLLM NIXL protocol against mock prefill and decode workers)", () => {
  let tokenizer: PromptTokenizer;
  let prefill: MockWorker;
  let decode: MockWorker;
  let fe: Frontend;
  before(async () => {
    tokenizer = createDeepSeekTokenizer();
    const common = {
      servedModel: MODEL,
      engine: ENGINE,
      dpSize: 2,
      stepModel: STEPS,
      tokenizer,
      kvTransfer: KV,
    };
    prefill = await startMockWorker({ ...common, disaggregationMode: "prefill" });
    decode = await startMockWorker({ ...common, disaggregationMode: "decode" });
    fe = await startFrontend({
      models: [MODEL],
      workers: [
        { id: "prefill-0", url: prefill.url, role: "prefill", dp_size: 2 },
        { id: "decode-0", url: decode.url, role: "decode", dp_size: 2 },
      ],
      policy: "kv",
      router: { blockSize: BLOCK, seed: 1, hasher: await createBlockHasher(), useKvEvents: false },
      tokenizer,
      healthIntervalMs: 50,
    });
  });
  after(async () => {
    await fe.close();
    await prefill.close();
    await decode.close();
    await tokenizer.close();
  });

  it("streams the decode worker's tokens after the prefill leg hands the KV over", async () => {
    const prompt = idsFor(6, 1);
    const res = await fetch(`${fe.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: MODEL,
        prompt,
        max_tokens: 4,
        stream: true,
        stream_options: { include_usage: true },
      }),
    });
    assert.equal(res.status, 200);
    const events = (await res.text())
      .split("\n\n")
      .filter((e) => e.startsWith("data: "))
      .map((e) => e.slice(6));
    assert.equal(events.at(-1), "[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    assert.equal(chunks.filter((c) => c.choices.length > 0).length, 4);
    assert.equal(chunks.at(-1).usage.prompt_tokens, prompt.length);

    const [p] = await logOf(prefill);
    const [d] = await logOf(decode);
    assert.ok(p && d, "both legs reached their worker");
    assert.equal(p.completion_tokens, 1, "the prefill leg generated one token");
    assert.equal(d.completion_tokens, 4);
    assert.ok(d.kv_transfer, "the decode leg received the prefill worker's kv_transfer_params");
  });

  it("keeps both legs' load views clean and counts the request once", async () => {
    const res = await fetch(`${fe.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: MODEL,
        messages: [{ role: "user", content: "disaggregate me ".repeat(30) }],
        max_tokens: 2,
      }),
    });
    assert.equal(res.status, 200);
    await res.text();
    for (const { router } of fe.pools.routers()) {
      for (const t of router.targets.ids()) assert.equal(router.load.activeRequests(t), 0);
    }
    const metrics = await (await fetch(`${fe.url}/metrics`)).text();
    assert.match(
      metrics,
      /dynamo_frontend_requests_total\{model="test\/model",endpoint="chat_completions",request_type="unary",status="success",error_type="none"\} 1/,
    );
    assert.match(metrics, /worker_type="prefill"/);
    assert.match(metrics, /worker_type="decode"/);
  });

  it("passes a worker's 4xx through unchanged", async () => {
    const res = await fetch(`${fe.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, prompt: idsFor(5000, 2), max_tokens: 2 }),
    });
    assert.equal(res.status, 400);
    assert.equal(JSON.parse(await res.text()).error.code, "context_length_exceeded");
  });
});
