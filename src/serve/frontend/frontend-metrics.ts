import { Counter, Gauge, Histogram, Registry } from "prom-client";

/**
 * Dynamo's `generate_log_buckets(min, max, count)`: 0, then `count − 1` log-spaced values from `min` to `max`,
 * each rounded to two significant figures, duplicates dropped (live-frontend §3.1).
 */
export function dynamoLogBuckets(min: number, max: number, count: number): number[] {
  if (!(min > 0 && max > min && Number.isInteger(count) && count >= 2)) {
    throw new RangeError(`log buckets need 0 < min < max and count ≥ 2, got ${min}, ${max}, ${count}`);
  }
  const out = [0];
  const steps = count - 2;
  for (let i = 0; i <= steps; i++) {
    const v = Number((min * (max / min) ** (steps === 0 ? 0 : i / steps)).toPrecision(2));
    if (v !== out[out.length - 1]) out.push(v);
  }
  return out;
}

export type ErrorType =
  | "none"
  | "validation"
  | "not_found"
  | "overload"
  | "unavailable"
  | "cancelled"
  | "response_timeout"
  | "internal"
  | "not_implemented";

/** Dynamo's endpoint label values. */
export type EndpointLabel = "chat_completions" | "completions";
export type WorkerType = "aggregated" | "prefill" | "decode";

/** What the frontend's load view says about one target, read at scrape time. */
export interface TargetLoad {
  workerId: string;
  dpRank: number | null;
  workerType: WorkerType;
  activeBlocks: number;
  prefillTokens: number;
}

export interface FrontendMetricsView {
  /** Workers able to serve, per model. */
  modelWorkers(): { model: string; workers: number }[];
  targets(): TargetLoad[];
}

/**
 * `/metrics` of the frontend under Dynamo's names, label sets and bucket rule (`dynamo_frontend_*`, the router's
 * `dynamo_component_router_*` and `dynamo_router_overhead_*`), so Dynamo's Grafana dashboards and AIPerf's server
 * metrics read it as they read Dynamo's frontend.
 */
export function createFrontendMetrics(
  view: FrontendMetricsView,
  opts: { prefix?: string; routerId?: string } = {},
) {
  const registry = new Registry();
  const p = opts.prefix ?? "dynamo_frontend";
  const routerId = opts.routerId ?? "0";
  const registers = [registry];
  const requests = new Counter({
    name: `${p}_requests_total`,
    help: "Requests answered, by outcome.",
    labelNames: ["model", "endpoint", "request_type", "status", "error_type"] as const,
    registers,
  });
  const started = new Counter({
    name: `${p}_requests_started_total`,
    help: "Requests accepted by a handler.",
    labelNames: ["model", "endpoint", "request_type"] as const,
    registers,
  });
  const active = new Gauge({
    name: `${p}_active_requests`,
    help: "Requests in flight.",
    labelNames: ["model"],
    registers,
  });
  const inflight = new Gauge({
    name: `${p}_inflight_requests`,
    help: "Requests in flight (deprecated alias of active_requests).",
    labelNames: ["model"],
    registers,
  });
  const queued = new Gauge({
    name: `${p}_queued_requests`,
    help: "Requests before their first token.",
    labelNames: ["model"],
    registers,
  });
  const disconnected = new Gauge({
    name: `${p}_disconnected_clients`,
    help: "Clients that went away before their response ended.",
    registers,
  });
  const histogram = (name: string, help: string, buckets: number[], labelNames = ["model"]) =>
    new Histogram({ name, help, labelNames, buckets, registers });
  const duration = histogram(
    `${p}_request_duration_seconds`,
    "Request duration.",
    dynamoLogBuckets(1, 512, 10),
  );
  const ttft = histogram(
    `${p}_time_to_first_token_seconds`,
    "Time to first token.",
    dynamoLogBuckets(0.001, 480, 18),
  );
  const itl = histogram(
    `${p}_inter_token_latency_seconds`,
    "Inter-token latency.",
    dynamoLogBuckets(0.001, 2, 13),
  );
  const isl = histogram(`${p}_input_sequence_tokens`, "Prompt tokens.", dynamoLogBuckets(50, 128000, 12));
  const osl = histogram(`${p}_output_sequence_tokens`, "Generated tokens.", dynamoLogBuckets(50, 32000, 10));
  const outputTokens = new Counter({
    name: `${p}_output_tokens_total`,
    help: "Generated tokens relayed.",
    labelNames: ["model"],
    registers,
  });
  const rejections = new Counter({
    name: `${p}_model_rejection_total`,
    help: "Requests refused because every worker was busy.",
    labelNames: ["model", "endpoint"],
    registers,
  });
  const migrations = new Counter({
    name: `${p}_model_migration_total`,
    help: "Requests re-issued to another worker after theirs failed.",
    labelNames: ["model", "migration_type"],
    registers,
  });
  const cancellations = new Counter({
    name: `${p}_model_cancellation_total`,
    help: "Requests cancelled by their client.",
    labelNames: ["model", "endpoint"],
    registers,
  });
  new Gauge({
    name: `${p}_model_workers`,
    help: "Healthy workers able to serve the model.",
    labelNames: ["model"],
    registers,
    collect() {
      this.reset();
      for (const m of view.modelWorkers()) this.set({ model: m.model }, m.workers);
    },
  });
  new Gauge({
    name: `${p}_model_ready`,
    help: "1 when some worker can serve the model.",
    labelNames: ["model"],
    registers,
    collect() {
      this.reset();
      for (const m of view.modelWorkers()) this.set({ model: m.model }, m.workers > 0 ? 1 : 0);
    },
  });
  const targetGauge = (name: string, help: string, read: (t: TargetLoad) => number) =>
    new Gauge({
      name: `${p}_${name}`,
      help,
      labelNames: ["worker_id", "dp_rank", "worker_type"],
      registers,
      collect() {
        this.reset();
        for (const t of view.targets()) {
          const labels = {
            worker_id: t.workerId,
            dp_rank: t.dpRank === null ? "none" : String(t.dpRank),
            worker_type: t.workerType,
          };
          this.set(labels, read(t));
        }
      },
    });
  targetGauge(
    "worker_active_decode_blocks",
    "KV blocks of the target's active requests (router view).",
    (t) => t.activeBlocks,
  );
  targetGauge(
    "worker_active_prefill_tokens",
    "Prompt tokens queued for prefill on the target (router view).",
    (t) => t.prefillTokens,
  );

  const routerRequests = new Counter({
    name: "dynamo_component_router_requests_total",
    help: "Requests routed by the KV router.",
    registers,
  });
  const kvHitRate = new Histogram({
    name: "dynamo_component_router_kv_hit_rate",
    help: "Fraction of the prompt's blocks cached on the chosen target.",
    buckets: [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1],
    registers,
  });
  const overhead = (stage: string) =>
    new Histogram({
      name: `dynamo_router_overhead_${stage}_ms`,
      help: `Router time spent in ${stage.replaceAll("_", " ")}, milliseconds.`,
      labelNames: ["router_id"],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100],
      registers,
    });
  const blockHashingMs = overhead("block_hashing");
  const tokenizerMs = new Histogram({
    name: `${p}_tokenizer_latency_ms`,
    help: "Time to tokenize a prompt (in the tokenizer thread, queueing included), milliseconds.",
    labelNames: ["operation"],
    buckets: [0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
    registers,
  });
  const schedulingMs = overhead("scheduling");
  const totalMs = overhead("total");

  return {
    registry,
    contentType: registry.contentType,
    text: () => registry.metrics(),
    started(model: string, endpoint: EndpointLabel, stream: boolean) {
      started.inc({ model, endpoint, request_type: stream ? "stream" : "unary" });
      active.inc({ model });
      inflight.inc({ model });
      queued.inc({ model });
    },
    firstToken(model: string, ttftS: number) {
      queued.dec({ model });
      ttft.observe({ model }, ttftS);
    },
    tokens(model: string, count: number, gapS: number | null) {
      outputTokens.inc({ model }, count);
      if (gapS !== null) itl.observe({ model }, gapS);
    },
    finished(
      model: string,
      endpoint: EndpointLabel,
      stream: boolean,
      r: {
        errorType: ErrorType;
        sawFirstToken: boolean;
        durationS: number;
        promptTokens: number;
        outputTokens: number;
      },
    ) {
      requests.inc({
        model,
        endpoint,
        request_type: stream ? "stream" : "unary",
        status: r.errorType === "none" ? "success" : "error",
        error_type: r.errorType,
      });
      active.dec({ model });
      inflight.dec({ model });
      if (!r.sawFirstToken) queued.dec({ model });
      duration.observe({ model }, r.durationS);
      isl.observe({ model }, r.promptTokens);
      if (r.errorType === "none") osl.observe({ model }, r.outputTokens);
      if (r.errorType === "cancelled") {
        cancellations.inc({ model, endpoint });
        disconnected.inc();
      }
      if (r.errorType === "overload") rejections.inc({ model, endpoint });
    },
    /** A request refused before it started (validation, unknown model, no worker). */
    refused(model: string, endpoint: EndpointLabel, stream: boolean, errorType: ErrorType) {
      requests.inc({
        model,
        endpoint,
        request_type: stream ? "stream" : "unary",
        status: "error",
        error_type: errorType,
      });
      if (errorType === "overload") rejections.inc({ model, endpoint });
    },
    tokenized(ms: number) {
      tokenizerMs.observe({ operation: "encode" }, ms);
    },
    migrated(model: string, type: "new_request" | "ongoing_request") {
      migrations.inc({ model, migration_type: type });
    },
    routed(kv: boolean, hitRate: number, hashingMs: number, schedMs: number) {
      if (kv) {
        routerRequests.inc();
        kvHitRate.observe(hitRate);
      }
      blockHashingMs.observe({ router_id: routerId }, hashingMs);
      schedulingMs.observe({ router_id: routerId }, schedMs);
      totalMs.observe({ router_id: routerId }, hashingMs + schedMs);
    },
  };
}

export type FrontendMetrics = ReturnType<typeof createFrontendMetrics>;
