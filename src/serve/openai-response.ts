import type { Endpoint } from "./openai-request.ts";

/**
 * The text of every generated token. One token of " token" is one token in the DeepSeek-V3 vocabulary and in the
 * common BPE vocabularies, and so is each repetition: a client that re-tokenizes the concatenated output (as AIPerf
 * does) counts exactly the tokens the engine generated.
 */
export const TOKEN_TEXT = " token";

/** Every response here stops at its token limit: the mock has no end-of-sequence token. */
const FINISH_REASON = "length";

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

export function usage(promptTokens: number, completionTokens: number, cachedTokens: number): Usage {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: cachedTokens },
  };
}

/** What every response of one request shares. */
export interface ResponseHead {
  endpoint: Endpoint;
  id: string;
  model: string;
  /** Unix seconds. */
  created: number;
}

/** `chatcmpl-` for chat, `cmpl-` for completions, as OpenAI names them. */
export function responseIdPrefix(endpoint: Endpoint): string {
  return endpoint === "chat" ? "chatcmpl-" : "cmpl-";
}

/**
 * The SSE chunk carrying token `index` (1-based) of `total`; the last one carries the finish reason. With
 * `include_usage`, OpenAI sends `usage: null` on every content chunk and the totals in a chunk of their own.
 */
export function tokenChunk(
  head: ResponseHead,
  index: number,
  total: number,
  includeUsage: boolean,
  ids?: TokenIds,
): string {
  const finish = index === total ? FINISH_REASON : null;
  const choice =
    head.endpoint === "chat"
      ? {
          index: 0,
          delta: index === 1 ? { role: "assistant", content: TOKEN_TEXT } : { content: TOKEN_TEXT },
          logprobs: null,
          finish_reason: finish,
          ...(ids ? { token_ids: [ids.token] } : {}),
        }
      : {
          index: 0,
          text: TOKEN_TEXT,
          logprobs: null,
          finish_reason: finish,
          ...(ids ? { token_ids: [ids.token] } : {}),
        };
  return sse({
    id: head.id,
    object: head.endpoint === "chat" ? "chat.completion.chunk" : "text_completion",
    created: head.created,
    model: head.model,
    // vLLM's `return_token_ids`: the prompt's ids ride on the first chunk, each chunk's own on its choice.
    ...(ids && index === 1 ? { prompt_token_ids: ids.prompt } : {}),
    choices: [choice],
    ...(includeUsage ? { usage: null } : {}),
  });
}

/** What `return_token_ids` adds: the prompt's token ids and the id every generated token has. */
export interface TokenIds {
  prompt: readonly number[];
  token: number;
}

/** The `stream_options.include_usage` chunk: no choices, only usage. */
export function usageChunk(head: ResponseHead, u: Usage): string {
  return sse({
    id: head.id,
    object: head.endpoint === "chat" ? "chat.completion.chunk" : "text_completion",
    created: head.created,
    model: head.model,
    choices: [],
    usage: u,
  });
}

export const DONE_EVENT = "data: [DONE]\n\n";

function sse(data: unknown): string {
  return `data: ${JSON.stringify(data)}\n\n`;
}

/** The non-streaming response: all `tokens` at once. */
export function completionBody(head: ResponseHead, tokens: number, u: Usage, ids?: TokenIds): string {
  const text = TOKEN_TEXT.repeat(tokens);
  const tokenIds = ids ? { token_ids: Array.from({ length: tokens }, () => ids.token) } : {};
  const choice =
    head.endpoint === "chat"
      ? {
          index: 0,
          message: { role: "assistant", content: text, refusal: null },
          logprobs: null,
          finish_reason: FINISH_REASON,
          ...tokenIds,
        }
      : { index: 0, text, logprobs: null, finish_reason: FINISH_REASON, ...tokenIds };
  return JSON.stringify({
    id: head.id,
    object: head.endpoint === "chat" ? "chat.completion" : "text_completion",
    created: head.created,
    model: head.model,
    ...(ids ? { prompt_token_ids: ids.prompt } : {}),
    choices: [choice],
    usage: u,
  });
}
