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
}

export type BuilderMessage =
  | {
      kind: "build";
      id: number;
      row: Pick<TraceRow, "hash_ids" | "input_length" | "output_length" | "text_input">;
      /** The model the body names; default the builder's. */
      model?: string;
    }
  | { kind: "count"; id: number; texts: string[] }
  | { kind: "ready"; id: number };

export type BuilderReply =
  | { id: number; body: Uint8Array; inputTokens: number }
  | { id: number; counts: number[] }
  | { id: number; ready: true }
  | { id: number; error: string; code?: string };

/** How long a finished response's text waits to be counted with others: records reach the file soon after. */
const COUNT_BATCH_MS = 5;

export interface BuiltRequest {
  /** The JSON body, encoded. */
  body: Uint8Array;
  /** The prompt's tokens: the row's `input_length`, or its `text_input` counted. */
  inputTokens: number;
}

/**
 * Builds request bodies and counts tokens for a load generator in a thread of its own. The tokenizer is ~100 MB of
 * heap; on the thread that sends and stamps, every major garbage collection would mark it (pauses of 15–45 ms
 * measured), and building a 40 k-token prompt, or counting a long response, would stall the stamping of every
 * other response's chunks.
 */
export class RequestBuilder {
  private readonly thread: Worker;
  private readonly pending = new Map<number, { resolve(r: BuilderReply): void; reject(e: Error): void }>();
  private nextId = 0;
  private failure: Error | null = null;
  /** Texts waiting to be counted, sent together: one message and one thread wake-up per batch, not per text. */
  private counting: { text: string; resolve(n: number): void; reject(e: Error): void }[] = [];
  private countTimer: NodeJS.Timeout | null = null;

  constructor(opts: RequestBuilderOptions) {
    this.thread = startThread(new URL("./request-builder-thread.ts", import.meta.url), opts);
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
    const fail = (e: Error) => {
      this.failure ??= e;
      for (const p of this.pending.values()) p.reject(this.failure);
      this.pending.clear();
    };
    this.thread.on("error", (e) => fail(new Error(`the request builder failed: ${e.message}`)));
    this.thread.on("exit", (code) => fail(new Error(`the request builder exited (${code})`)));
  }

  private ask(m: BuilderMessage): Promise<BuilderReply> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.pending.size === 0) this.thread.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(m.id, { resolve, reject });
      this.thread.postMessage(m);
    });
  }

  async build(row: TraceRow, model?: string): Promise<BuiltRequest> {
    const { hash_ids, input_length, output_length, text_input } = row;
    const reply = await this.ask({
      kind: "build",
      id: this.nextId++,
      row: { hash_ids, input_length, output_length, ...(text_input !== undefined ? { text_input } : {}) },
      ...(model === undefined ? {} : { model }),
    });
    return reply as BuiltRequest;
  }

  /** Resolves once the tokenizer and the corpus are loaded, so that a run's clock does not include loading them. */
  async ready(): Promise<void> {
    await this.ask({ kind: "ready", id: this.nextId++ });
  }

  /** The tokens of `text`; counted within COUNT_BATCH_MS, together with the other texts of that time. */
  count(text: string): Promise<number> {
    if (text === "") return Promise.resolve(0);
    return new Promise((resolve, reject) => {
      this.counting.push({ text, resolve, reject });
      this.countTimer ??= setTimeout(() => this.flushCounts(), COUNT_BATCH_MS);
    });
  }

  private flushCounts(): void {
    this.countTimer = null;
    const batch = this.counting;
    this.counting = [];
    this.ask({ kind: "count", id: this.nextId++, texts: batch.map((b) => b.text) }).then(
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
    this.failure ??= new Error("the request builder is closed");
    for (const b of this.counting) b.reject(this.failure);
    this.counting = [];
    await this.thread.terminate();
  }
}
