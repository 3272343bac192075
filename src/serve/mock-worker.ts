import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { BlockIds } from "../engine/block-ids.ts";
import {
  type EngineRequest,
  type EngineSettings,
  EngineWorker,
  type StepSink,
} from "../engine/engine-worker.ts";
import type { StepTimeModel } from "../engine/perf-model.ts";
import { createBlockHasher } from "../kv/block-hash.ts";
import {
  DEFAULT_KV_LEASE_S,
  DISAGGREGATION_MODES,
  type DisaggregationMode,
  KV_RELEASE_PATH,
  type KvTransferLog,
  type KvTransferSettings,
  kvTransferMs,
  parseKvTransferParams,
  parseReleaseBody,
  prefillAnswerParams,
  type RemotePrefill,
  receivedTokens,
  validateKvTransferSettings,
} from "./disagg/kv-handover.ts";
import { KvLeases, notifyKvRead } from "./disagg/kv-lease.ts";
import { ClientGone, listenOn, parseJsonBody, readBody } from "./http-body.ts";
import {
  type KvEventSourceInfo,
  startWorkerKvEvents,
  type WorkerKvEventsOptions,
} from "./kv-events/worker-events.ts";
import { ApiError, invalidParam, sendError } from "./openai-errors.ts";
import { type Endpoint, type ParsedRequest, parseRequestBody } from "./openai-request.ts";
import {
  completionBody,
  DONE_EVENT,
  type ResponseHead,
  responseIdPrefix,
  TOKEN_TEXT,
  type TokenIds,
  tokenChunk,
  usage,
  usageChunk,
} from "./openai-response.ts";
import { formatLogEntry, RequestLog, type RequestLogEntry, type RequestOutcome } from "./request-log.ts";
import { WallClockDriver } from "./step-driver.ts";
import { createDeepSeekTokenizer, type PromptTokenizer } from "./tokenizer.ts";
import { createWorkerMetrics } from "./worker-metrics.ts";

/*
 * `servelab worker`: the mock engine behind a real OpenAI-compatible endpoint, so a benchmark client (AIPerf,
 * servelab's own load generator, the openai SDK) can be pointed at a server whose timing is the modelled engine's.
 *
 * - `POST /v1/chat/completions`, `POST /v1/completions`: streaming (SSE `data: {...}` chunks, one per generated
 *   token, ending with `data: [DONE]`) or not. The prompt is counted with the DeepSeek-V3 tokenizer as AIPerf
 *   counts it (chat: the user messages' text joined, no chat template); completions also take token-id prompts.
 *   Every token's text is TOKEN_TEXT, and every request generates exactly its `max_completion_tokens` /
 *   `max_tokens` (default DEFAULT_MAX_TOKENS), finishing with `length`.
 * - `GET /v1/models`, `GET /health`, `GET /metrics` (Prometheus, vLLM's names: see worker-metrics.ts).
 * - `GET /servelab/requests[?after=SEQ]`: finished requests as JSON lines (RequestLogEntry). A benchmark matches
 *   its records to them by its `X-Request-ID` or the `x-servelab-request-id` response header, and compares its
 *   measured TTFT with `first_token_ns`, the server's own monotonic time of writing the first token; each
 *   response also carries `x-servelab-arrival-ns`, when the server saw the request.
 * - `--disaggregation-mode prefill|decode`: vLLM NIXL's two legs (live-frontend.md §5.1). A prefill worker answers
 *   `kv_transfer_params: {do_remote_decode: true}` with one token and the params that name its held blocks; a
 *   decode worker given those params waits the modelled transfer (bytes / bandwidth) instead of prefilling, then
 *   tells the prefill worker (`POST /servelab/kv/release`) so the blocks go before their lease ends.
 */

/** Output tokens of a request that sets neither `max_completion_tokens` nor `max_tokens`. */
export const DEFAULT_MAX_TOKENS = 256;
/** Largest request body accepted: a 128K-token prompt is about 0.5 MiB of text, so this leaves ample room. */
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;
export const DEFAULT_REQUEST_LOG_CAPACITY = 100_000;
/** Longest `X-Request-ID` kept in the log, so a client cannot grow the server's memory through it. */
const MAX_CLIENT_ID_CHARS = 256;

export interface MockWorkerOptions {
  /** The model name clients must send (`model`), listed by `/v1/models`. */
  servedModel: string;
  engine: EngineSettings;
  /** Attention-DP ranks; the engine places each request on one as TensorRT-LLM's ADP router does. Default 1. */
  dpSize?: number;
  stepModel: StepTimeModel;
  /** Modelled step times are divided by this on the wall clock. Default 1. */
  speedupRatio?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 picks a free port. Default 0. */
  port?: number;
  maxBodyBytes?: number;
  defaultMaxTokens?: number;
  /** Default: the DeepSeek-V3 tokenizer in a worker thread, loaded on first use; closed with the server. */
  tokenizer?: PromptTokenizer;
  requestLogCapacity?: number;
  /** Where unexpected server errors are reported. Default: stderr. */
  onError?: (e: unknown) => void;
  /** Publish KV events over ZMQ as vLLM does (`--kv-events-config`); none when absent. */
  kvEvents?: Omit<WorkerKvEventsOptions, "dpSize" | "blockSize" | "blocks">;
  /**
   * Dynamo's `--disaggregation-mode`. A prefill worker serves only vLLM NIXL's prefill leg (one token, answered
   * with `kv_transfer_params`) and holds the blocks for the decode worker; a decode worker takes such params,
   * waits out the modelled KV transfer and decodes without recomputing the prompt. Default aggregated.
   */
  disaggregationMode?: DisaggregationMode;
  /** The KV hand-over model; required for a prefill or decode worker. */
  kvTransfer?: KvTransferSettings;
}

export interface MockWorker {
  /** `http://host:port`, without a trailing slash. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly engine: EngineWorker;
  readonly requestLog: RequestLog;
  /** The KV-event publishers, as bound (empty without KV events). */
  readonly kvEventSources: readonly KvEventSourceInfo[];
  /** Requests handed to the engine and not yet finished or cancelled. */
  inFlight(): number;
  /** Stops the engine, drops open connections and closes the port (and the tokenizer it created). */
  close(): Promise<void>;
}

interface Active {
  req: EngineRequest;
  /** The DP rank the engine placed the request on, once known (its first token). */
  rank: number | null;
  parsed: ParsedRequest;
  head: ResponseHead;
  res: ServerResponse;
  clientRequestId: string | null;
  arrivalNs: bigint;
  arrivalUnixMs: number;
  enqueuedNs: bigint;
  firstNs: bigint | null;
  lastNs: bigint | null;
  generated: number;
  cached: number;
  /** A disaggregated request's hand-over, for the log. */
  kvTransfer?: KvTransferLog;
  /** Decode worker: prompt tokens whose KV came from the prefill worker (reported as cached, never recomputed). */
  kvReceived?: number;
  /** With `return_token_ids`: the prompt's ids and the generated tokens' id. */
  tokenIds?: TokenIds;
}

type Route = { method: "GET" | "POST"; endpoint?: Endpoint };

const ROUTES: Record<string, Route> = {
  "/v1/chat/completions": { method: "POST", endpoint: "chat" },
  "/v1/completions": { method: "POST", endpoint: "completions" },
  "/v1/models": { method: "GET" },
  "/health": { method: "GET" },
  "/metrics": { method: "GET" },
  "/servelab/requests": { method: "GET" },
  [KV_RELEASE_PATH]: { method: "POST" },
};

function positiveInt(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  return v;
}

function validateSettings(s: EngineSettings): void {
  positiveInt("maxBatchSize", s.maxBatchSize);
  positiveInt("maxNumTokens", s.maxNumTokens);
  positiveInt("blockSize", s.blockSize);
  positiveInt("kvCapacityBlocks", s.kvCapacityBlocks);
  if (!(s.watermark >= 0 && s.watermark < 1))
    throw new RangeError(`watermark must be in [0, 1), got ${s.watermark}`);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

/**
 * Starts the mock engine as an OpenAI-compatible HTTP server. Each chat or completions request is tokenized,
 * block-hashed like Dynamo's router, and queued on an EngineWorker whose steps run on the wall clock; every token
 * is written to its client when the step that generated it ends.
 *
 * Besides the OpenAI routes: `GET /health` (engine load), and `GET /servelab/requests[?after=SEQ]`, the log of
 * finished requests as JSON lines (see RequestLogEntry) with the server's own arrival and first-token times.
 */
export async function startMockWorker(opts: MockWorkerOptions): Promise<MockWorker> {
  if (opts.servedModel === "") throw new RangeError("the served model name must not be empty");
  validateSettings(opts.engine);
  const mode = opts.disaggregationMode ?? "aggregated";
  if (!DISAGGREGATION_MODES.includes(mode))
    throw new RangeError(
      `disaggregation mode must be one of ${DISAGGREGATION_MODES.join(", ")}, got ${mode}`,
    );
  if (mode !== "aggregated" && opts.kvTransfer === undefined)
    throw new RangeError(`a ${mode} worker needs the KV transfer settings (bandwidth, bytes per token)`);
  if (opts.kvTransfer) validateKvTransferSettings(opts.kvTransfer);
  const dpSize = positiveInt("dpSize", opts.dpSize ?? 1);
  const maxBodyBytes = positiveInt("maxBodyBytes", opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES);
  const defaultMaxTokens = positiveInt("defaultMaxTokens", opts.defaultMaxTokens ?? DEFAULT_MAX_TOKENS);
  const log = new RequestLog(opts.requestLogCapacity ?? DEFAULT_REQUEST_LOG_CAPACITY);
  const onError = opts.onError ?? ((e: unknown) => process.stderr.write(`servelab worker: ${String(e)}\n`));
  const ownsTokenizer = opts.tokenizer === undefined;
  const tokenizer = opts.tokenizer ?? createDeepSeekTokenizer();
  const hasher = await createBlockHasher();
  const blockIds = new BlockIds();
  const settings = opts.engine;
  const kvEvents =
    opts.kvEvents &&
    (await startWorkerKvEvents({
      ...opts.kvEvents,
      dpSize,
      blockSize: settings.blockSize,
      blocks: blockIds,
    }));
  const kvt = opts.kvTransfer;
  const leaseS = kvt?.leaseS ?? DEFAULT_KV_LEASE_S;
  // The lease is modelled time, like every engine delay: a worker run faster lets go of blocks sooner too.
  const leases =
    mode === "prefill" ? new KvLeases(randomUUID(), (leaseS * 1000) / (opts.speedupRatio ?? 1)) : undefined;
  const engine = new EngineWorker(
    "mock",
    dpSize,
    mode,
    settings,
    opts.stepModel,
    (rank) => kvEvents?.sink(rank) ?? { stored: () => {}, removed: () => {} },
  );
  // The engine admits a prompt only under the watermark; a request that cannot fit there alone would wait forever.
  const usableBlocks = Math.floor((1 - settings.watermark) * settings.kvCapacityBlocks);
  const active = new Map<string, Active>();
  let tokenTextId: number | undefined;
  const created = Math.floor(Date.now() / 1000);
  const metrics = createWorkerMetrics(
    opts.servedModel,
    {
      ranks: dpSize,
      load: (r) => engine.load(r),
      get queued() {
        return engine.queued;
      },
      get preemptions() {
        return engine.preemptions;
      },
    },
    { blockSize: settings.blockSize, blocksPerRank: settings.kvCapacityBlocks },
  );

  const record = (a: Active, outcome: RequestOutcome): void => {
    const endNs = process.hrtime.bigint();
    metrics.finished({
      rank: a.rank,
      promptTokens: a.req.isl,
      // KV that came from a prefill worker is not a hit of this worker's prefix cache.
      cachedTokens: a.cached - (a.kvReceived ?? 0),
      generatedTokens: a.generated,
      finishedReason: outcome === "completed" ? "length" : outcome === "cancelled" ? "abort" : "error",
      ttftS: a.firstNs === null ? null : Number(a.firstNs - a.arrivalNs) / 1e9,
      e2eS: Number(endNs - a.arrivalNs) / 1e9,
      queueS: Number(a.enqueuedNs - a.arrivalNs) / 1e9,
    });
    log.add({
      id: a.head.id,
      client_request_id: a.clientRequestId,
      endpoint: a.parsed.endpoint,
      stream: a.parsed.stream,
      outcome,
      dp_rank: a.rank,
      prompt_tokens: a.req.isl,
      cached_tokens: a.cached,
      max_tokens: a.req.osl,
      completion_tokens: a.generated,
      arrival_unix_ms: a.arrivalUnixMs,
      arrival_ns: a.arrivalNs,
      enqueued_ns: a.enqueuedNs,
      first_token_ns: a.firstNs,
      last_token_ns: a.lastNs,
      end_ns: endNs,
      ...(a.kvTransfer ? { kv_transfer: a.kvTransfer } : {}),
    });
  };

  const sink: StepSink = {
    token(req, rank, index) {
      const a = active.get(req.id);
      if (!a) return;
      if (index === 1) {
        a.rank = rank;
        a.cached = a.kvReceived ?? engine.cachedTokens(req);
      }
      a.generated = index;
      const chunk = a.parsed.stream
        ? tokenChunk(a.head, index, req.osl, a.parsed.includeUsage, a.tokenIds)
        : undefined;
      // Stamped as close to the write as possible: this is the time a benchmark compares its TTFT against.
      const now = process.hrtime.bigint();
      if (chunk !== undefined) a.res.write(chunk);
      if (a.lastNs !== null) metrics.token(rank, Number(now - a.lastNs) / 1e9);
      a.firstNs ??= now;
      a.lastNs = now;
    },
    prefillDone(req, rank, cachedTokens) {
      const a = active.get(req.id);
      if (a) answerPrefill(a, rank, cachedTokens);
    },
    finished(req) {
      const a = active.get(req.id);
      if (!a) return;
      active.delete(req.id);
      const u = usage(req.isl, a.generated, a.cached);
      if (a.parsed.stream) {
        if (a.parsed.includeUsage) a.res.write(usageChunk(a.head, u));
        a.res.end(DONE_EVENT);
      } else {
        const body = completionBody(a.head, a.generated, u, a.tokenIds);
        a.res.writeHead(200, {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          ...servelabHeaders(a.head.id, a.arrivalNs),
        });
        a.res.end(body);
      }
      record(a, "completed");
    },
  };
  const engineFailed = (e: unknown) =>
    new ApiError(500, `the mock engine stopped: ${e instanceof Error ? e.message : String(e)}`, {
      code: "engine_failed",
    });
  const driver = new WallClockDriver(engine, sink, opts.speedupRatio ?? 1, (e) => {
    onError(e);
    const err = engineFailed(e);
    for (const a of active.values()) {
      // A stream has sent its status already; OpenAI reports mid-stream failures as an `error` event.
      if (a.parsed.stream) a.res.end(`data: ${JSON.stringify(err.toJSON())}\n\n`);
      else sendError(a.res, err);
      record(a, "failed");
    }
    active.clear();
  });

  // Disaggregated serving (vLLM NIXL's protocol, live-frontend.md §5.1): see disagg/kv-handover.ts.
  let nextBlockId = 0;
  /** A prefill worker's answer: the one token, and where the prompt's KV is, held for the decode worker. */
  const answerPrefill = (a: Active, rank: number, cachedTokens: number): void => {
    active.delete(a.req.id);
    const now = process.hrtime.bigint();
    a.rank = rank;
    a.cached = cachedTokens;
    a.generated = 1;
    a.firstNs = now;
    a.lastNs = now;
    // The engine lets go of the prompt's blocks when this step ends; a second reference keeps them for the
    // decode worker. It can fail only when the rank's KV is full to the last block; the answer goes out anyway.
    const pool = engine.ranks[rank]!.pool;
    const blocks = Math.ceil(a.req.isl / settings.blockSize);
    const shared = pool.prefixCaching ? a.req.blockIds : [];
    const held = pool.acquire(shared, blocks - shared.length);
    if (held)
      leases!.hold(a.head.id, () => {
        pool.release(shared, blocks - shared.length);
        driver.wake();
      });
    a.kvTransfer = { role: "prefill", tokens: a.req.isl, blocks, held, lease_ms: leaseS * 1000 };
    const ids = Array.from({ length: blocks }, () => {
      const id = nextBlockId;
      nextBlockId = (nextBlockId + 1) % settings.kvCapacityBlocks;
      return id;
    });
    const body = JSON.stringify({
      ...JSON.parse(completionBody(a.head, 1, usage(a.req.isl, 1, cachedTokens))),
      kv_transfer_params: prefillAnswerParams({
        engineId: leases!.engineId,
        requestId: a.head.id,
        // vLLM's side-channel host defaults to localhost; a wildcard bind cannot be dialled as such.
        host: /^(0\.0\.0\.0|::)$/.test(where.host) ? "localhost" : where.host,
        port: where.port,
        blockIds: ids,
        promptTokens: a.req.isl,
      }),
    });
    a.res.writeHead(200, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
      ...servelabHeaders(a.head.id, a.arrivalNs),
    });
    a.res.end(body);
    record(a, "completed");
  };

  /**
   * What a prefill or decode worker makes of a request's `kv_transfer_params` (400 for what it cannot serve):
   * for a decode worker, the prompt tokens whose KV another worker holds (0: prefill here, as vLLM does).
   */
  const planHandover = (
    body: Record<string, unknown>,
    parsed: ParsedRequest,
    isl: number,
  ): { remote: RemotePrefill; received: number } | null => {
    const ask = parseKvTransferParams(body);
    if (mode === "prefill") {
      if (ask.kind !== "remote-decode")
        throw invalidParam(
          "kv_transfer_params",
          'this worker only prefills (--disaggregation-mode prefill): send kv_transfer_params {"do_remote_decode": true} with max_tokens 1, as vLLM\'s disaggregation proxy does',
          "unsupported_value",
        );
      if (parsed.stream)
        throw invalidParam(
          "stream",
          "a prefill leg is unary (its kv_transfer_params come back in the body): send stream false",
        );
      if (parsed.maxTokens !== 1)
        throw invalidParam(
          "max_tokens",
          `a prefill worker generates one token: send max_tokens 1, got ${parsed.maxTokens}`,
          "unsupported_value",
        );
      return null;
    }
    if (ask.kind === "remote-decode")
      throw invalidParam(
        "kv_transfer_params.do_remote_decode",
        "this worker only decodes (--disaggregation-mode decode): send the prefill leg to a prefill worker",
        "unsupported_value",
      );
    if (ask.kind === "none") return null;
    return { remote: ask.remote, received: receivedTokens(ask.remote, isl, settings.blockSize) };
  };

  /**
   * The simulator's decode path on the wall clock: hold a place on a rank, wait the modelled transfer of the
   * received KV, then queue the request as prefilled; with the whole prompt received, its first token goes out
   * as the KV lands (the decode worker samples it from the transferred state).
   */
  const awaitKv = (a: Active, pinned: number | null, plan: { remote: RemotePrefill; received: number }) => {
    const req = a.req;
    const reserved = pinned === null;
    const place = pinned ?? engine.reserve(req);
    const ms = kvTransferMs(plan.received, kvt!);
    a.kvReceived = plan.received;
    a.kvTransfer = {
      role: "decode",
      remote_engine_id: plan.remote.engineId,
      remote_request_id: plan.remote.requestId,
      tokens: plan.received,
      bytes: plan.received * kvt!.bytesPerToken,
      modelled_ms: ms,
    };
    let waiting = true;
    const timer = setTimeout(
      () => {
        waiting = false;
        if (active.get(req.id) !== a) return;
        if (plan.remote.httpSideChannel) notifyKvRead(plan.remote);
        if (plan.received >= req.isl) {
          sink.token(req, place, 1);
          if (req.osl <= 1) {
            if (reserved) engine.unreserve(place, req);
            sink.finished(req, place);
            return;
          }
        }
        engine.enqueue(place, req, reserved, plan.received);
        driver.wake();
      },
      ms / (opts.speedupRatio ?? 1),
    );
    a.res.once("close", () => {
      if (!waiting) return;
      waiting = false;
      clearTimeout(timer);
      if (reserved) engine.unreserve(place, req);
    });
  };

  /** A decode worker has read a request's blocks (the notice `notifyKvRead` sends): the lease ends early. */
  const releaseKv = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const { engineId, requestId } = parseReleaseBody(parseJsonBody(await readBody(req, 64 * 1024)));
    if (!leases?.release(engineId, requestId))
      throw new ApiError(
        404,
        `no KV blocks are held here for request ${requestId} of engine ${engineId} (never held, already read, or the lease expired)`,
        { code: "unknown_kv_lease" },
      );
    sendJson(res, 200, { released: true });
  };

  const generate = async (
    endpoint: Endpoint,
    req: IncomingMessage,
    res: ServerResponse,
    arrivalNs: bigint,
    arrivalUnixMs: number,
  ): Promise<void> => {
    let gone = false;
    res.once("close", () => {
      gone = true;
    });
    if (driver.failure !== undefined) throw engineFailed(driver.failure);
    const body = parseJsonBody(await readBody(req, maxBodyBytes));
    const parsed = parseRequestBody(endpoint, body, { servedModel: opts.servedModel, defaultMaxTokens });
    let ids: ArrayLike<number>;
    if ("tokenIds" in parsed.prompt) ids = parsed.prompt.tokenIds;
    else {
      try {
        ids = await tokenizer.encode(parsed.prompt.text);
      } catch (e) {
        throw new ApiError(500, `could not tokenize the prompt: ${(e as Error).message}`);
      }
    }
    const promptParam = endpoint === "chat" ? "messages" : "prompt";
    if (ids.length === 0)
      throw invalidParam(
        promptParam,
        endpoint === "chat" ? "the user messages hold no text to prefill" : "the prompt is empty",
      );
    const needed = ids.length + parsed.maxTokens;
    if (Math.ceil(needed / settings.blockSize) > usableBlocks)
      throw invalidParam(
        promptParam,
        `This model's maximum context length is ${usableBlocks * settings.blockSize} tokens (the usable KV cache of one rank); the request needs ${needed} (${ids.length} in the prompt, ${parsed.maxTokens} for the completion)`,
        "context_length_exceeded",
      );
    const rank = pinnedRank(req, dpSize);
    // The one id every generated token has (TOKEN_TEXT is one token), learnt from the tokenizer once.
    if (parsed.returnTokenIds) tokenTextId ??= (await tokenizer.encode(TOKEN_TEXT))[0]!;
    const handover =
      mode === "aggregated" ? null : planHandover(body as Record<string, unknown>, parsed, ids.length);
    if (gone) throw new ClientGone();
    if (driver.failure !== undefined) throw engineFailed(driver.failure);

    const locals = hasher.localHashes(ids, settings.blockSize);
    const engineReq: EngineRequest = {
      id: `${responseIdPrefix(endpoint)}${randomUUID().replaceAll("-", "")}`,
      isl: ids.length,
      osl: parsed.maxTokens,
      blockIds: blockIds.intern(hasher.sequenceHashes(locals), locals),
    };
    kvEvents?.noteBlocks(engineReq.blockIds, ids);
    const clientId = req.headers["x-request-id"];
    const a: Active = {
      req: engineReq,
      rank: null,
      parsed,
      head: { endpoint, id: engineReq.id, model: opts.servedModel, created: Math.floor(Date.now() / 1000) },
      res,
      clientRequestId: typeof clientId === "string" ? clientId.slice(0, MAX_CLIENT_ID_CHARS) : null,
      arrivalNs,
      arrivalUnixMs,
      enqueuedNs: process.hrtime.bigint(),
      firstNs: null,
      lastNs: null,
      generated: 0,
      cached: 0,
      ...(parsed.returnTokenIds ? { tokenIds: { prompt: Array.from(ids), token: tokenTextId! } } : {}),
    };
    if (parsed.stream) {
      res.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
        ...servelabHeaders(a.head.id, arrivalNs),
      });
      res.flushHeaders();
    }
    active.set(engineReq.id, a);
    res.once("close", () => {
      // A response that ended normally has left `active` already; anything else is a client that hung up.
      if (active.get(engineReq.id) !== a) return;
      active.delete(engineReq.id);
      driver.remove(engineReq);
      record(a, "cancelled");
    });
    if (handover !== null && handover.received > 0) {
      awaitKv(a, rank, handover);
      return;
    }
    // A decode worker given no KV prefills the prompt itself (received 0).
    engine.enqueue(rank, engineReq, false, mode === "decode" ? 0 : undefined);
    driver.wake();
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const arrivalNs = process.hrtime.bigint();
    const arrivalUnixMs = Date.now();
    const path = pathOf(req);
    const route = ROUTES[path];
    if (!route) throw new ApiError(404, `Invalid URL (${req.method} ${path})`, { code: "unknown_url" });
    if (req.method !== route.method) {
      throw new ApiError(405, `${req.method} is not allowed on ${path}; use ${route.method}`, {
        code: "method_not_allowed",
      });
    }
    if (route.endpoint) return generate(route.endpoint, req, res, arrivalNs, arrivalUnixMs);
    if (path === KV_RELEASE_PATH) return releaseKv(req, res);
    if (path === "/v1/models") {
      sendJson(res, 200, {
        object: "list",
        data: [{ id: opts.servedModel, object: "model", created, owned_by: "servelab" }],
      });
    } else if (path === "/metrics") {
      const text = await metrics.text();
      res.writeHead(200, { "content-type": metrics.contentType });
      res.end(text);
    } else if (path === "/health") {
      const ranks = Array.from({ length: dpSize }, (_, r) => engine.load(r));
      sendJson(res, driver.failure === undefined ? 200 : 503, {
        status: driver.failure === undefined ? "ok" : "failed",
        model: opts.servedModel,
        in_flight: active.size,
        steps: driver.steps,
        preemptions: engine.preemptions,
        disaggregation_mode: mode,
        ...(leases
          ? { kv_leases: { held: leases.held, released: leases.released, expired: leases.expired } }
          : {}),
        ranks: ranks.map((l) => ({ waiting: l.waiting, running: l.running, kv_usage: l.kvUsage })),
      });
    } else {
      sendRequestLog(res, log, new URL(req.url ?? "/", "http://localhost").searchParams.get("after"));
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (e instanceof ClientGone) return;
      if (e instanceof ApiError) {
        // A refused body may still be arriving; closing afterwards keeps it off the next request on this socket.
        const close = e.status === 413 ? { connection: "close" } : undefined;
        sendError(res, e, { ...(e.status === 405 ? { allow: ROUTES[pathOf(req)]!.method } : {}), ...close });
        return;
      }
      onError(e);
      sendError(res, new ApiError(500, "internal server error", { code: "internal_error" }));
    });
  });
  const where = await listenOn(server, opts.host ?? "127.0.0.1", opts.port ?? 0, onError).catch(
    async (e: unknown) => {
      // Sockets would keep the process alive after the caller gave up on this worker.
      await kvEvents?.close();
      throw e;
    },
  );
  let closing: Promise<void> | undefined;

  return {
    ...where,
    engine,
    requestLog: log,
    kvEventSources: kvEvents?.sources ?? [],
    inFlight: () => active.size,
    close() {
      closing ??= (async () => {
        driver.stop();
        leases?.clear();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await closed;
        if (ownsTokenizer) await tokenizer.close();
        await kvEvents?.close();
      })();
      return closing;
    },
  };
}

/**
 * The DP rank a router pinned the request to, by vLLM's `X-data-parallel-rank` header (Dynamo's routers send the
 * same choice as `dp_rank`); null lets the engine place it.
 */
function pinnedRank(req: IncomingMessage, dpSize: number): number | null {
  const h = req.headers["x-data-parallel-rank"];
  if (h === undefined) return null;
  const text = Array.isArray(h) ? h[0]! : h;
  const rank = Number(text);
  if (text.trim() === "" || !Number.isSafeInteger(rank) || rank < 0 || rank >= dpSize)
    throw new ApiError(
      400,
      `X-data-parallel-rank must be an integer in [0, ${dpSize - 1}] (the worker's DP ranks), got ${JSON.stringify(text)}`,
      { param: "X-data-parallel-rank", code: "invalid_value" },
    );
  return rank;
}

function pathOf(req: IncomingMessage): string {
  return (req.url ?? "/").split("?", 1)[0]!;
}

/** Lets a client join its own record of a request with the server's log without parsing the body. */
function servelabHeaders(id: string, arrivalNs: bigint): Record<string, string> {
  return { "x-servelab-request-id": id, "x-servelab-arrival-ns": arrivalNs.toString() };
}

function sendRequestLog(res: ServerResponse, log: RequestLog, afterParam: string | null): void {
  let after = 0;
  if (afterParam !== null) {
    after = Number(afterParam);
    if (afterParam.trim() === "" || !Number.isSafeInteger(after) || after < 0)
      throw invalidParam(
        "after",
        `'after' must be a non-negative integer, got ${JSON.stringify(afterParam)}`,
      );
  }
  const entries: RequestLogEntry[] = log.since(after);
  const body = entries.map((e) => `${formatLogEntry(e)}\n`).join("");
  res.writeHead(200, { "content-type": "application/x-ndjson", "content-length": Buffer.byteLength(body) });
  res.end(body);
}
