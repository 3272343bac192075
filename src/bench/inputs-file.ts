import { rename, rm } from "node:fs/promises";
import { Worker } from "node:worker_threads";
import { ServelabError } from "../errors.ts";
import { tempPathFor } from "../io/atomic-write.ts";
import { LOWER_THREAD_PRIORITY_SOURCE } from "../thread-priority.ts";

/** AIPerf's file of the payloads it sent. */
export const INPUTS_JSON = "inputs.json";

/*
 * Formatting runs in a thread of its own: re-parsing and re-indenting a 40 k-token body takes over a millisecond,
 * and on the load generator's event loop it would sit between a send and undici's write of it, or between a chunk's
 * arrival and its time stamp. The thread is plain JavaScript evaluated from a string (no TypeScript loader needed);
 * it writes with blocking calls, which block only itself, and runs at the lowest priority, so that on a small machine
 * it takes no core from the sending thread or the server under test.
 */
const THREAD_SOURCE = `${LOWER_THREAD_PRIORITY_SOURCE}
const { parentPort, workerData } = require("node:worker_threads");
const fs = require("node:fs");
const utf8 = new TextDecoder();
let fd = null;
let failure = null;
let entries = 0;
let next = 0;
const waiting = new Map();
const write = (text) => {
  const buf = Buffer.from(text);
  for (let at = 0; at < buf.length; ) at += fs.writeSync(fd, buf, at);
};
const emit = ({ sessionId, body }) => {
  const text = typeof body === "string" ? body : utf8.decode(body);
  const payload = JSON.stringify(JSON.parse(text), null, 2).replaceAll("\\n", "\\n        ");
  write((entries++ === 0 ? "" : ",") + "\\n    {\\n      \\"session_id\\": " + JSON.stringify(sessionId) +
    ",\\n      \\"payloads\\": [\\n        " + payload + "\\n      ]\\n    }");
};
const finish = (reply) => {
  try {
    if (fd !== null) fs.closeSync(fd);
  } catch (e) {
    failure = failure || e;
  }
  fd = null;
  parentPort.postMessage(failure ? { kind: "failed", message: String(failure.message || failure) } : reply);
};
try {
  fd = fs.openSync(workerData.tmp, "wx");
  write('{\\n  "data": [');
} catch (e) {
  failure = e;
}
parentPort.on("message", (m) => {
  if (m.kind === "abort") {
    failure = null;
    finish({ kind: "aborted" });
    return;
  }
  try {
    if (failure) {
      if (m.kind === "end") finish({ kind: "done" });
      return;
    }
    if (m.kind === "add") {
      for (const item of m.items) waiting.set(item.index, item);
      while (waiting.has(next)) {
        const e = waiting.get(next);
        waiting.delete(next);
        next++;
        emit(e);
      }
    } else if (m.kind === "end") {
      for (const i of [...waiting.keys()].sort((a, b) => a - b)) emit(waiting.get(i));
      waiting.clear();
      write(entries === 0 ? "]\\n}\\n" : "\\n  ]\\n}\\n");
      finish({ kind: "done" });
    }
  } catch (e) {
    failure = e;
    if (m.kind === "end") finish({ kind: "done" });
  }
});
`;

const ADD_BATCH_MS = 20;

type Reply = { kind: "done" } | { kind: "aborted" } | { kind: "failed"; message: string };

/**
 * Writes AIPerf's `inputs.json` (`{"data": [{"session_id", "payloads": [body]}]}`, indent 2 throughout) while a
 * benchmark sends: each request's body is handed over once the request has finished (a copy of its bytes; the send
 * path does nothing for this file) and laid out in request order by a thread, so prompts of a long trace are not
 * kept in memory. The file appears, complete, only at `close` (a temporary file renamed into place; one left by a
 * killed process is removed by `removeStaleTemps`).
 */
export class InputsFileWriter {
  readonly file: string;
  private readonly tmp: string;
  private readonly thread: Worker;
  private readonly reply: Promise<Reply>;
  private ended = false;
  /** Bodies handed over together, one message per batch rather than one per request. */
  private batch: { index: number; sessionId: string; body: string | Uint8Array }[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(file: string) {
    this.file = file;
    this.tmp = tempPathFor(file);
    this.thread = new Worker(THREAD_SOURCE, { eval: true, execArgv: [], workerData: { tmp: this.tmp } });
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

  /** Gives the file up: its temporary file is removed and `inputs.json` is left as it was. */
  async abort(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    if (this.timer) clearTimeout(this.timer);
    this.thread.postMessage({ kind: "abort" });
    await this.reply;
    await this.thread.terminate();
    await rm(this.tmp, { force: true }).catch(() => {});
  }

  /** Ends the document and waits until it is in place. */
  async close(): Promise<void> {
    if (this.ended) throw new Error("inputs.json was already closed");
    this.flush();
    this.ended = true;
    this.thread.postMessage({ kind: "end" });
    const reply = await this.reply;
    await this.thread.terminate();
    try {
      if (reply.kind !== "done") throw new Error(reply.kind === "failed" ? reply.message : "aborted");
      await rename(this.tmp, this.file);
    } catch (e) {
      await rm(this.tmp, { force: true }).catch(() => {});
      throw new ServelabError("FILE_WRITE", `cannot write ${this.file}: ${(e as Error).message}`);
    }
  }
}
