import { Counter, Gauge, Histogram, Registry } from "prom-client";

/** What the metrics read from the engine when scraped. */
export interface EngineView {
  ranks: number;
  load(rank: number): { waiting: number; running: number; kvUsage: number };
  /** Requests not yet placed on a rank (the worker-wide queue). */
  readonly queued: number;
  readonly preemptions: number;
}

// vLLM's bucket boundaries (vllm/v1/metrics/loggers.py), so that dashboards built for vLLM read these unchanged.
const TTFT_BUCKETS = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640,
  2560,
];
const ITL_BUCKETS = [
  0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80,
];
const LATENCY_BUCKETS = [
  0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680,
];
const TOKEN_BUCKETS = [
  1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000,
];

/** One finished request, as the metrics count it. Times in seconds. */
export interface FinishedRequest {
  rank: number | null;
  promptTokens: number;
  cachedTokens: number;
  generatedTokens: number;
  /** "length" (max_tokens reached), "abort" (client gone) or "error". */
  finishedReason: "length" | "abort" | "error";
  ttftS: number | null;
  e2eS: number;
  queueS: number;
}

/**
 * `/metrics` of the mock worker in vLLM's (V1) names and labels — `model_name` and `engine` (the DP rank) — so that
 * Prometheus, Grafana dashboards, Dynamo and GIE-style pickers can point at it as at a vLLM server: running and
 * waiting requests, KV usage (0–1), prefix-cache queries and hits in tokens, token counters, finished requests by
 * reason, preemptions, TTFT / ITL / end-to-end / queue-time histograms, and `vllm:cache_config_info`.
 */
export function createWorkerMetrics(
  model: string,
  engine: EngineView,
  cache: { blockSize: number; blocksPerRank: number },
) {
  const registry = new Registry();
  const labels = ["model_name", "engine"] as const;
  const rankLabel = (rank: number | null) => String(rank ?? 0);
  const gauge = (
    name: string,
    help: string,
    read: (r: number) => number,
    extra?: (set: (e: string, v: number) => void) => void,
  ) =>
    new Gauge({
      name,
      help,
      labelNames: labels,
      registers: [registry],
      collect() {
        for (let r = 0; r < engine.ranks; r++) this.set({ model_name: model, engine: String(r) }, read(r));
        extra?.((e, v) => this.set({ model_name: model, engine: e }, v));
      },
    });
  gauge("vllm:num_requests_running", "Requests in the running batch.", (r) => engine.load(r).running);
  // A request waits on its rank once placed; before that it waits in the worker-wide queue, shown as engine="queue".
  gauge(
    "vllm:num_requests_waiting",
    "Requests waiting to run.",
    (r) => engine.load(r).waiting,
    (set) => set("queue", engine.queued),
  );
  gauge("vllm:kv_cache_usage_perc", "KV-cache usage, 0 to 1.", (r) => engine.load(r).kvUsage);
  const counter = (name: string, help: string, extra: string[] = []) =>
    new Counter({ name, help, labelNames: [...labels, ...extra], registers: [registry] });
  const queries = counter("vllm:prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache.");
  const hits = counter("vllm:prefix_cache_hits_total", "Prompt tokens found in the prefix cache.");
  const promptTokens = counter("vllm:prompt_tokens_total", "Prompt tokens processed.");
  const generationTokens = counter("vllm:generation_tokens_total", "Tokens generated.");
  const success = counter("vllm:request_success_total", "Finished requests.", ["finished_reason"]);
  let preemptionsSeen = 0;
  new Counter({
    name: "vllm:num_preemptions_total",
    help: "Requests preempted.",
    labelNames: ["model_name"],
    registers: [registry],
    collect() {
      const now = engine.preemptions;
      if (now > preemptionsSeen) this.inc({ model_name: model }, now - preemptionsSeen);
      preemptionsSeen = now;
    },
  });
  const histogram = (name: string, help: string, buckets: number[]) =>
    new Histogram({ name, help, labelNames: labels, buckets, registers: [registry] });
  const ttft = histogram("vllm:time_to_first_token_seconds", "Time to first token.", TTFT_BUCKETS);
  const itl = histogram("vllm:inter_token_latency_seconds", "Time between tokens.", ITL_BUCKETS);
  const e2e = histogram("vllm:e2e_request_latency_seconds", "Arrival to last token.", LATENCY_BUCKETS);
  const queue = histogram(
    "vllm:request_queue_time_seconds",
    "Arrival to the engine's queue.",
    LATENCY_BUCKETS,
  );
  const promptHist = histogram("vllm:request_prompt_tokens", "Prompt tokens per request.", TOKEN_BUCKETS);
  const genHist = histogram("vllm:request_generation_tokens", "Generated tokens per request.", TOKEN_BUCKETS);
  new Gauge({
    name: "vllm:cache_config_info",
    help: "KV-cache configuration.",
    labelNames: ["model_name", "block_size", "num_gpu_blocks"],
    registers: [registry],
    collect() {
      this.set(
        {
          model_name: model,
          block_size: String(cache.blockSize),
          num_gpu_blocks: String(cache.blocksPerRank),
        },
        1,
      );
    },
  });
  return {
    registry,
    /** One token gap of a stream, seconds. */
    token(rank: number | null, gapS: number) {
      itl.observe({ model_name: model, engine: rankLabel(rank) }, gapS);
    },
    finished(f: FinishedRequest) {
      const l = { model_name: model, engine: rankLabel(f.rank) };
      if (f.finishedReason !== "error" && f.ttftS !== null) {
        queries.inc(l, f.promptTokens);
        hits.inc(l, f.cachedTokens);
        promptTokens.inc(l, f.promptTokens);
        ttft.observe(l, f.ttftS);
        promptHist.observe(l, f.promptTokens);
      }
      generationTokens.inc(l, f.generatedTokens);
      genHist.observe(l, f.generatedTokens);
      e2e.observe(l, f.e2eS);
      queue.observe(l, f.queueS);
      success.inc({ ...l, finished_reason: f.finishedReason });
    },
    text: () => registry.metrics(),
    contentType: registry.contentType,
  };
}

export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;
