import type { ServerResponse } from "node:http";
import type { Dispatcher } from "undici";
import { SseParser } from "../../loadgen/sse-parser.ts";
import type { Endpoint } from "../openai-request.ts";

/*
 * Request migration (Dynamo's `--migration-limit`, live-frontend §2.1, §2.7) over plain HTTP: the frontend asks the
 * worker for token ids (vLLM's `return_token_ids`), keeps the prompt's and the generated ones, and when the worker
 * fails — the connection refused or reset, the stream closed without a finish reason, a stream timeout — re-issues
 * the request to another worker as a completions request whose prompt is the prompt's ids plus the generated ids,
 * with the output limit reduced by what was generated. The client's stream goes on under the first response's id,
 * in the client's own chunk format, without the token ids it did not ask for.
 */

type Json = Record<string, unknown>;

/** One upstream attempt, as the migrating relay sees it. */
export interface Attempt {
  workerId: string;
  response: Dispatcher.ResponseData;
}

/** Why a worker failed a request, and whether the request may move to another worker. */
export class WorkerFailure extends Error {
  constructor(
    message: string,
    readonly workerId: string,
    readonly kind: "unreachable" | "stream_cut" | "timeout" | "http_error",
    readonly status?: number,
  ) {
    super(message);
  }

  /** 4xx answers are the client's to see; everything else is the worker's fault. */
  get migratable(): boolean {
    return this.kind !== "http_error" || (this.status ?? 500) >= 500;
  }
}

export interface MigrationState {
  endpoint: Endpoint;
  /** The client's body, as parsed. */
  original: Json;
  maxTokens: number;
  /** The prompt's token ids, as the frontend counted them (replaced by the worker's when it returns its own). */
  promptIds: number[];
  generated: number[];
  /** The first response's id and creation time, kept on every chunk the client sees. */
  head: { id: string; created: number; model: string } | null;
  finished: boolean;
  migrations: number;
  sawRole: boolean;
}

export function newMigrationState(
  endpoint: Endpoint,
  original: Json,
  maxTokens: number,
  promptIds: ArrayLike<number>,
): MigrationState {
  return {
    endpoint,
    original,
    maxTokens,
    promptIds: Array.from(promptIds),
    generated: [],
    head: null,
    finished: false,
    migrations: 0,
    sawRole: false,
  };
}

const CONTINUATION_DROPPED = new Set([
  "messages",
  "prompt",
  "max_tokens",
  "max_completion_tokens",
  "min_tokens",
  "min_completion_tokens",
  "stream_options",
  "n",
]);

/** The body of the first attempt: the client's, asking for token ids. */
export function firstBody(s: MigrationState): Json {
  return { ...s.original, return_token_ids: true };
}

/**
 * The body that continues the request elsewhere: a completions request over the prompt's and the generated ids,
 * with the output limit (and a minimum, if any) reduced by what was generated; sampling fields are kept.
 */
export function continuationBody(s: MigrationState): Json {
  const body: Json = {};
  for (const [k, v] of Object.entries(s.original)) if (!CONTINUATION_DROPPED.has(k)) body[k] = v;
  const left = s.maxTokens - s.generated.length;
  body.prompt = [...s.promptIds, ...s.generated];
  body.max_tokens = left;
  const min = s.original.min_tokens;
  if (typeof min === "number" && min > s.generated.length) body.min_tokens = min - s.generated.length;
  body.stream = s.original.stream === true;
  if (body.stream) body.stream_options = { include_usage: true };
  body.return_token_ids = true;
  return body;
}

const clientWantsIds = (s: MigrationState) => s.original.return_token_ids === true;
const includeUsage = (s: MigrationState) =>
  (s.original.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;

/**
 * Rewrites one upstream chunk for the client and records its token ids: the first response's id and model on every
 * chunk, chat deltas for a chat client whatever the worker answered (a continuation is a completions request), no
 * token ids unless the client asked, and usage counted against the original prompt. Returns null for a chunk the
 * client must not see (a continuation's usage when the client did not ask for usage).
 */
export function rewriteChunk(s: MigrationState, chunk: Json): Json | null {
  if (Array.isArray(chunk.prompt_token_ids) && s.migrations === 0)
    s.promptIds = chunk.prompt_token_ids as number[];
  s.head ??= {
    id: String(chunk.id ?? ""),
    created: Number(chunk.created ?? 0),
    model: String(chunk.model ?? s.original.model ?? ""),
  };
  const out: Json = {
    id: s.head.id,
    object: s.endpoint === "chat" ? "chat.completion.chunk" : "text_completion",
    created: s.head.created,
    model: s.head.model,
  };
  if (clientWantsIds(s) && s.migrations === 0 && chunk.prompt_token_ids !== undefined)
    out.prompt_token_ids = chunk.prompt_token_ids;
  const choices = Array.isArray(chunk.choices) ? (chunk.choices as Json[]) : [];
  out.choices = choices.map((c) => {
    const ids = Array.isArray(c.token_ids) ? (c.token_ids as number[]) : [];
    s.generated.push(...ids);
    if (c.finish_reason !== null && c.finish_reason !== undefined) s.finished = true;
    const text =
      typeof c.text === "string" ? c.text : ((c.delta as Json | undefined)?.content as string | undefined);
    const choice: Json =
      s.endpoint === "chat"
        ? {
            index: 0,
            delta: s.sawRole ? { content: text ?? "" } : { role: "assistant", content: text ?? "" },
            logprobs: c.logprobs ?? null,
            finish_reason: c.finish_reason ?? null,
          }
        : {
            index: 0,
            text: text ?? "",
            logprobs: c.logprobs ?? null,
            finish_reason: c.finish_reason ?? null,
          };
    s.sawRole = true;
    if (clientWantsIds(s)) choice.token_ids = ids;
    return choice;
  });
  if (chunk.usage !== undefined && chunk.usage !== null) {
    if (!includeUsage(s)) return choices.length === 0 ? null : out;
    const u = chunk.usage as Json;
    const prompt = s.promptIds.length;
    out.usage = {
      ...u,
      prompt_tokens: prompt,
      completion_tokens: s.generated.length,
      total_tokens: prompt + s.generated.length,
    };
  } else if (includeUsage(s)) out.usage = null;
  return out;
}

/**
 * Relays one upstream SSE stream to the client through `rewriteChunk`, counting tokens for the metrics. Resolves
 * when the stream ended with `[DONE]`; throws WorkerFailure when it was cut or went silent first.
 */
export async function relayMigratingStream(
  s: MigrationState,
  attempt: Attempt,
  res: ServerResponse,
  hooks: { tokens(count: number): void; aborted(): boolean },
): Promise<void> {
  const parser = new SseParser();
  let done = false;
  try {
    for await (const raw of attempt.response.body) {
      for (const ev of parser.feed(raw as Buffer, 0)) {
        if (ev.event === "error")
          throw new WorkerFailure(
            `worker ${attempt.workerId} sent an error event: ${ev.data}`,
            attempt.workerId,
            "stream_cut",
          );
        if (ev.data === "[DONE]") {
          done = true;
          continue;
        }
        let chunk: Json;
        try {
          chunk = JSON.parse(ev.data) as Json;
        } catch {
          throw new WorkerFailure(
            `worker ${attempt.workerId} sent an event that is not JSON`,
            attempt.workerId,
            "stream_cut",
          );
        }
        if (chunk.error !== undefined)
          throw new WorkerFailure(
            `worker ${attempt.workerId}: ${JSON.stringify(chunk.error)}`,
            attempt.workerId,
            "stream_cut",
          );
        const before = s.generated.length;
        const out = rewriteChunk(s, chunk);
        if (out === null) continue;
        const tokens = s.generated.length - before;
        if (tokens > 0) hooks.tokens(tokens);
        await write(res, `data: ${JSON.stringify(out)}\n\n`);
        if (hooks.aborted()) return;
      }
    }
  } catch (e) {
    if (e instanceof WorkerFailure || hooks.aborted()) throw e;
    const code = (e as { code?: string }).code ?? "";
    const kind = code === "UND_ERR_BODY_TIMEOUT" ? "timeout" : "stream_cut";
    throw new WorkerFailure(`worker ${attempt.workerId}: ${(e as Error).message}`, attempt.workerId, kind);
  }
  if (!done && !s.finished)
    throw new WorkerFailure(
      `worker ${attempt.workerId} closed the stream before it finished`,
      attempt.workerId,
      "stream_cut",
    );
}

function write(res: ServerResponse, text: string): Promise<void> {
  if (res.write(text)) return Promise.resolve();
  return new Promise((resolve) => {
    const go = () => {
      res.off("drain", go);
      res.off("close", go);
      resolve();
    };
    res.once("drain", go);
    res.once("close", go);
  });
}
