import { ApiError, invalidParam } from "./openai-errors.ts";

export type Endpoint = "chat" | "completions";

/** A prompt as text to tokenize, or as token ids the client already has (completions only). */
export type Prompt = { text: string } | { tokenIds: readonly number[] };

/** What the mock engine needs from a validated request body. */
export interface ParsedRequest {
  endpoint: Endpoint;
  prompt: Prompt;
  stream: boolean;
  /** `stream_options.include_usage`: a usage chunk before `[DONE]`. */
  includeUsage: boolean;
  /** Tokens to generate: the mock has no EOS, so every request generates exactly its limit. */
  maxTokens: number;
  /** vLLM's `return_token_ids`: the prompt's and each chunk's token ids in the response. */
  returnTokenIds: boolean;
}

export interface ParseOptions {
  /** The one model name the server answers to. */
  servedModel: string;
  /** Output length when the body sets neither `max_completion_tokens` nor `max_tokens`. */
  defaultMaxTokens: number;
}

const CHAT_ROLES = new Set(["system", "developer", "user", "assistant", "tool", "function"]);

/** Largest token id accepted in a token-id prompt: block hashing writes ids as u32. */
const MAX_TOKEN_ID = 0xffff_ffff;

const describe = (v: unknown): string => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function wrongType(param: string, expected: string, v: unknown): ApiError {
  return invalidParam(param, `'${param}' must be ${expected}, got ${describe(v)}`, "invalid_type");
}

/** An optional field: absent and `null` both mean "not set", as in OpenAI's API. */
function optional<T>(
  body: Record<string, unknown>,
  key: string,
  check: (v: unknown) => v is T,
  expected: string,
  param = key,
): T | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (!check(v)) throw wrongType(param, expected, v);
  return v;
}

const isBool = (v: unknown): v is boolean => typeof v === "boolean";
const isInt = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v);

function optionalInt(body: Record<string, unknown>, key: string, min: number): number | undefined {
  const v = optional(body, key, isInt, "an integer");
  if (v !== undefined && v < min) throw invalidParam(key, `'${key}' must be at least ${min}, got ${v}`);
  return v;
}

/** Text of one chat message's `content`: a string, or a list of parts whose text parts are concatenated. */
function contentText(content: unknown, at: string, required: boolean): string {
  if (content === undefined || content === null) {
    if (required)
      throw invalidParam(at, `'${at}' is required for user messages`, "missing_required_parameter");
    return "";
  }
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) throw wrongType(at, "a string or a list of content parts", content);
  let text = "";
  content.forEach((part, i) => {
    const where = `${at}[${i}]`;
    if (!isRecord(part) || typeof part.type !== "string")
      throw invalidParam(where, `'${where}' must be a content part with a string 'type'`, "invalid_type");
    // Images and audio cost the mock nothing: it models text prompts only.
    if (part.type !== "text") return;
    if (typeof part.text !== "string") throw wrongType(`${where}.text`, "a string", part.text);
    text += part.text;
  });
  return text;
}

/**
 * The prompt of a chat request: the user messages' text, concatenated with no separator and no chat template.
 * That is what AIPerf tokenizes to count a request's input length, so the server's `prompt_tokens` and the
 * benchmark's ISL agree (a real server's count is larger by the template and role tokens).
 */
function chatPrompt(messages: unknown): Prompt {
  if (!Array.isArray(messages)) throw wrongType("messages", "a list of messages", messages);
  if (messages.length === 0) throw invalidParam("messages", "'messages' must contain at least one message");
  let text = "";
  messages.forEach((m, i) => {
    const at = `messages[${i}]`;
    if (!isRecord(m)) throw wrongType(at, "an object", m);
    if (typeof m.role !== "string") throw wrongType(`${at}.role`, "a string", m.role);
    if (!CHAT_ROLES.has(m.role))
      throw invalidParam(
        `${at}.role`,
        `'${at}.role' must be one of ${[...CHAT_ROLES].join(", ")}, got ${JSON.stringify(m.role)}`,
      );
    const part = contentText(m.content, `${at}.content`, m.role === "user");
    if (m.role === "user") text += part;
  });
  return { text };
}

function tokenIds(v: readonly unknown[], at: string): number[] {
  v.forEach((id, i) => {
    if (!isInt(id) || id < 0 || id > MAX_TOKEN_ID)
      throw invalidParam(at, `'${at}[${i}]' must be a token id (an integer from 0 to ${MAX_TOKEN_ID})`);
  });
  return v as number[];
}

/** A completions `prompt`: a string, a token-id list, or a one-element list of either (AIPerf sends `[text]`). */
function completionPrompt(prompt: unknown): Prompt {
  if (typeof prompt === "string") return { text: prompt };
  if (!Array.isArray(prompt))
    throw wrongType("prompt", "a string, a list of strings or a list of token ids", prompt);
  if (prompt.length === 0) throw invalidParam("prompt", "'prompt' must not be an empty list");
  if (typeof prompt[0] === "number") return { tokenIds: tokenIds(prompt, "prompt") };
  if (prompt.length > 1)
    throw invalidParam(
      "prompt",
      `'prompt' lists ${prompt.length} prompts; this server takes one prompt per request`,
      "unsupported_value",
    );
  const only = prompt[0];
  if (typeof only === "string") return { text: only };
  if (Array.isArray(only) && only.length > 0) return { tokenIds: tokenIds(only, "prompt[0]") };
  throw invalidParam(
    "prompt[0]",
    "'prompt[0]' must be a string or a non-empty list of token ids",
    "invalid_type",
  );
}

/**
 * Validates an OpenAI chat-completions or completions body. Throws ApiError: 400 for a malformed field (with
 * `param` naming it), 404 `model_not_found` for a model the server does not serve. Fields the mock has no use for
 * (temperature, seed, ...) are accepted and ignored, as a real server would honour them without changing timing.
 */
export function parseRequestBody(endpoint: Endpoint, body: unknown, opts: ParseOptions): ParsedRequest {
  if (!isRecord(body))
    throw new ApiError(400, `the request body must be a JSON object, got ${describe(body)}`);
  if (body.model === undefined || body.model === null)
    throw invalidParam("model", "'model' is required", "missing_required_parameter");
  if (typeof body.model !== "string") throw wrongType("model", "a string", body.model);
  if (body.model !== opts.servedModel)
    throw new ApiError(
      404,
      `The model '${body.model}' does not exist; this server serves '${opts.servedModel}'`,
      { type: "invalid_request_error", param: "model", code: "model_not_found" },
    );

  const key = endpoint === "chat" ? "messages" : "prompt";
  if (body[key] === undefined || body[key] === null)
    throw invalidParam(key, `'${key}' is required`, "missing_required_parameter");
  const prompt = endpoint === "chat" ? chatPrompt(body.messages) : completionPrompt(body.prompt);

  const stream = optional(body, "stream", isBool, "a boolean") ?? false;
  const streamOptions = optional(body, "stream_options", isRecord, "an object");
  if (streamOptions && !stream)
    throw invalidParam("stream_options", "'stream_options' is only allowed when 'stream' is true");
  const includeUsage = streamOptions
    ? (optional(streamOptions, "include_usage", isBool, "a boolean", "stream_options.include_usage") ?? false)
    : false;

  const n = optionalInt(body, "n", 1);
  if (n !== undefined && n !== 1)
    throw invalidParam("n", `'n' must be 1 (one choice per request), got ${n}`, "unsupported_value");

  // `max_completion_tokens` supersedes the deprecated `max_tokens` in OpenAI's chat API; either is read anywhere.
  const maxCompletion = optionalInt(body, "max_completion_tokens", 1);
  const maxLegacy = optionalInt(body, "max_tokens", 1);
  const maxTokens = maxCompletion ?? maxLegacy ?? opts.defaultMaxTokens;
  const minTokens = optionalInt(body, "min_tokens", 0);
  if (minTokens !== undefined && minTokens > maxTokens)
    throw invalidParam("min_tokens", `'min_tokens' (${minTokens}) exceeds the output limit (${maxTokens})`);
  // The mock never stops early, so it already behaves as `ignore_eos: true`; the flag is only type-checked.
  optional(body, "ignore_eos", isBool, "a boolean");

  const returnTokenIds = optional(body, "return_token_ids", isBool, "a boolean") ?? false;

  return { endpoint, prompt, stream, includeUsage, maxTokens, returnTokenIds };
}
