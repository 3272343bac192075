import { EventEmitter } from "node:events";
import { STATUS_CODES } from "node:http";
import { setImmediate as nextTurn } from "node:timers/promises";
import { type Dispatcher, Pool } from "undici";
import type { RequestError, RequestRecord } from "../metrics/record.ts";
import { excerpt, parseResponseText, type ServerErrorInfo, type Usage } from "./openai-request.ts";
import { DEFAULT_MAX_EVENT_SIZE, type SseEvent, SseParser } from "./sse-parser.ts";

/**
 * Sends one OpenAI-compatible request over undici and measures it into a RequestRecord the way AIPerf does
 * (request start, headers, and the first-byte arrival of every content response).
 *
 * `sendRequest` never throws for anything the server or the network does: every failure becomes `record.error`.
 * The error conventions (AIPerf's where it has one):
 *
 * | failure                                        | code            | type                              |
 * |------------------------------------------------|-----------------|-----------------------------------|
 * | HTTP status outside 2xx                        | the status      | reason phrase, e.g. "Internal Server Error"; message = start of the body |
 * | connection refused / reset / closed mid-body   | 0               | the error code, e.g. "ECONNREFUSED", "UND_ERR_SOCKET" |
 * | no complete response within `timeoutMs`        | 408             | "RequestTimeoutError"             |
 * | the caller's `signal` aborted                  | 499             | "RequestCancellationError" (and `cancelled: true`) |
 * | malformed SSE, JSON, or response shape         | the HTTP status | "ResponseParseError"              |
 * | an error object inside a 2xx response          | its `code`, else the HTTP status | its `type`, else "ServerError" |
 * | 2xx with no content response                   | the HTTP status | "InvalidInferenceResultError"     |
 * | server token counts asked for but not sent     | the HTTP status | "MissingUsageError"               |
 *
 * AIPerf records a timeout as aiohttp's TimeoutError with no code; here it gets 408 because `RequestError.code`
 * is a number and 0 already means a transport failure, and 408 is what a proxy would have answered.
 */

/** A monotonic nanosecond clock. All times in one run must come from one clock. */
export interface Clock {
  nowNs(): number;
}

/** A clock on `process.hrtime`, zeroed at creation, with the wall-clock time of its zero. */
export interface HrClock extends Clock {
  /** Wall-clock time (ns since the Unix epoch) at `nowNs() === 0`, for converting record times to wall clock. */
  readonly wallNsAtZero: bigint;
}

/**
 * Zeroed at creation so that the values stay far below 2^53 (exact integers in a double) however long the
 * machine has been up; the raw hrtime counter can pass 2^53 ns after 104 days. The wall-clock zero comes from
 * Date.now(), not performance.timeOrigin, which is fixed at process start and misses later clock adjustments;
 * its millisecond resolution only offsets the whole run, never the intervals.
 */
export function createHrClock(): HrClock {
  const origin = process.hrtime.bigint();
  const wallNsAtZero = BigInt(Date.now()) * 1_000_000n;
  return { wallNsAtZero, nowNs: () => Number(process.hrtime.bigint() - origin) };
}

/**
 * Where output token counts come from. `client`: the caller's tokenizer over the concatenated content (and,
 * separately, reasoning) text, as AIPerf does by default. `server`: the response's `usage`
 * (`completion_tokens` minus `completion_tokens_details.reasoning_tokens`, and `prompt_tokens` replaces the
 * spec's input count), as AIPerf's `--use-server-token-count`; `fallback` counts when the server sent no usage,
 * otherwise such a response is a MissingUsageError.
 */
export type TokenCounting =
  | { source: "client"; countTokens: CountTokens }
  | { source: "server"; fallback?: CountTokens | undefined };

/**
 * A token count; a load generator counts in another thread (a promise), so that tokenizing a long response does not
 * stall the event loop that stamps every other response's chunks.
 */
export type CountTokens = (text: string) => number | Promise<number>;

export interface RequestSpec {
  sessionNum: number;
  requestId: string;
  conversationId: string;
  turnIndex: number;
  /** Scheme, host and port, e.g. "http://127.0.0.1:8000" (needed by an Agent; a Pool ignores it). */
  origin: string;
  /** e.g. "/v1/chat/completions". */
  path: string;
  /** Sent as given (see buildHeaders). */
  headers: Readonly<Record<string, string>>;
  /**
   * The serialized JSON body (serialized by the caller so the exact payload can also be exported); bytes are sent
   * as they are, so a caller that encodes ahead of time keeps the encoding off the send.
   */
  body: string | Uint8Array;
  /** Whether the body asks for a stream; the response's content type decides how it is read. */
  streaming: boolean;
  /** Prompt tokens as counted by the caller. */
  inputTokens: number;
  /** Copied to the record. */
  target?: string | undefined;
  /** Aborting it cancels the request: the record gets code 499 and `cancelled: true`. */
  signal?: AbortSignal | undefined;
}

export interface SendOptions {
  clock: Clock;
  tokens: TokenCounting;
  /** Total time from send to the end of the body; then the request is aborted (408). Default 600 s. */
  timeoutMs?: number | undefined;
  /** Largest SSE event, and largest non-streamed body, in characters/bytes. Default 8 MiB. */
  maxEventSize?: number | undefined;
  /** How much of an error response's body goes into the error message. Default 1024 bytes. */
  errorBodyBytes?: number | undefined;
  /** Keep the HTTP status and every response message with its arrival in the record (a raw export). */
  keepResponses?: boolean | undefined;
}

/** AIPerf's snapshot default (`--request-timeout-seconds 600`). */
export const DEFAULT_TIMEOUT_MS = 600_000;
const DEFAULT_ERROR_BODY_BYTES = 1024;

export interface PoolOptions {
  /** Most connections open at once; a benchmark sets it to at least its concurrency. Default unlimited. */
  connections?: number | undefined;
  /** How long an idle connection is kept for reuse. Default 60 s. */
  keepAliveTimeoutMs?: number | undefined;
}

/**
 * A keep-alive connection pool for one server. No pipelining: a streamed response occupies its connection, and
 * queueing a request behind another's stream would add the first one's duration to the second's TTFT.
 * undici's own header and body timeouts are off; sendRequest's `timeoutMs` bounds each request instead.
 */
export function createPool(origin: string, options: PoolOptions = {}): Pool {
  const keepAlive = options.keepAliveTimeoutMs ?? 60_000;
  return new Pool(origin, {
    connections: options.connections ?? null,
    pipelining: 1,
    keepAliveTimeout: keepAlive,
    keepAliveMaxTimeout: Math.max(keepAlive, 600_000),
    headersTimeout: 0,
    bodyTimeout: 0,
  });
}

/** What the response body produced, filled while it streams in. */
interface Collected {
  chunkNs: number[];
  content: string[];
  reasoning: string[];
  usage: Usage | undefined;
  done: boolean;
  failure: RequestError | null;
  /** Every response message as it arrived, when the caller keeps them. */
  responses?: { perfNs: number; text: string }[];
}

class Cancelled extends Error {}

/**
 * One request's abort handle, an EventEmitter (which undici takes as a `signal`): an AbortController, its
 * EventTarget listeners and their removal cost tens of µs a request on the thread that sends and stamps.
 */
class RequestAbort extends EventEmitter {
  aborted = false;
  reason: unknown = undefined;

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.emit("abort");
  }
}

/**
 * The requests in flight under each caller's signal, which gets one listener for all of them (not one added and
 * removed per request).
 */
const underSignal = new WeakMap<AbortSignal, Set<RequestAbort>>();
function requestsOf(signal: AbortSignal): Set<RequestAbort> {
  let set = underSignal.get(signal);
  if (!set) {
    const requests = new Set<RequestAbort>();
    set = requests;
    underSignal.set(signal, requests);
    signal.addEventListener(
      "abort",
      () => {
        for (const r of requests) r.abort(new Cancelled("request cancelled"));
      },
      { once: true },
    );
  }
  return set;
}

/**
 * POSTs `spec` through `dispatcher` (a Pool for one server, or an Agent) and returns its record. `startNs` is
 * taken just before the request is handed to undici, `ackNs` when the response headers arrive, and `chunkNs`
 * holds the first-byte arrival of each content response: an SSE event whose content or reasoning text is
 * non-empty (`[DONE]`, empty, finish-only and usage-only events are not content), or, for a non-streamed
 * response, the end of the body. Never rejects (see the error table at the top of this file).
 */
export async function sendRequest(
  dispatcher: Dispatcher,
  spec: RequestSpec,
  options: SendOptions,
): Promise<RequestRecord> {
  const { clock } = options;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!(timeoutMs > 0)) throw new RangeError(`timeoutMs must be positive, got ${timeoutMs}`);
  const record: RequestRecord = {
    sessionNum: spec.sessionNum,
    requestId: spec.requestId,
    conversationId: spec.conversationId,
    turnIndex: spec.turnIndex,
    startNs: 0,
    ackNs: undefined,
    chunkNs: [],
    inputTokens: spec.inputTokens,
    outputTokens: 0,
    target: spec.target,
    error: null,
    streaming: spec.streaming,
  };

  if (spec.signal?.aborted) {
    record.startNs = clock.nowNs();
    record.endNs = record.startNs;
    return cancel(record);
  }

  const abort = new RequestAbort();
  let timedOut = false;
  const inFlight = spec.signal ? requestsOf(spec.signal) : undefined;
  inFlight?.add(abort);
  const timer = Number.isFinite(timeoutMs)
    ? setTimeout(() => {
        timedOut = true;
        abort.abort(new Error(`no complete response within ${timeoutMs} ms`));
      }, timeoutMs)
    : undefined;

  const collected: Collected = {
    chunkNs: [],
    content: [],
    reasoning: [],
    usage: undefined,
    done: false,
    failure: null,
  };
  // Shared, so that a request that fails or is cancelled mid-stream keeps the chunks it did receive.
  record.chunkNs = collected.chunkNs;
  if (options.keepResponses) {
    collected.responses = [];
    record.responses = collected.responses;
  }
  let status = 0;
  try {
    record.startNs = clock.nowNs();
    const response = await dispatcher.request({
      origin: spec.origin,
      path: spec.path,
      method: "POST",
      headers: spec.headers,
      body: spec.body,
      signal: abort,
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    record.ackNs = clock.nowNs();
    status = response.statusCode;
    if (options.keepResponses) record.status = status;
    const { body } = response;

    if (status < 200 || status > 299) {
      const text = await readExcerpt(body, options.errorBodyBytes ?? DEFAULT_ERROR_BODY_BYTES);
      record.error = {
        code: status,
        type: response.statusText || STATUS_CODES[status] || "HTTP Error",
        message: text,
      };
      return record;
    }

    const contentType = headerValue(response.headers["content-type"]).toLowerCase();
    const maxEventSize = options.maxEventSize ?? DEFAULT_MAX_EVENT_SIZE;
    if (contentType.startsWith("text/event-stream")) {
      record.streaming = true;
      await readSse(body, clock, status, maxEventSize, collected);
    } else {
      record.streaming = false;
      await readWhole(body, clock, status, maxEventSize, collected);
    }
    // undici marks the connection idle a turn after the body ends; a caller that sends its next request as soon
    // as this one returns would otherwise find it busy and open a new connection (paying a handshake in TTFT).
    await nextTurn();
    if (collected.failure) {
      record.error = collected.failure;
      return record;
    }
    if (collected.chunkNs.length === 0) {
      // AIPerf's own words for this case, so that both tools group it under one error.
      record.error = {
        code: status,
        type: "InvalidInferenceResultError",
        message: "Invalid inference result: no responses were received",
      };
      return record;
    }
    try {
      await countTokens(record, collected, options.tokens, status);
    } catch (e) {
      record.error = { code: status, type: "TokenCountError", message: (e as Error).message };
    }
    return record;
  } catch (e) {
    if (abort.reason instanceof Cancelled) return cancel(record);
    if (timedOut) {
      record.error = {
        code: 408,
        type: "RequestTimeoutError",
        message: `no complete response within ${timeoutMs} ms`,
      };
      return record;
    }
    record.error = transportError(e);
    return record;
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    inFlight?.delete(abort);
    // A failed request's end is the time of its error (AIPerf's request_end_ns).
    if (record.error) record.endNs = clock.nowNs();
  }
}

function cancel(record: RequestRecord): RequestRecord {
  record.cancelled = true;
  record.error = { code: 499, type: "RequestCancellationError", message: "Request was cancelled" };
  return record;
}

function transportError(e: unknown): RequestError {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    const cause = e.cause instanceof Error && e.cause.message !== e.message ? ` (${e.cause.message})` : "";
    return { code: 0, type: typeof code === "string" ? code : e.name, message: `${e.message}${cause}` };
  }
  return { code: 0, type: "Error", message: String(e) };
}

function headerValue(v: string | string[] | undefined): string {
  if (Array.isArray(v)) return v[0] ?? "";
  return v ?? "";
}

type Body = Dispatcher.ResponseData["body"];

/**
 * What the streams' 'data', 'end' and 'error' events left to do, in arrival order, done once the event loop has
 * taken every socket that was ready (a check-phase callback). Many streams' chunks arrive in one poll of the event
 * loop; stamping each on arrival and parsing it later keeps one stream's parsing out of the next one's stamp.
 */
let deferred: (() => void)[] = [];
function defer(work: () => void): void {
  if (deferred.length === 0) setImmediate(runDeferred);
  deferred.push(work);
}
function runDeferred(): void {
  const batch = deferred;
  deferred = [];
  for (const work of batch) {
    try {
      work();
    } catch (e) {
      // Surfaces as it would have from the event itself, without costing the other streams their turn.
      queueMicrotask(() => {
        throw e;
      });
    }
  }
}

/**
 * Feeds the body to `onData` as chunks arrive, stamped on arrival. 'data' listeners run when undici pushes the
 * chunk (a flowing stream with an empty buffer emits synchronously), so the stamp is not delayed by how long
 * the consumer takes, as it would be with an async iterator; `onData` itself runs deferred (see `defer`), in
 * order. `onData` returns false to stop reading; the body is then destroyed (which closes the connection rather
 * than reading an unwanted rest).
 */
function pump(body: Body, clock: Clock, onData: (chunk: Buffer, nowNs: number) => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    body.on("data", (chunk: Buffer) => {
      const nowNs = clock.nowNs();
      defer(() => {
        if (settled) return;
        if (!onData(chunk, nowNs)) {
          settled = true;
          body.destroy();
          resolve();
        }
      });
    });
    body.on("end", () =>
      defer(() => {
        if (settled) return;
        settled = true;
        resolve();
      }),
    );
    // Stays attached after settling: an 'error' without a listener would crash the process.
    body.on("error", (e: Error) =>
      defer(() => {
        if (settled) return;
        settled = true;
        reject(e);
      }),
    );
  });
}

async function readExcerpt(body: Body, maxBytes: number): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  let truncated = false;
  try {
    await pump(body, { nowNs: () => 0 }, (chunk) => {
      parts.push(chunk);
      size += chunk.length;
      if (size >= maxBytes) {
        truncated = true;
        return false;
      }
      return true;
    });
  } catch {
    // The status already says what went wrong; a body cut short only shortens the message.
  }
  const bytes = Buffer.concat(parts);
  const text = new TextDecoder().decode(bytes.subarray(0, maxBytes)).trim();
  return truncated || bytes.length > maxBytes ? `${text}…` : text;
}

async function readSse(
  body: Body,
  clock: Clock,
  status: number,
  maxEventSize: number,
  out: Collected,
): Promise<void> {
  const parser = new SseParser({ maxEventSize });
  const handle = (event: SseEvent): boolean => handleEvent(event, status, out);
  await pump(body, clock, (chunk, nowNs) => {
    let events: SseEvent[];
    try {
      events = parser.feed(chunk, nowNs);
    } catch (e) {
      out.failure = parseFailure(status, e instanceof Error ? e.message : String(e));
      return false;
    }
    for (const event of events) {
      out.responses?.push({ perfNs: event.firstByteNs, text: event.data });
      if (!handle(event)) return false;
    }
    return true;
  });
  if (out.failure) return;
  // WHATWG discards an event cut off by the end of the stream; AIPerf keeps it. Keeping it is the better choice
  // here: a truncated JSON payload still fails to parse, and a server that merely omits the last blank line
  // loses no chunk.
  const pending = parser.finish(clock.nowNs());
  if (pending) handle(pending);
}

/** Applies one SSE event to `out`; returns false when the request has failed and reading should stop. */
function handleEvent(event: SseEvent, status: number, out: Collected): boolean {
  if (out.done) return true; // anything after [DONE] is not part of the response
  const data = event.data;
  if (event.event !== undefined && event.event !== "message") {
    if (event.event !== "error") return true; // other named events carry no OpenAI chunks
    const parsed = parseResponseText(data);
    const info: ServerErrorInfo =
      parsed.ok && parsed.value.error
        ? parsed.value.error
        : { message: excerpt(data.trim()) || "error event" };
    out.failure = serverError(status, info);
    return false;
  }
  const trimmed = data.trim();
  if (trimmed === "") return true;
  if (trimmed === "[DONE]") {
    out.done = true;
    return true;
  }
  const parsed = parseResponseText(data);
  if (!parsed.ok) {
    out.failure = parseFailure(status, parsed.message);
    return false;
  }
  const chunk = parsed.value;
  if (chunk.error) {
    out.failure = serverError(status, chunk.error);
    return false;
  }
  // With continuous usage stats every chunk carries the running totals, so the last one is the final count.
  if (chunk.usage) out.usage = chunk.usage;
  if (chunk.content !== "" || chunk.reasoning !== "") {
    out.chunkNs.push(event.firstByteNs);
    if (chunk.content !== "") out.content.push(chunk.content);
    if (chunk.reasoning !== "") out.reasoning.push(chunk.reasoning);
  }
  return true;
}

async function readWhole(
  body: Body,
  clock: Clock,
  status: number,
  maxBytes: number,
  out: Collected,
): Promise<void> {
  const parts: Buffer[] = [];
  let size = 0;
  let endNs = 0;
  await pump(body, clock, (chunk, nowNs) => {
    size += chunk.length;
    if (size > maxBytes) {
      out.failure = parseFailure(status, `response body exceeds ${maxBytes} bytes`);
      return false;
    }
    parts.push(chunk);
    endNs = nowNs;
    return true;
  });
  if (out.failure) return;
  // The response is complete when its last byte arrived, i.e. at the last chunk's stamp; 'end' can come later
  // (after the chunked-encoding terminator), which would add the client's own delay to the latency.
  const text = new TextDecoder().decode(Buffer.concat(parts));
  out.responses?.push({ perfNs: endNs, text });
  if (text.trim() === "") return;
  const parsed = parseResponseText(text);
  if (!parsed.ok) {
    out.failure = parseFailure(status, parsed.message);
    return;
  }
  const value = parsed.value;
  if (value.error) {
    out.failure = serverError(status, value.error);
    return;
  }
  if (value.usage) out.usage = value.usage;
  if (value.content !== "" || value.reasoning !== "") {
    out.chunkNs.push(endNs);
    if (value.content !== "") out.content.push(value.content);
    if (value.reasoning !== "") out.reasoning.push(value.reasoning);
  }
}

function parseFailure(status: number, message: string): RequestError {
  return { code: status, type: "ResponseParseError", message };
}

function serverError(status: number, info: ServerErrorInfo): RequestError {
  return { code: info.code ?? status, type: info.type ?? "ServerError", message: info.message };
}

async function countTokens(
  record: RequestRecord,
  got: Collected,
  tokens: TokenCounting,
  status: number,
): Promise<void> {
  const content = got.content.join("");
  const reasoning = got.reasoning.join("");
  const byClient = async (count: CountTokens): Promise<void> => {
    const [out, thinking] = await Promise.all([
      count(content),
      reasoning === "" ? undefined : count(reasoning),
    ]);
    record.outputTokens = out;
    record.reasoningTokens = thinking;
  };
  if (got.usage?.cachedTokens !== undefined) record.cachedTokens = got.usage.cachedTokens;
  if (tokens.source === "client") {
    await byClient(tokens.countTokens);
    return;
  }
  const usage = got.usage;
  if (usage?.completionTokens === undefined) {
    if (tokens.fallback) {
      await byClient(tokens.fallback);
      return;
    }
    record.error = {
      code: status,
      type: "MissingUsageError",
      message: "server token counts were requested but the response has no usage.completion_tokens",
    };
    return;
  }
  const reasoningTokens = usage.reasoningTokens;
  if (reasoningTokens !== undefined && reasoningTokens > usage.completionTokens) {
    record.error = parseFailure(
      status,
      `usage.completion_tokens_details.reasoning_tokens (${reasoningTokens}) exceeds usage.completion_tokens (${usage.completionTokens})`,
    );
    return;
  }
  record.outputTokens = usage.completionTokens - (reasoningTokens ?? 0);
  record.reasoningTokens = reasoningTokens;
  if (usage.promptTokens !== undefined) record.inputTokens = usage.promptTokens;
}
