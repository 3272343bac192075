import { availableParallelism } from "node:os";
import type { Worker } from "node:worker_threads";
import { type ErrorCode, ServelabError } from "../errors.ts";
import { startThread } from "../threads.ts";
import type { TraceRow } from "../trace/types.ts";
import type { EndpointKind } from "./openai-request.ts";

export interface RequestBuilderOptions {
  endpoint: EndpointKind;
  model: string;
  streaming: boolean;
  extraInputs: Readonly<Record<string, unknown>>;
  /** Prompt synthesis (see PromptSynthesizer). */
  blockSize: number;
  seed: number;
  /** The prompt corpus; default the one servelab ships. */
  corpusDir?: string | undefined;
  /** `--tokenizer`: a shipped name or a tokenizer.json on disk; default the shipped DeepSeek-V3 one. */
  tokenizer?: string | undefined;
  /**
   * `--record-processors`: threads that count tokens (responses, and prompts as AIPerf counts them: their text
   * encoded again). 0 counts responses in the building thread and takes a synthesized prompt's length as the row
   * asks for it. Default 1; at most one fewer than the cores, the sending thread needing one.
   */
  recordProcessors?: number | undefined;
}

/** A prompt to count: text as given, or a row's synthesized prompt. */
export type CountItem = { text: string } | { hash_ids: number[]; input_length: number };

export type BuilderMessage =
  | {
      kind: "build";
      id: number;
      row: Pick<TraceRow, "hash_ids" | "input_length" | "output_length" | "text_input">;
      /** The model the body names; default the builder's. */
      model?: string;
    }
  | { kind: "count"; id: number; items: CountItem[] }
  | { kind: "ready"; id: number };

export type BuilderReply =
  | { id: number; body: Uint8Array }
  | { id: number; counts: number[] }
  | { id: number; ready: true }
  | { id: number; error: string; code?: string };

type WithoutId<T> = T extends unknown ? Omit<T, "id"> : never;

/** How long a text waits to be counted with others: records reach the file soon after. */
const COUNT_BATCH_MS = 5;

/** How many counting threads `--record-processors N` gives on this machine (see RequestBuilderOptions). */
export function countingThreads(requested: number | undefined, cores = availableParallelism()): number {
  return Math.min(requested ?? 1, Math.max(1, cores - 1));
}

/** One thread of request-builder-thread.ts and the answers it owes. */
class TokenizerThread {
  private readonly thread: Worker;
  private readonly pending = new Map<number, { resolve(r: BuilderReply): void; reject(e: Error): void }>();
  private nextId = 0;
  private failure: Error | null = null;

  constructor(opts: RequestBuilderOptions, role: "build" | "count") {
    this.thread = startThread(new URL("./request-builder-thread.ts", import.meta.url), { ...opts, role });
    // Idle, it must not keep the process alive; with an answer outstanding, it must (see `ask`).
    this.thread.unref();
    this.thread.on("message", (reply: BuilderReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) this.thread.unref();
      if ("error" in reply) {
        p.reject(
          reply.code
            ? new ServelabError(reply.code as ErrorCode, reply.error)
            : new Error(`building a request failed: ${reply.error}`),
        );
      } else p.resolve(reply);
    });
    this.thread.on("error", (e) => this.fail(new Error(`the request builder failed: ${e.message}`)));
    this.thread.on("exit", (code) => this.fail(new Error(`the request builder exited (${code})`)));
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
  }

  ask(m: WithoutId<BuilderMessage>): Promise<BuilderReply> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.pending.size === 0) this.thread.ref();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.thread.postMessage({ ...m, id } as BuilderMessage);
    });
  }

  get outstanding(): number {
    return this.pending.size;
  }

  async close(): Promise<void> {
    this.fail(new Error("the request builder is closed"));
    await this.thread.terminate();
  }
}

export interface BuiltRequest {
  /** The JSON body, encoded. */
  body: Uint8Array;
}

/**
 * Builds request bodies and counts tokens for a load generator in threads of their own. The tokenizer is ~100 MB of
 * heap; on the thread that sends and stamps, every major garbage collection would mark it (pauses of 15–45 ms
 * measured), and building a 40 k-token prompt, or counting a long response, would stall the stamping of every
 * other response's chunks. Counting has threads apart from building (`recordProcessors`), so that encoding prompts
 * again does not hold up the bodies of the next requests.
 */
export class RequestBuilder {
  private readonly builder: TokenizerThread;
  private readonly counters: TokenizerThread[];
  private closed: Error | null = null;
  /** Items waiting to be counted, sent together: one message and one thread wake-up per batch, not per item. */
  private counting: { item: CountItem; resolve(n: number): void; reject(e: Error): void }[] = [];
  private countTimer: NodeJS.Timeout | null = null;

  constructor(opts: RequestBuilderOptions) {
    this.builder = new TokenizerThread(opts, "build");
    const n = opts.recordProcessors === 0 ? 0 : countingThreads(opts.recordProcessors);
    this.counters = Array.from({ length: n }, () => new TokenizerThread(opts, "count"));
  }

  async build(row: TraceRow, model?: string): Promise<BuiltRequest> {
    const { hash_ids, input_length, output_length, text_input } = row;
    const reply = await this.builder.ask({
      kind: "build",
      row: { hash_ids, input_length, output_length, ...(text_input !== undefined ? { text_input } : {}) },
      ...(model === undefined ? {} : { model }),
    });
    return reply as BuiltRequest;
  }

  /** Resolves once every thread has loaded its tokenizer and corpus, so that a run's clock does not include it. */
  async ready(): Promise<void> {
    await Promise.all([this.builder, ...this.counters].map((t) => t.ask({ kind: "ready" })));
  }

  /** The tokens of `text`; counted within COUNT_BATCH_MS, together with the other texts of that time. */
  count(text: string): Promise<number> {
    if (text === "") return Promise.resolve(0);
    return this.enqueue({ text });
  }

  /**
   * The row's prompt length as AIPerf reports it (the prompt's text encoded again), or, without counting threads,
   * the length the row asks for. A row's own `text_input` is always counted.
   */
  promptLength(row: Pick<TraceRow, "hash_ids" | "input_length" | "text_input">): Promise<number> {
    if (row.text_input !== undefined) return this.count(row.text_input);
    if (this.counters.length === 0) return Promise.resolve(row.input_length);
    return this.enqueue({ hash_ids: [...row.hash_ids], input_length: row.input_length });
  }

  private enqueue(item: CountItem): Promise<number> {
    if (this.closed) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => {
      this.counting.push({ item, resolve, reject });
      this.countTimer ??= setTimeout(() => this.flushCounts(), COUNT_BATCH_MS);
    });
  }

  private flushCounts(): void {
    this.countTimer = null;
    const batch = this.counting;
    this.counting = [];
    // The counter with the least outstanding work takes the batch.
    const thread =
      this.counters.length === 0
        ? this.builder
        : this.counters.reduce((a, b) => (b.outstanding < a.outstanding ? b : a));
    thread.ask({ kind: "count", items: batch.map((b) => b.item) }).then(
      (reply) => {
        const { counts } = reply as { counts: number[] };
        for (const [i, b] of batch.entries()) b.resolve(counts[i]!);
      },
      (e: Error) => {
        for (const b of batch) b.reject(e);
      },
    );
  }

  async close(): Promise<void> {
    if (this.countTimer) clearTimeout(this.countTimer);
    this.closed ??= new Error("the request builder is closed");
    for (const b of this.counting) b.reject(this.closed);
    this.counting = [];
    await Promise.all([this.builder, ...this.counters].map((t) => t.close()));
  }
}
