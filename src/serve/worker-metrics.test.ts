import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { StepTimeModel } from "../engine/perf-model.ts";
import { flattenSeries, parsePrometheusText } from "../loadgen/server-metrics.ts";
import { startMockWorker } from "./mock-worker.ts";
import { MOCKER_DEFAULTS } from "./worker-config.ts";

const FAST: StepTimeModel = {
  name: "fast",
  stepMs: (ranks) => (ranks.some((r) => r.prefill.length > 0) ? 2 : 1),
};
const MODEL = "m";

const post = (url: string, body: unknown) =>
  fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  }).then((r) => r.json() as Promise<{ usage: { prompt_tokens_details: { cached_tokens: number } } }>);

describe("the worker's /metrics", () => {
  it("counts what it served in vLLM's names, with model_name and engine labels", async () => {
    const w = await startMockWorker({
      servedModel: MODEL,
      engine: { ...MOCKER_DEFAULTS.engine, blockSize: 16, kvCapacityBlocks: 4096 },
      stepModel: FAST,
      dpSize: 2,
    });
    try {
      const prompt = Array.from({ length: 100 }, (_, i) => 10 + i);
      const first = await post(w.url, { model: MODEL, prompt, max_tokens: 5 });
      const again = await post(w.url, { model: MODEL, prompt, max_tokens: 3 });
      const cached =
        first.usage.prompt_tokens_details.cached_tokens + again.usage.prompt_tokens_details.cached_tokens;
      const res = await fetch(`${w.url}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
      const m = flattenSeries(parsePrometheusText(await res.text()));
      const sum = (name: string) =>
        Object.entries(m)
          .filter(([k]) => k === name || k.startsWith(`${name}{`))
          .reduce((a, [, v]) => a + v, 0);
      assert.equal(sum("vllm:prompt_tokens_total"), 200);
      assert.equal(sum("vllm:prefix_cache_queries_total"), 200);
      assert.equal(sum("vllm:prefix_cache_hits_total"), cached);
      assert.equal(sum("vllm:generation_tokens_total"), 8);
      assert.equal(sum("vllm:time_to_first_token_seconds_count"), 2);
      // Inter-token gaps: 4 in the first request, 2 in the second.
      assert.equal(sum("vllm:inter_token_latency_seconds_count"), 6);
      assert.equal(sum("vllm:request_success_total"), 2);
      assert.ok(
        Object.keys(m).some(
          (k) => k.startsWith("vllm:request_success_total{") && k.includes('finished_reason="length"'),
        ),
      );
      // One series per DP rank, and the worker-wide queue.
      for (const e of ["0", "1", "queue"])
        assert.ok(`vllm:num_requests_waiting{model_name="${MODEL}",engine="${e}"}` in m, e);
      assert.equal(sum("vllm:num_requests_running"), 0);
      assert.equal(
        m[`vllm:cache_config_info{model_name="${MODEL}",block_size="16",num_gpu_blocks="4096"}`],
        1,
      );
    } finally {
      await w.close();
    }
  });
});
