import { rename, rm } from "node:fs/promises";
import type { Worker } from "node:worker_threads";
import { ServelabError } from "../errors.ts";
import { tempPathFor } from "../io/atomic-write.ts";
import { startThread } from "../threads.ts";

/** AIPerf's file of the payloads it sent. */
export const INPUTS_JSON = "inputs.json";

/** Messages to the thread (inputs-thread.ts). */
export type InputsMessage =
  | { kind: "add"; items: { index: number; sessionId: string; body: string | Uint8Array }[] }
  | { kind: "end" }
  | { kind: "abort" };

const ADD_BATCH_MS = 20;

type Reply = { kind: "done" } | { kind: "aborted" } | { kind: "failed"; message: string };

/**
 * Writes AIPerf's `inputs.json` (`{"data": [{"session_id", "payloads": [body]}]}`, indent 2 throughout) for a
 * benchmark: each request's body is handed over once the request has finished (the send path does nothing for
 * this file) to a thread that spools it to disk as it is, so prompts of a long trace are not kept in memory, and
 * lays the spool out in request order when the run ends (inputs-thread.ts: re-indenting during the run would take
 * CPU from the sends). The file appears, complete, only at `close` (a temporary file renamed into place; the spool
 * and a temporary file left by a killed process are removed by `removeStaleTemps`).
 */
export class InputsFileWriter {
  readonly file: string;
  private readonly tmp: string;
  /** The bodies as sent, appended while the run lasts (see inputs-thread.ts). */
  private readonly spool: string;
  private readonly thread: Worker;
  private readonly reply: Promise<Reply>;
  private ended = false;
  /** Bodies handed over together, one message per batch rather than one per request. */
  private batch: { index: number; sessionId: string; body: string | Uint8Array }[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(file: string) {
    this.file = file;
    this.tmp = tempPathFor(file);
    this.spool = tempPathFor(`${file}.spool`);
    this.thread = startThread(new URL("./inputs-thread.ts", import.meta.url), {
      tmp: this.tmp,
      spool: this.spool,
    });
    this.reply = new Promise((resolve) => {
      this.thread.once("message", resolve);
      this.thread.once("error", (e) => resolve({ kind: "failed", message: e.message }));
      this.thread.once("exit", (code) =>
        resolve({ kind: "failed", message: `the inputs.json thread exited (${code})` }),
      );
    });
  }

  /** Adds the body (JSON, as sent) of the request with this send index; the file lists them by index. */
  add(index: number, sessionId: string, body: string | Uint8Array): void {
    if (this.ended) return;
    this.batch.push({ index, sessionId, body });
    this.timer ??= setTimeout(() => this.flush(), ADD_BATCH_MS);
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.batch.length > 0) this.thread.postMessage({ kind: "add", items: this.batch });
    this.batch = [];
  }

  private post(m: InputsMessage): void {
    this.thread.postMessage(m);
  }

  /** Gives the file up: its temporary file is removed and `inputs.json` is left as it was. */
  async abort(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    if (this.timer) clearTimeout(this.timer);
    this.post({ kind: "abort" });
    await this.reply;
    await this.thread.terminate();
    await Promise.all([this.tmp, this.spool].map((f) => rm(f, { force: true }).catch(() => {})));
  }

  /** Ends the document and waits until it is in place. */
  async close(): Promise<void> {
    if (this.ended) throw new Error("inputs.json was already closed");
    this.flush();
    this.ended = true;
    this.post({ kind: "end" });
    const reply = await this.reply;
    await this.thread.terminate();
    try {
      if (reply.kind !== "done") throw new Error(reply.kind === "failed" ? reply.message : "aborted");
      await rename(this.tmp, this.file);
    } catch (e) {
      await Promise.all([this.tmp, this.spool].map((f) => rm(f, { force: true }).catch(() => {})));
      throw new ServelabError("FILE_WRITE", `cannot write ${this.file}: ${(e as Error).message}`);
    }
  }
}
