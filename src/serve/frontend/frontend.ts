import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import { type Dispatcher, Pool } from "undici";
import type { BlockHasher } from "../../kv/block-hash.ts";
import { createRng } from "../../random.ts";
import type { CreateRouterOptions } from "../../router/create-router.ts";
import { DECODE_OVERRIDES } from "../../router/disagg-router.ts";
import type { RouteDecision, RouteRequest, Router, RouterPolicy } from "../../router/router.ts";
import { type DisaggContext, type DisaggProtocol, encodeBody, type JsonObject } from "../disagg/protocol.ts";
import { vllmNixlProtocol } from "../disagg/vllm-nixl.ts";
import { ClientGone, listenOn, parseJsonBody, readBody } from "../http-body.ts";
import { registerKvEventMetrics } from "../kv-events/metrics.ts";
import { type KvEventSink, KvEventSubscriber, routerEventSink } from "../kv-events/subscriber.ts";
import { ApiError, sendError } from "../openai-errors.ts";
import { type Endpoint, type ParsedRequest, parseRequestBody } from "../openai-request.ts";
import type { PromptTokenizer } from "../tokenizer.ts";
import { type WorkerSpec, type WorkerSpecInput, workerSpecSchema } from "./discovery.ts";
import {
  createFrontendMetrics,
  type EndpointLabel,
  type ErrorType,
  type FrontendMetrics,
} from "./frontend-metrics.ts";
import {
  continuationBody,
  firstBody,
  type MigrationState,
  newMigrationState,
  relayMigratingStream,
  WorkerFailure,
} from "./migration.ts";
import { RoutingPools } from "./routing-pools.ts";
import { SseEventCounter } from "./sse-count.ts";
import { HealthChecker } from "./worker-health.ts";

/** Dynamo's body limit (PR #2581: room for 500k-token prompts). */
export const DEFAULT_FRONTEND_BODY_LIMIT = 45 * 1024 * 1024;
/** Dynamo ≥ 1.3 answers "all workers busy" with 529 (`DYN_HTTP_OVERLOAD_STATUS_CODE`); 503 before. */
export const DEFAULT_OVERLOAD_STATUS = 529;

export interface BusyThresholds {
  /** A target is busy when its active KV blocks exceed this fraction of its blocks (Dynamo's 0–1 threshold). */
  activeDecodeBlocks?: number;
  /** A target is busy when its queued prefill tokens exceed this. */
  activePrefillTokens?: number;
}

export interface FrontendOptions {
  /** Served model names; every worker serves all of them (one model per frontend, as Dynamo's recipes run). */
  models: readonly string[];
  workers: readonly WorkerSpecInput[];
  policy: RouterPolicy;
  /** Router settings: block size, seed, the KV router's knobs; `hasher` is required (prompts are block-hashed). */
  router: CreateRouterOptions & { hasher: BlockHasher };
  tokenizer: PromptTokenizer;
  host?: string;
  port?: number;
  /** Bearer key required on every inference route (`/v1/*`); health and metrics stay open. */
  apiKey?: string;
  /** `Access-Control-Allow-Origin` value; no CORS headers without it. */
  corsOrigin?: string;
  maxBodyBytes?: number;
  overloadStatus?: number;
  busy?: BusyThresholds;
  healthIntervalMs?: number;
  healthTimeoutMs?: number;
  /** Longest gap between a worker's stream chunks before the request fails (Dynamo's backend stream timeout). */
  streamTimeoutMs?: number;
  /** Connections per worker (AIPerf-scale concurrency needs many; HTTP/1.1 carries one stream each). */
  connectionsPerWorker?: number;
  defaultMaxTokens?: number;
  onError?: (e: unknown) => void;
  onWorkerHealth?: (workerId: string, healthy: boolean, reason: string) => void;
  /** How prefill and decode workers hand a request over (default vLLM + NIXL, what the mock worker speaks). */
  disaggProtocol?: DisaggProtocol;
  /** Times a failed request moves to another worker (Dynamo's `--migration-limit`; default 0, off). */
  migrationLimit?: number;
  /** How long a worker that failed a request gets no new ones (Dynamo's `DYN_INHIBITED_DURATION_SECS`: 5 s). */
  inhibitMs?: number;
}

export interface Frontend {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** The aggregated router, or both legs' routers of a disaggregated frontend. */
  readonly pools: RoutingPools;
  /** The aggregated router (the decode leg's router when disaggregated). */
  readonly router: Router;
  readonly metrics: FrontendMetrics;
  readonly health: HealthChecker;
  /** The KV-event subscriber, when the router learns caches from events. */
  readonly kvEvents: KvEventSubscriber | undefined;
  /** Requests being served. */
  inFlight(): number;
  close(): Promise<void>;
}

interface WorkerEntry {
  spec: WorkerSpec;
  /** The host the frontend reaches the worker at (a prefill worker's address for the decode leg). */
  host: string;
  pool: Pool;
}

const ROUTES: Record<string, readonly ("GET" | "POST")[]> = {
  "/v1/chat/completions": ["POST"],
  "/v1/completions": ["POST"],
  "/v1/models": ["GET"],
  "/health": ["GET"],
  "/live": ["GET"],
  "/metrics": ["GET"],
};

const ENDPOINT_OF: Record<string, Endpoint> = {
  "/v1/chat/completions": "chat",
  "/v1/completions": "completions",
};
const LABEL_OF: Record<Endpoint, EndpointLabel> = { chat: "chat_completions", completions: "completions" };

/** Why a worker could not serve a request: its connection failed (`unreachable`) or it answered with an error. */
class UpstreamFailure extends Error {
  constructor(
    message: string,
    readonly unreachable: boolean,
    readonly timedOut = false,
  ) {
    super(message);
  }
}

function upstreamFailure(e: unknown, worker: string): UpstreamFailure {
  const err = e as NodeJS.ErrnoException & { code?: string };
  const code = err.code ?? "";
  const timedOut = code === "UND_ERR_BODY_TIMEOUT" || code === "UND_ERR_HEADERS_TIMEOUT";
  return new UpstreamFailure(`worker ${worker}: ${err.message}${code ? ` (${code})` : ""}`, true, timedOut);
}

/**
 * `servelab frontend`: an OpenAI-compatible HTTP server in front of engine workers (the mock, vLLM, SGLang,
 * TRT-LLM), routing every request with the router library the simulator uses. Each request is validated,
 * tokenized and block-hashed (the workers' tokenizer and block size), routed (`route`; the chosen DP rank goes to
 * the worker as vLLM's `X-data-parallel-rank` header), forwarded with undici, and its SSE stream relayed chunk by
 * chunk; the router hears of the first token (`markPrefillCompleted`) and of the end, failure or client
 * disconnect (`free`). Workers failing their health check or refusing connections are skipped until healthy.
 */
export async function startFrontend(opts: FrontendOptions): Promise<Frontend> {
  if (opts.models.length === 0) throw new RangeError("the frontend needs at least one model name");
  if (opts.workers.length === 0) throw new RangeError("the frontend needs at least one worker");
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_FRONTEND_BODY_LIMIT;
  const migrationLimit = opts.migrationLimit ?? 0;
  if (!(Number.isInteger(migrationLimit) && migrationLimit >= 0))
    throw new RangeError(`the migration limit must be a non-negative integer, got ${migrationLimit}`);
  const inhibitMs = opts.inhibitMs ?? 5000;
  const overloadStatus = opts.overloadStatus ?? DEFAULT_OVERLOAD_STATUS;
  const blockSize = opts.router.blockSize;
  const onError = opts.onError ?? ((e: unknown) => process.stderr.write(`servelab frontend: ${String(e)}\n`));
  const specs: WorkerSpec[] = opts.workers.map((w, i) => {
    const r = workerSpecSchema.safeParse(w);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      throw new RangeError(
        `worker ${i} (${JSON.stringify(w.id)}): ${issue.path.join(".") || "(root)"}: ${issue.message}`,
      );
    }
    return r.data;
  });
  const disaggregated = specs.some((w) => w.role !== "aggregated");
  if (disaggregated && !specs.some((w) => w.role === "decode")) {
    throw new RangeError("a disaggregated frontend needs at least one decode worker");
  }
  const protocol = opts.disaggProtocol ?? vllmNixlProtocol();
  const rng = createRng(opts.router.seed ?? 0, "disagg");
  const pools = new RoutingPools(opts.policy, opts.router, disaggregated);
  const workers = new Map<string, WorkerEntry>();
  const active = new Set<ServerResponse>();
  let nextId = 0;

  const health = new HealthChecker({
    intervalMs: opts.healthIntervalMs ?? 1000,
    timeoutMs: opts.healthTimeoutMs ?? 2000,
    onChange(id, healthy, reason) {
      if (!workers.has(id)) return;
      pools.setHealthy(id, healthy);
      opts.onWorkerHealth?.(id, healthy, reason);
    },
  });
  for (const spec of specs) {
    workers.set(spec.id, {
      spec,
      host: new URL(spec.url).hostname,
      pool: new Pool(spec.url, { connections: opts.connectionsPerWorker ?? 2500 }),
    });
    pools.addWorker(spec.id, spec.role, spec.dp_size);
    // Unknown until the first check answers: no request goes to a worker not known to be up.
    pools.setHealthy(spec.id, false);
    health.add({ id: spec.id, url: spec.url });
  }

  const metrics = createFrontendMetrics({
    modelWorkers: () => {
      const n = [...workers.values()].filter(
        (w) => w.spec.role !== "prefill" && health.healthy(w.spec.id),
      ).length;
      return opts.models.map((model) => ({ model, workers: n }));
    },
    targets: () =>
      pools.routers().flatMap(({ router, role }) =>
        router.targets.ids().map((t) => {
          const target = router.targets.get(t);
          return {
            workerId: target.workerId,
            dpRank: router.granularity === "rank" ? target.dpRank : null,
            workerType: role,
            activeBlocks: router.load.activeBlocks(t),
            prefillTokens: router.load.prefillTokens(t),
          };
        }),
      ),
  });

  // KV events feed the router that scores each worker (the prefill leg's, when disaggregated).
  const listens = opts.policy === "kv" && opts.router.useKvEvents !== false;
  const sinks = new Map<string, KvEventSink>();
  const subscriber = listens
    ? new KvEventSubscriber({
        hasher: opts.router.hasher,
        sink: (ev) => sinks.get(ev.workerId)?.(ev) ?? "worker_not_found",
        ...(opts.onError ? { onError: opts.onError } : {}),
      })
    : undefined;
  if (subscriber) {
    registerKvEventMetrics(metrics.registry, () => subscriber.counters);
    for (const spec of specs) {
      sinks.set(
        spec.id,
        routerEventSink(pools.routerOf(spec.id), () => performance.now()),
      );
      for (const src of spec.kv_events) {
        subscriber.addSource({
          workerId: spec.id,
          dpRank: src.dp_rank,
          endpoint: src.endpoint,
          replayEndpoint: src.replay_endpoint,
          topic: src.topic,
        });
      }
    }
  }

  const allBusy = (): boolean => {
    const b = opts.busy;
    if (!b || (b.activeDecodeBlocks === undefined && b.activePrefillTokens === undefined)) return false;
    for (const [id, w] of workers) {
      if (!health.healthy(id)) continue;
      const router = pools.routerOf(id);
      // A worker-level target stands for all of the worker's ranks.
      const blocksPerTarget =
        w.spec.kv_blocks_per_rank === undefined
          ? undefined
          : w.spec.kv_blocks_per_rank * (router.granularity === "rank" ? 1 : w.spec.dp_size);
      const busyTarget = (t: number) =>
        (b.activeDecodeBlocks !== undefined &&
          blocksPerTarget !== undefined &&
          router.load.activeBlocks(t) / blocksPerTarget > b.activeDecodeBlocks) ||
        (b.activePrefillTokens !== undefined && router.load.prefillTokens(t) > b.activePrefillTokens);
      if (!router.targets.idsOfWorker(id).every(busyTarget)) return false;
    }
    return true;
  };

  const corsHeaders = (): Record<string, string> =>
    opts.corsOrigin === undefined
      ? {}
      : {
          "access-control-allow-origin": opts.corsOrigin,
          "access-control-allow-headers": "authorization, content-type, x-request-id",
          "access-control-allow-methods": "GET, POST, OPTIONS",
        };

  const sendJson = (res: ServerResponse, status: number, value: unknown) => {
    const body = JSON.stringify(value);
    res.writeHead(status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
      ...corsHeaders(),
    });
    res.end(body);
  };

  const checkKey = (req: IncomingMessage) => {
    if (opts.apiKey === undefined) return;
    const h = req.headers.authorization;
    if (h !== `Bearer ${opts.apiKey}`) {
      throw new ApiError(401, "Incorrect or missing API key: send 'Authorization: Bearer <key>'", {
        code: "invalid_api_key",
      });
    }
  };

  const generate = async (endpoint: Endpoint, req: IncomingMessage, res: ServerResponse) => {
    const startedAt = performance.now();
    const raw = await readBody(req, maxBodyBytes);
    const body = parseJsonBody(raw);
    const asked = (body as { model?: unknown }).model;
    const model = typeof asked === "string" && opts.models.includes(asked) ? asked : opts.models[0]!;
    const label = LABEL_OF[endpoint];
    let parsed: ParsedRequest;
    try {
      parsed = parseRequestBody(endpoint, body, {
        servedModel: model,
        defaultMaxTokens: opts.defaultMaxTokens ?? 256,
      });
    } catch (e) {
      if (e instanceof ApiError)
        metrics.refused(model, label, false, e.status === 404 ? "not_found" : "validation");
      throw e;
    }
    const stream = parsed.stream;
    const tokenizeStart = performance.now();
    let ids: ArrayLike<number>;
    if ("tokenIds" in parsed.prompt) ids = parsed.prompt.tokenIds;
    else {
      try {
        ids = await opts.tokenizer.encode(parsed.prompt.text);
      } catch (e) {
        throw new ApiError(500, `could not tokenize the prompt: ${(e as Error).message}`);
      }
    }
    const hashStart = performance.now();
    if (!("tokenIds" in parsed.prompt)) metrics.tokenized(hashStart - tokenizeStart);
    const locals = opts.router.hasher.localHashes(ids, blockSize);
    const seqs = opts.router.hasher.sequenceHashes(locals);
    const hashingMs = performance.now() - hashStart;
    if (!pools.canRoute()) {
      metrics.refused(model, label, stream, "unavailable");
      throw new ApiError(503, `Service temporarily unavailable: no healthy worker serves ${model}`, {
        code: "service_unavailable",
      });
    }
    if (allBusy()) {
      metrics.refused(model, label, stream, "overload");
      throw new ApiError(
        overloadStatus,
        "Service temporarily unavailable: All workers are busy, please retry later",
        {
          code: "service_overloaded",
        },
      );
    }
    const requestId = `fe-${++nextId}`;
    const clientId =
      typeof req.headers["x-request-id"] === "string" ? req.headers["x-request-id"] : randomUUID();
    const schedStart = performance.now();
    const plan = pools.route({ requestId, isl: ids.length, seqs, locals }, schedStart);
    const blocks = locals.length >>> 1;
    const scored = plan.prefill ?? plan.decode;
    metrics.routed(
      opts.policy === "kv",
      blocks === 0 ? 0 : scored.overlapBlocks / blocks,
      hashingMs,
      performance.now() - schedStart,
    );
    metrics.started(model, label, stream);
    active.add(res);

    let sawFirst = false;
    let releaseExtra = () => {};
    let outputTokens = 0;
    let errorType: ErrorType = "none";
    let freed = false;
    const release = () => {
      if (freed) return;
      freed = true;
      pools.free(requestId, performance.now());
      releaseExtra();
      active.delete(res);
      metrics.finished(model, label, stream, {
        errorType,
        sawFirstToken: sawFirst,
        durationS: (performance.now() - startedAt) / 1000,
        promptTokens: ids.length,
        outputTokens,
      });
    };
    const abort = new AbortController();
    res.once("close", () => {
      if (!res.writableFinished) {
        errorType = "cancelled";
        abort.abort();
      }
      release();
    });
    const hooks: RelayHooks = {
      firstToken() {
        sawFirst = true;
        if (!plan.prefill) pools.prefillDone(requestId, performance.now());
        metrics.firstToken(model, (performance.now() - startedAt) / 1000);
      },
      tokens(n, gapS) {
        outputTokens += n;
        metrics.tokens(model, n, gapS);
      },
      corsHeaders,
      streamTimeoutMs: opts.streamTimeoutMs,
    };
    /** Router entries of this request beyond the first (its migrations' re-routings), freed with it. */
    const extraRoutes: { router: Router; id: string }[] = [];
    const reroute = (router: Router, overrides?: RouteRequest["overrides"]) => {
      const id = `${requestId}-m${extraRoutes.length + 1}`;
      const d = router.route(
        { requestId: id, isl: ids.length, seqs, locals, ...(overrides ? { overrides } : {}) },
        performance.now(),
      );
      extraRoutes.push({ router, id });
      return d;
    };
    releaseExtra = () => {
      for (const r of extraRoutes) r.router.free(r.id, performance.now());
    };

    /** The prefill leg, moved to another prefill worker when one fails (null: none is left). */
    const prefillWithRetries = async (first: RouteDecision, leg: () => JsonObject, ctx: DisaggContext) => {
      let target = first;
      for (let attempt = 0; ; attempt++) {
        try {
          return await unary(
            workers.get(target.workerId)!,
            target.dpRank,
            endpoint,
            leg(),
            clientId,
            abort.signal,
          );
        } catch (e) {
          if (
            !(e instanceof UpstreamFailure) ||
            !e.unreachable ||
            attempt >= migrationLimit ||
            abort.signal.aborted
          )
            throw e;
          health.inhibit(target.workerId, inhibitMs, e.message);
          metrics.migrated(model, "new_request");
          const prefillRouter = pools.disagg!.prefill;
          if (!prefillRouter.hasRoutableTargets()) return null;
          target = reroute(prefillRouter);
          ctx.prefill.host = workers.get(target.workerId)!.host;
        }
      }
    };

    /**
     * The decode (or aggregated) leg: relayed as it comes without migration; with it, through the migrating relay,
     * which moves the request to another worker when this one fails.
     */
    const serveDecode = async (first: RouteDecision, legBody: JsonObject, rawBody?: Buffer) => {
      if (migrationLimit === 0) {
        await relay(
          workers.get(first.workerId)!,
          first.dpRank,
          endpoint,
          rawBody ?? Buffer.from(encodeBody(legBody)),
          clientId,
          stream,
          abort.signal,
          res,
          hooks,
        );
        return;
      }
      const state = newMigrationState(endpoint, body as JsonObject, parsed.maxTokens, ids);
      let target = first;
      let attemptBody = firstBody({ ...state, original: legBody });
      let attemptPath = endpoint;
      for (;;) {
        const w = workers.get(target.workerId)!;
        try {
          await migratingAttempt(w, target.dpRank, attemptPath, attemptBody, state);
          return;
        } catch (e) {
          if (abort.signal.aborted) return;
          const f = asWorkerFailure(e, target.workerId);
          if (!f.migratable || state.migrations >= migrationLimit) throw toUpstream(f);
          health.inhibit(target.workerId, inhibitMs, f.message);
          const ongoing = res.headersSent;
          state.migrations++;
          metrics.migrated(model, ongoing ? "ongoing_request" : "new_request");
          if (state.generated.length >= state.maxTokens) {
            finishStream(res, stream);
            return;
          }
          const decodeRouter = pools.disagg?.decode ?? pools.aggregated!;
          if (!decodeRouter.hasRoutableTargets()) throw toUpstream(f);
          target = reroute(decodeRouter, pools.disagg ? DECODE_OVERRIDES : undefined);
          if (ongoing || state.generated.length > 0) {
            attemptBody = continuationBody(state);
            attemptPath = "completions";
          } else attemptBody = firstBody(state);
        }
      }
    };

    /** One attempt of a migratable request on worker `w`. */
    const migratingAttempt = async (
      w: WorkerEntry,
      dpRank: number | null,
      path: Endpoint,
      payload: JsonObject,
      state: MigrationState,
    ) => {
      let response: Dispatcher.ResponseData;
      try {
        response = await w.pool.request({
          path: pathOf(path),
          method: "POST",
          headers: upstreamHeaders(clientId, dpRank),
          body: encodeBody(payload),
          signal: abort.signal,
          ...(opts.streamTimeoutMs === undefined
            ? {}
            : { headersTimeout: opts.streamTimeoutMs, bodyTimeout: opts.streamTimeoutMs }),
        });
      } catch (e) {
        const code = (e as { code?: string }).code ?? "";
        throw new WorkerFailure(
          `worker ${w.spec.id}: ${(e as Error).message}`,
          w.spec.id,
          code === "UND_ERR_HEADERS_TIMEOUT" ? "timeout" : "unreachable",
        );
      }
      if (response.statusCode !== 200) {
        const text = await response.body.text().catch(() => "");
        if (response.statusCode < 500 && !res.headersSent) {
          res.writeHead(response.statusCode, { "content-type": "application/json", ...corsHeaders() });
          res.end(text);
          return;
        }
        throw new WorkerFailure(
          `worker ${w.spec.id} answered ${response.statusCode}: ${text.slice(0, 200)}`,
          w.spec.id,
          "http_error",
          response.statusCode,
        );
      }
      if (!stream) {
        let json: JsonObject;
        try {
          json = JSON.parse(await response.body.text()) as JsonObject;
        } catch (e) {
          throw new WorkerFailure(`worker ${w.spec.id}: ${(e as Error).message}`, w.spec.id, "stream_cut");
        }
        const text = JSON.stringify(stripTokenIds(json, (body as JsonObject).return_token_ids === true));
        hooks.firstToken();
        res.writeHead(200, {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(text),
          ...corsHeaders(),
        });
        res.end(text);
        return;
      }
      if (!res.headersSent) {
        res.writeHead(200, {
          "content-type": "text/event-stream; charset=utf-8",
          "cache-control": "no-cache",
          ...corsHeaders(),
        });
        res.flushHeaders();
      }
      let last: number | null = null;
      await relayMigratingStream(state, { workerId: w.spec.id, response }, res, {
        tokens(n) {
          const now = performance.now();
          if (!sawFirst) hooks.firstToken();
          hooks.tokens(n, last === null ? null : (now - last) / 1000);
          last = now;
        },
        aborted: () => abort.signal.aborted,
      });
      finishStream(res, stream);
    };

    let failed = plan.decode.workerId;
    try {
      if (!plan.prefill) {
        await serveDecode(plan.decode, body as JsonObject, raw);
        return;
      }
      const prefillWorker = workers.get(plan.prefill.workerId)!;
      const ctx: DisaggContext = { endpoint, prefill: { host: prefillWorker.host }, rng };
      const original = body as JsonObject;
      if (protocol.concurrent) {
        const legs = protocol.legs(original, ctx);
        failed = plan.prefill.workerId;
        const prefillLeg = unary(
          prefillWorker,
          plan.prefill.dpRank,
          endpoint,
          legs.prefill,
          clientId,
          abort.signal,
        ).then((answer) => {
          protocol.checkPrefillResponse(answer.json);
          pools.prefillDone(requestId, performance.now());
        });
        prefillLeg.catch(() => {});
        failed = plan.decode.workerId;
        await serveDecode(plan.decode, legs.decode);
        await prefillLeg.catch(() => {});
        return;
      }
      failed = plan.prefill.workerId;
      const sequential = protocol;
      const answer = await prefillWithRetries(
        plan.prefill,
        () => sequential.prefillRequest(original, ctx),
        ctx,
      );
      if (answer === null) {
        // No prefill worker is left: the decode worker prefills the prompt itself, as vLLM's does without params.
        await serveDecode(plan.decode, original);
        return;
      }
      if (answer.status !== 200) {
        // The prefill worker's own 4xx (validation, context length) is the client's answer.
        hooks.firstToken();
        res.writeHead(answer.status, { "content-type": "application/json", ...corsHeaders() });
        res.end(answer.text);
        return;
      }
      pools.prefillDone(requestId, performance.now());
      const decodeBody = protocol.handoff(answer.json, original, ctx);
      if (decodeBody === null) {
        hooks.firstToken();
        sendFinalPrefillAnswer(res, answer.text, stream, corsHeaders());
        return;
      }
      failed = plan.decode.workerId;
      await serveDecode(plan.decode, decodeBody);
    } catch (e) {
      if (abort.signal.aborted) return;
      if (e instanceof UpstreamFailure) {
        errorType = e.timedOut ? "response_timeout" : e.unreachable ? "unavailable" : "internal";
        if (e.unreachable) health.markDown(failed, e.message);
        failResponse(
          res,
          new ApiError(503, `Service temporarily unavailable: ${e.message}`, { code: "service_unavailable" }),
          corsHeaders(),
        );
        return;
      }
      errorType = e instanceof ApiError && e.status < 500 ? "validation" : "internal";
      throw e;
    } finally {
      if (res.writableFinished) release();
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? "/").split("?", 1)[0]!;
    if (req.method === "OPTIONS" && opts.corsOrigin !== undefined && ROUTES[path]) {
      res.writeHead(204, corsHeaders());
      res.end();
      return;
    }
    const methods = ROUTES[path];
    if (!methods) throw new ApiError(404, `Invalid URL (${req.method} ${path})`, { code: "unknown_url" });
    if (!methods.includes(req.method as "GET" | "POST")) {
      throw new ApiError(405, `${req.method} is not allowed on ${path}; use ${methods.join(", ")}`, {
        code: "method_not_allowed",
      });
    }
    if (path.startsWith("/v1/")) checkKey(req);
    const endpoint = ENDPOINT_OF[path];
    if (endpoint) return generate(endpoint, req, res);
    if (path === "/v1/models") {
      const up = [...workers.keys()].some((id) => health.healthy(id));
      sendJson(res, 200, {
        object: "list",
        data: up ? opts.models.map((id) => ({ id, object: "model", created: 0, owned_by: "servelab" })) : [],
      });
    } else if (path === "/live") {
      sendJson(
        res,
        closing ? 503 : 200,
        closing
          ? { status: "shutting_down", message: "Service is shutting down" }
          : { status: "live", message: "Service is live" },
      );
    } else if (path === "/health") {
      const instances = [...workers.values()].map((w) => ({
        instance_id: w.spec.id,
        url: w.spec.url,
        worker_type: w.spec.role,
        dp_size: w.spec.dp_size,
        healthy: health.healthy(w.spec.id),
      }));
      const healthyCount = instances.filter((i) => i.healthy).length;
      sendJson(res, closing ? 503 : 200, {
        status: closing ? "shutting_down" : healthyCount > 0 ? "healthy" : "unhealthy",
        message: closing
          ? "Service is shutting down"
          : `${healthyCount} of ${instances.length} workers healthy`,
        initial_discovery_complete: true,
        router_mode: opts.policy,
        instances,
      });
    } else {
      const text = await metrics.text();
      res.writeHead(200, { "content-type": metrics.contentType });
      res.end(text);
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (e instanceof ClientGone) return;
      if (e instanceof ApiError) {
        const close: Record<string, string> = e.status === 413 ? { connection: "close" } : {};
        failResponse(res, e, { ...corsHeaders(), ...close });
        return;
      }
      onError(e);
      failResponse(
        res,
        new ApiError(500, "Internal server error", { code: "internal_error" }),
        corsHeaders(),
      );
    });
  });
  server.keepAliveTimeout = 30_000;
  const where = await listenOn(server, opts.host ?? "127.0.0.1", opts.port ?? 0, onError);
  await health.checkAll();
  health.start();
  let closing: Promise<void> | undefined;

  return {
    ...where,
    pools,
    router: pools.aggregated ?? pools.disagg!.decode,
    metrics,
    health,
    kvEvents: subscriber,
    inFlight: () => active.size,
    close() {
      closing ??= (async () => {
        health.stop();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await closed;
        await subscriber?.close();
        await Promise.all([...workers.values()].map((w) => w.pool.destroy()));
      })();
      return closing;
    },
  };
}

function asWorkerFailure(e: unknown, workerId: string): WorkerFailure {
  if (e instanceof WorkerFailure) return e;
  if (e instanceof UpstreamFailure)
    return new WorkerFailure(e.message, workerId, e.timedOut ? "timeout" : "unreachable");
  return new WorkerFailure(`worker ${workerId}: ${(e as Error).message}`, workerId, "stream_cut");
}

function toUpstream(f: WorkerFailure): UpstreamFailure {
  return new UpstreamFailure(f.message, f.kind !== "http_error" || f.status === 503, f.kind === "timeout");
}

/** Ends a migrated stream as a single worker would have: the end marker after the last chunk. */
function finishStream(res: ServerResponse, stream: boolean): void {
  if (stream && !res.writableEnded) res.end("data: [DONE]\n\n");
}

/** A unary answer without the token ids the frontend asked for on the client's behalf. */
function stripTokenIds(json: JsonObject, keep: boolean): JsonObject {
  if (keep) return json;
  const { prompt_token_ids: _p, ...rest } = json;
  if (Array.isArray(rest.choices))
    rest.choices = (rest.choices as JsonObject[]).map(({ token_ids: _t, ...c }) => c);
  return rest;
}

/** An error as the whole response, or, once a stream has started, as an in-stream `event: error` before the end. */
function failResponse(res: ServerResponse, err: ApiError, headers: Record<string, string>): void {
  if (res.headersSent) {
    if (!res.writableEnded) res.end(`event: error\ndata: ${JSON.stringify(err.toJSON())}\n\n`);
    return;
  }
  sendError(res, err, headers);
}

interface RelayHooks {
  firstToken(): void;
  tokens(count: number, gapS: number | null): void;
  corsHeaders(): Record<string, string>;
  streamTimeoutMs: number | undefined;
}

/** Forwards the request to the chosen worker and relays its answer, stream or not, to the client. */
function upstreamHeaders(clientId: string, dpRank: number | null): Record<string, string> {
  const headers: Record<string, string> = { "content-type": "application/json", "x-request-id": clientId };
  if (dpRank !== null) headers["x-data-parallel-rank"] = String(dpRank);
  return headers;
}

const pathOf = (endpoint: Endpoint) => (endpoint === "chat" ? "/v1/chat/completions" : "/v1/completions");

/** A unary leg (the prefill worker's): its status, text and, for a 200, the parsed JSON. */
async function unary(
  w: WorkerEntry,
  dpRank: number | null,
  endpoint: Endpoint,
  body: JsonObject,
  clientId: string,
  signal: AbortSignal,
): Promise<{ status: number; text: string; json: unknown }> {
  let text: string;
  let status: number;
  try {
    const res = await w.pool.request({
      path: pathOf(endpoint),
      method: "POST",
      headers: upstreamHeaders(clientId, dpRank),
      body: encodeBody(body),
      signal,
    });
    status = res.statusCode;
    text = await res.body.text();
  } catch (e) {
    if (signal.aborted) throw e;
    throw upstreamFailure(e, w.spec.id);
  }
  if (status >= 500)
    throw new UpstreamFailure(
      `worker ${w.spec.id} answered ${status}: ${text.slice(0, 200)}`,
      status === 503,
    );
  if (status !== 200) return { status, text, json: undefined };
  try {
    return { status, text, json: JSON.parse(text) };
  } catch {
    throw new UpstreamFailure(`worker ${w.spec.id} answered the prefill leg with invalid JSON`, false);
  }
}

/** A prefill answer that is already final (its one token ended the request), in the form the client asked for. */
function sendFinalPrefillAnswer(
  res: ServerResponse,
  text: string,
  stream: boolean,
  headers: Record<string, string>,
): void {
  if (!stream) {
    res.writeHead(200, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(text),
      ...headers,
    });
    res.end(text);
    return;
  }
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    ...headers,
  });
  res.end(`data: ${text.replace(/\n/g, "")}\n\ndata: [DONE]\n\n`);
}

async function relay(
  w: WorkerEntry,
  dpRank: number | null,
  endpoint: Endpoint,
  raw: Buffer,
  clientId: string,
  stream: boolean,
  signal: AbortSignal,
  res: ServerResponse,
  hooks: RelayHooks,
): Promise<void> {
  const headers = upstreamHeaders(clientId, dpRank);
  let upstream: Awaited<ReturnType<Pool["request"]>>;
  try {
    upstream = await w.pool.request({
      path: pathOf(endpoint),
      method: "POST",
      headers,
      body: raw,
      signal,
      ...(hooks.streamTimeoutMs === undefined
        ? {}
        : { headersTimeout: hooks.streamTimeoutMs, bodyTimeout: hooks.streamTimeoutMs }),
    });
  } catch (e) {
    if (signal.aborted) throw e;
    throw upstreamFailure(e, w.spec.id);
  }
  const status = upstream.statusCode;
  const type = String(upstream.headers["content-type"] ?? "application/json");
  if (status !== 200) {
    const text = await upstream.body.text().catch(() => "");
    if (status >= 500) {
      throw new UpstreamFailure(
        `worker ${w.spec.id} answered ${status}: ${text.slice(0, 200)}`,
        status === 503,
      );
    }
    // The worker's own 4xx (validation, context length) is the client's answer, verbatim.
    res.writeHead(status, { "content-type": type, ...hooks.corsHeaders() });
    res.end(text);
    return;
  }
  if (!stream) {
    let bytes: Buffer;
    try {
      bytes = Buffer.from(await upstream.body.arrayBuffer());
    } catch (e) {
      if (signal.aborted) throw e;
      throw upstreamFailure(e, w.spec.id);
    }
    hooks.firstToken();
    res.writeHead(200, { "content-type": type, "content-length": bytes.length, ...hooks.corsHeaders() });
    res.end(bytes);
    return;
  }
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    ...hooks.corsHeaders(),
  });
  res.flushHeaders();
  const counter = new SseEventCounter();
  let last: number | null = null;
  try {
    for await (const chunk of upstream.body) {
      const n = counter.feed(chunk as Buffer);
      if (n > 0) {
        const now = performance.now();
        if (last === null) hooks.firstToken();
        hooks.tokens(n, last === null ? null : (now - last) / 1000);
        last = now;
      }
      if (!res.write(chunk))
        await new Promise<void>((resolve) => {
          const go = () => {
            res.off("close", go);
            res.off("drain", go);
            resolve();
          };
          res.once("drain", go);
          res.once("close", go);
        });
      if (signal.aborted) return;
    }
  } catch (e) {
    if (signal.aborted) return;
    throw upstreamFailure(e, w.spec.id);
  }
  if (!counter.done && !counter.sawError) {
    throw new UpstreamFailure(`worker ${w.spec.id} ended its stream without [DONE]`, true);
  }
  res.end();
}
