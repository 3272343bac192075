/**
 * The thread side of request-builder.ts: owns the tokenizer, the corpus and the prompt synthesizer; builds each
 * request's body as bytes (handed over without a copy), or counts tokens, at a lower priority than the sending
 * thread (see lowerThisThreadPriority).
 */
import { parentPort, workerData } from "node:worker_threads";
import { lowerThisThreadPriority } from "../thread-priority.ts";
import { buildRequestBody } from "./openai-request.ts";
import { loadCorpus, loadTokenizer, PromptSynthesizer } from "./prompts.ts";
import type { BuilderMessage, BuilderReply, CountItem, RequestBuilderOptions } from "./request-builder.ts";

// Below the sending thread, not at the bottom: in a run too long to build ahead, it must keep up with the sends.
lowerThisThreadPriority(10);
const opts = (workerData as { data: RequestBuilderOptions & { role: "build" | "count" } }).data;
const port = parentPort!;
const ready = (async () => {
  const tokenizer = await loadTokenizer(opts.tokenizer);
  const prompts = new PromptSynthesizer(tokenizer, await loadCorpus(opts.corpusDir), {
    blockSize: opts.blockSize,
    seed: opts.seed,
  });
  return { tokenizer, prompts };
})();
// A failed load (a missing corpus) is the answer to every request; it must not surface as an unhandled rejection.
ready.catch(() => {});

async function answer(m: BuilderMessage): Promise<BuilderReply> {
  const { tokenizer, prompts } = await ready;
  if (m.kind === "ready") return { id: m.id, ready: true };
  if (m.kind === "count") {
    const countOf = (item: CountItem) =>
      "text" in item
        ? item.text === ""
          ? 0
          : tokenizer.encode(item.text).length
        : prompts.promptLength(item.hash_ids, item.input_length);
    return { id: m.id, counts: m.items.map(countOf) };
  }
  const { row } = m;
  const prompt = row.text_input ?? prompts.prompt(row.hash_ids, row.input_length);
  const body = buildRequestBody({
    endpoint: opts.endpoint,
    model: m.model ?? opts.model,
    prompt,
    streaming: opts.streaming,
    ...(row.output_length > 0 ? { maxTokens: row.output_length } : {}),
    extraInputs: opts.extraInputs,
  });
  return { id: m.id, body: new TextEncoder().encode(JSON.stringify(body)) };
}

port.on("message", (m: BuilderMessage) => {
  answer(m).then(
    (reply) => port.postMessage(reply, "body" in reply ? [reply.body.buffer as ArrayBuffer] : []),
    (e: Error & { code?: string }) => port.postMessage({ id: m.id, error: e.message, code: e.code }),
  );
});
