import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { BlockIds } from "../engine/block-ids.ts";
import {
  type EngineRequest,
  type EngineSettings,
  EngineWorker,
  type StepSink,
} from "../engine/engine-worker.ts";
import type { StepTimeModel } from "../engine/perf-model.ts";
import { createBlockHasher } from "../kv/block-hash.ts";
import { ApiError, invalidParam, sendError } from "./openai-errors.ts";
import { type Endpoint, type ParsedRequest, parseRequestBody } from "./openai-request.ts";
import {
  completionBody,
  DONE_EVENT,
  type ResponseHead,
  responseIdPrefix,
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
}

export interface MockWorker {
  /** `http://host:port`, without a trailing slash. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly engine: EngineWorker;
  readonly requestLog: RequestLog;
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
}

type Route = { method: "GET" | "POST"; endpoint?: Endpoint };

const ROUTES: Record<string, Route> = {
  "/v1/chat/completions": { method: "POST", endpoint: "chat" },
  "/v1/completions": { method: "POST", endpoint: "completions" },
  "/v1/models": { method: "GET" },
  "/health": { method: "GET" },
  "/metrics": { method: "GET" },
  "/servelab/requests": { method: "GET" },
};

/** The client went away before the request reached the engine; there is no one to answer. */
class ClientGone extends Error {}

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

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = () =>
    new ApiError(413, `the request body exceeds the server's limit of ${limit} bytes`, {
      code: "request_too_large",
    });
  const declared = Number(req.headers["content-length"]);
  // Refused before reading; what the client still sends is read and dropped by the HTTP layer.
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on("data", (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > limit) {
        over = true;
        chunks.length = 0;
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (!over) resolve(Buffer.concat(chunks, size));
    });
    req.on("close", () => {
      if (!req.complete) reject(new ClientGone());
    });
    req.on("error", () => reject(new ClientGone()));
  });
}

function parseJson(buf: Buffer): unknown {
  if (buf.length === 0)
    throw new ApiError(400, "the request body is empty; expected a JSON object", { code: "invalid_json" });
  try {
    return JSON.parse(buf.toString("utf8"));
  } catch (e) {
    throw new ApiError(400, `the request body is not valid JSON: ${(e as Error).message}`, {
      code: "invalid_json",
    });
  }
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
  const engine = new EngineWorker("mock", dpSize, "aggregated", settings, opts.stepModel, () => ({
    stored: () => {},
    removed: () => {},
  }));
  // The engine admits a prompt only under the watermark; a request that cannot fit there alone would wait forever.
  const usableBlocks = Math.floor((1 - settings.watermark) * settings.kvCapacityBlocks);
  const active = new Map<string, Active>();
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
      cachedTokens: a.cached,
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
    });
  };

  const sink: StepSink = {
    token(req, rank, index) {
      const a = active.get(req.id);
      if (!a) return;
      if (index === 1) {
        a.rank = rank;
        a.cached = engine.cachedTokens(req);
      }
      a.generated = index;
      const chunk = a.parsed.stream ? tokenChunk(a.head, index, req.osl, a.parsed.includeUsage) : undefined;
      // Stamped as close to the write as possible: this is the time a benchmark compares its TTFT against.
      const now = process.hrtime.bigint();
      if (chunk !== undefined) a.res.write(chunk);
      if (a.lastNs !== null) metrics.token(rank, Number(now - a.lastNs) / 1e9);
      a.firstNs ??= now;
      a.lastNs = now;
    },
    prefillDone() {},
    finished(req) {
      const a = active.get(req.id);
      if (!a) return;
      active.delete(req.id);
      const u = usage(req.isl, a.generated, a.cached);
      if (a.parsed.stream) {
        if (a.parsed.includeUsage) a.res.write(usageChunk(a.head, u));
        a.res.end(DONE_EVENT);
      } else {
        const body = completionBody(a.head, a.generated, u);
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
    const body = parseJson(await readBody(req, maxBodyBytes));
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
    if (gone) throw new ClientGone();
    if (driver.failure !== undefined) throw engineFailed(driver.failure);

    const locals = hasher.localHashes(ids, settings.blockSize);
    const engineReq: EngineRequest = {
      id: `${responseIdPrefix(endpoint)}${randomUUID().replaceAll("-", "")}`,
      isl: ids.length,
      osl: parsed.maxTokens,
      blockIds: blockIds.intern(hasher.sequenceHashes(locals), locals),
    };
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
    engine.enqueue(null, engineReq);
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
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", onError);
  const address = server.address() as AddressInfo;
  const urlHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;

  return {
    url: `http://${urlHost}:${address.port}`,
    host: address.address,
    port: address.port,
    engine,
    requestLog: log,
    inFlight: () => active.size,
    close() {
      closing ??= (async () => {
        driver.stop();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await closed;
        if (ownsTokenizer) await tokenizer.close();
      })();
      return closing;
    },
  };
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
