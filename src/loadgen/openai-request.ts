import { ServelabError } from "../errors.ts";

/**
 * Request bodies and response parsing for the OpenAI-compatible `chat/completions` and `completions` endpoints,
 * shaped as AIPerf sends them, so that servers see the same load.
 */

export type EndpointKind = "chat" | "completions";

export const ENDPOINT_PATHS: Readonly<Record<EndpointKind, string>> = {
  chat: "/v1/chat/completions",
  completions: "/v1/completions",
};

export interface RequestBodyOptions {
  endpoint: EndpointKind;
  model: string;
  prompt: string;
  streaming: boolean;
  /** Output token cap; omitted from the body when undefined. */
  maxTokens?: number | undefined;
  /** Chat only: send `max_tokens` instead of `max_completion_tokens`, for servers that predate the new name. */
  legacyMaxTokens?: boolean | undefined;
  /**
   * When streaming, ask for a final usage chunk (`stream_options.include_usage`). Default true: server token
   * counts cost nothing to request, and without them a run cannot compare client and server counts.
   */
  includeUsage?: boolean | undefined;
  /**
   * `--extra-inputs`: merged into the top level last, so a key here replaces the generated one (model, stream,
   * stream_options included). Objects are replaced, not deep-merged, as in AIPerf.
   */
  extraInputs?: Readonly<Record<string, unknown>> | undefined;
}

/**
 * The JSON body for one request. Chat: `{model, messages:[{role:"user",content}], stream, max_completion_tokens?,
 * stream_options?}`; completions: `{model, prompt, stream, max_tokens?, stream_options?}`. Unlike AIPerf, the
 * completions prompt is a plain string (a one-element list asks some servers for a batch) and chat messages carry
 * no `name` field (a Dynamo workaround that other servers do not need); pass either through `extraInputs` to
 * reproduce AIPerf's bodies byte for byte.
 */
export function buildRequestBody(options: RequestBodyOptions): Record<string, unknown> {
  const { endpoint, model, prompt, streaming, maxTokens } = options;
  if (maxTokens !== undefined && (!Number.isSafeInteger(maxTokens) || maxTokens < 1)) {
    throw new RangeError(`maxTokens must be a positive integer, got ${maxTokens}`);
  }
  const body: Record<string, unknown> = { model };
  if (endpoint === "chat") {
    body.messages = [{ role: "user", content: prompt }];
  } else {
    body.prompt = prompt;
  }
  body.stream = streaming;
  if (maxTokens !== undefined) {
    const key = endpoint === "chat" && !options.legacyMaxTokens ? "max_completion_tokens" : "max_tokens";
    body[key] = maxTokens;
  }
  if (streaming && (options.includeUsage ?? true)) body.stream_options = { include_usage: true };
  if (options.extraInputs) {
    for (const [key, value] of Object.entries(options.extraInputs)) body[key] = value;
  }
  return body;
}

export interface HeaderOptions {
  streaming: boolean;
  /** Sent as `X-Request-ID`, so server logs can be joined with the records. */
  requestId: string;
  /** Sent as `X-Correlation-ID`: the conversation id, shared by every turn of a session (AIPerf 0.6 semantics). */
  correlationId?: string | undefined;
  apiKey?: string | undefined;
  /** `-H` headers; they replace generated ones with the same name (compared case-insensitively). */
  extra?: Readonly<Record<string, string>> | undefined;
}

/** AIPerf's header set: JSON content, an Accept matching the mode, bearer auth when a key is given, request ids. */
export function buildHeaders(options: HeaderOptions): Record<string, string> {
  const headers: Record<string, string> = {
    "user-agent": "servelab",
    "content-type": "application/json",
    accept: options.streaming ? "text/event-stream" : "application/json",
    "x-request-id": options.requestId,
  };
  if (options.correlationId !== undefined) headers["x-correlation-id"] = options.correlationId;
  if (options.apiKey !== undefined && options.apiKey !== "")
    headers.authorization = `Bearer ${options.apiKey}`;
  if (options.extra) {
    for (const [name, value] of Object.entries(options.extra)) headers[name.toLowerCase()] = value;
  }
  return headers;
}

/**
 * Parses `--extra-inputs` arguments: each is `key:value` or a JSON object. Values are coerced as AIPerf does
 * (`true`/`false`, `none`/`null`, integers, floats), and a value that starts with `{` or `[` and parses as JSON is
 * taken as that JSON (so `nvext:{"ignore_eos":true}` works); anything else stays a string. Later arguments
 * replace earlier keys.
 */
export function parseExtraInputs(args: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const arg of args) {
    const trimmed = arg.trim();
    if (trimmed.startsWith("{")) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(trimmed);
      } catch (e) {
        throw new ServelabError(
          "USAGE",
          `--extra-inputs ${JSON.stringify(arg)} is not valid JSON: ${errText(e)}`,
        );
      }
      if (!isPlainObject(parsed)) {
        throw new ServelabError("USAGE", `--extra-inputs ${JSON.stringify(arg)} must be a JSON object`);
      }
      Object.assign(out, parsed);
      continue;
    }
    const colon = arg.indexOf(":");
    const key = colon < 0 ? "" : arg.slice(0, colon).trim();
    if (key === "") {
      throw new ServelabError(
        "USAGE",
        `--extra-inputs ${JSON.stringify(arg)} is not key:value or a JSON object`,
      );
    }
    out[key] = coerceValue(arg.slice(colon + 1).trim());
  }
  return out;
}

function coerceValue(text: string): unknown {
  const lower = text.toLowerCase();
  if (lower === "true") return true;
  if (lower === "false") return false;
  if (lower === "none" || lower === "null") return null;
  if (/^[+-]?\d+$/.test(text)) {
    const n = Number(text);
    // An integer too large for a double would silently change; keep it as text.
    return Number.isSafeInteger(n) ? n : text;
  }
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text) || /^[+-]?(inf|infinity|nan)$/i.test(text)) {
    const n = Number(text);
    if (Number.isFinite(n)) return n;
  }
  if (text.startsWith("{") || text.startsWith("[")) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}

/** Token counts from a response's `usage` object; each is absent when the server did not report it. */
export interface Usage {
  promptTokens?: number;
  /** All generated tokens, reasoning included (OpenAI semantics). */
  completionTokens?: number;
  /** `completion_tokens_details.reasoning_tokens`. */
  reasoningTokens?: number;
  /** `prompt_tokens_details.cached_tokens`: prompt tokens served from the prefix cache. */
  cachedTokens?: number;
}

/** An error the server reported inside a 200 response (an SSE error event or an error body). */
export interface ServerErrorInfo {
  /** The error's numeric code, when it has one (vLLM puts the HTTP status it would have used here). */
  code?: number;
  type?: string;
  message: string;
}

/** What one streamed chunk or one non-streamed response contributes. */
export interface ParsedResponse {
  /** Generated text (chat `delta|message.content`, completions `text`); "" when absent. */
  content: string;
  /** Reasoning text (`reasoning_content`, or `reasoning` from servers that use that name); "" when absent. */
  reasoning: string;
  finishReason?: string;
  usage?: Usage;
  error?: ServerErrorInfo;
}

export type ParseResult = { ok: true; value: ParsedResponse } | { ok: false; message: string };

/** Parses the JSON text of one SSE data line or one response body. */
export function parseResponseText(text: string): ParseResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { ok: false, message: `invalid JSON (${errText(e)}): ${excerpt(text)}` };
  }
  return parseResponseObject(value);
}

/**
 * Validates and reads one chunk or response object. The choice read is `choices[0]` (AIPerf's rule); the shape,
 * not the `object` field, says whether it is chat (`delta`/`message`) or completions (`text`), since several
 * servers omit or misspell `object`. A field that is present with the wrong type is a parse error rather than
 * silently read as empty, so a broken server shows up as errors instead of as missing tokens.
 */
export function parseResponseObject(value: unknown): ParseResult {
  if (!isPlainObject(value)) return { ok: false, message: `expected a JSON object, got ${describe(value)}` };
  const result: ParsedResponse = { content: "", reasoning: "" };

  const error = readError(value);
  if (error) {
    if (typeof error === "string") return { ok: false, message: error };
    result.error = error;
    return { ok: true, value: result };
  }

  const choices = value.choices;
  if (choices !== undefined && choices !== null) {
    if (!Array.isArray(choices))
      return { ok: false, message: `"choices" is ${describe(choices)}, not an array` };
    const choice: unknown = choices[0];
    if (choice !== undefined) {
      if (!isPlainObject(choice))
        return { ok: false, message: `"choices[0]" is ${describe(choice)}, not an object` };
      const read = readChoice(choice, result);
      if (read) return { ok: false, message: read };
    }
  }

  if (value.usage !== undefined && value.usage !== null) {
    const usage = readUsage(value.usage);
    if (typeof usage === "string") return { ok: false, message: usage };
    result.usage = usage;
  }
  return { ok: true, value: result };
}

/** Fills content, reasoning and finish reason from one choice; returns an error message or null. */
function readChoice(choice: Record<string, unknown>, out: ParsedResponse): string | null {
  const finish = choice.finish_reason;
  if (finish !== undefined && finish !== null) {
    if (typeof finish !== "string") return `"finish_reason" is ${describe(finish)}, not a string`;
    out.finishReason = finish;
  }
  const message = choice.delta ?? choice.message;
  if (message !== undefined && message !== null) {
    const where = choice.delta !== undefined && choice.delta !== null ? "delta" : "message";
    if (!isPlainObject(message)) return `"${where}" is ${describe(message)}, not an object`;
    const texts: Partial<Record<"content" | "reasoning_content" | "reasoning", string>> = {};
    for (const key of ["content", "reasoning_content", "reasoning"] as const) {
      const text = message[key];
      if (text === undefined || text === null) continue;
      if (typeof text !== "string") return `"${where}.${key}" is ${describe(text)}, not a string`;
      texts[key] = text;
    }
    out.content = texts.content ?? "";
    // Some vLLM versions send the same text under both names while renaming the field; count it once.
    out.reasoning = texts.reasoning_content || texts.reasoning || "";
    return null;
  }
  const text = choice.text;
  if (text !== undefined && text !== null) {
    if (typeof text !== "string") return `"text" is ${describe(text)}, not a string`;
    out.content = text;
  }
  return null;
}

function readUsage(usage: unknown): Usage | string {
  if (!isPlainObject(usage)) return `"usage" is ${describe(usage)}, not an object`;
  const out: Usage = {};
  const fields: [keyof Usage, unknown, string][] = [
    ["promptTokens", usage.prompt_tokens, "usage.prompt_tokens"],
    ["completionTokens", usage.completion_tokens, "usage.completion_tokens"],
  ];
  for (const [detailsKey, field, name] of [
    ["completion_tokens_details", "reasoning_tokens", "reasoningTokens"],
    ["prompt_tokens_details", "cached_tokens", "cachedTokens"],
  ] as const) {
    const details = usage[detailsKey];
    if (details === undefined || details === null) continue;
    if (!isPlainObject(details)) return `"usage.${detailsKey}" is ${describe(details)}, not an object`;
    fields.push([name, details[field], `usage.${detailsKey}.${field}`]);
  }
  for (const [key, raw, name] of fields) {
    if (raw === undefined || raw === null) continue;
    if (typeof raw !== "number" || !Number.isSafeInteger(raw) || raw < 0) {
      return `"${name}" is ${describe(raw)}, not a non-negative integer`;
    }
    out[key] = raw;
  }
  return out;
}

/**
 * The error a chunk reports: `{"error": {...}}` or `{"error": "text"}` (OpenAI, vLLM, SGLang streams) or a
 * top-level `{"object": "error", "message": ...}` (vLLM's older ErrorResponse). Returns a string when the error
 * object itself is malformed, and undefined when the chunk is not an error.
 */
function readError(value: Record<string, unknown>): ServerErrorInfo | string | undefined {
  let source: unknown;
  if (value.error !== undefined && value.error !== null) source = value.error;
  else if (value.object === "error") source = value;
  else return undefined;
  if (typeof source === "string") return { message: source };
  if (!isPlainObject(source)) return `"error" is ${describe(source)}, not an object or string`;
  const info: ServerErrorInfo = {
    message: typeof source.message === "string" ? source.message : excerpt(JSON.stringify(source)),
  };
  const code = source.code;
  if (typeof code === "number" && Number.isSafeInteger(code)) info.code = code;
  else if (typeof code === "string" && /^\d{1,9}$/.test(code)) info.code = Number(code);
  if (typeof source.type === "string" && source.type !== "") info.type = source.type;
  return info;
}

const EXCERPT_CHARS = 200;

/** The start of a long text, for error messages that must stay one readable line. */
export function excerpt(text: string, max = EXCERPT_CHARS): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  if (typeof v === "string") return `the string ${JSON.stringify(excerpt(v, 40))}`;
  return `${typeof v} ${String(v)}`;
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
