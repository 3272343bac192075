/**
 * The thread side of inputs-file.ts. While the benchmark runs it only appends each body, as sent, to a spool file
 * (one write a batch); laying the bodies out as AIPerf's `inputs.json` does (indent 2, in request order) waits for
 * the end. Re-indenting a 240 KB body takes milliseconds of CPU, and on a small machine even a lowest-priority
 * thread doing that at 60 requests/s takes a core from the sending thread or the server under test at the moments
 * that make the tail of the measured latencies. Writes are blocking, and block only this thread.
 */
import { closeSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import { lowerThisThreadPriority } from "../thread-priority.ts";
import type { InputsMessage } from "./inputs-file.ts";
import { indentCompactJson } from "./json-indent.ts";

lowerThisThreadPriority();
const { tmp, spool } = (workerData as { data: { tmp: string; spool: string } }).data;
const port = parentPort!;
let spoolFd: number | null = null;
let spoolBytes = 0;
let failure: Error | null = null;
/** Where each request's body sits in the spool, by send index. */
const entries = new Map<number, { sessionId: string; at: number; length: number }>();

const writeAll = (fd: number, chunk: string | Uint8Array) => {
  const buf = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
  for (let at = 0; at < buf.length; ) at += writeSync(fd, buf, at);
};

function append(items: Extract<InputsMessage, { kind: "add" }>["items"]): void {
  const bodies = items.map((item) => (typeof item.body === "string" ? Buffer.from(item.body) : item.body));
  for (const [i, item] of items.entries()) {
    entries.set(item.index, { sessionId: item.sessionId, at: spoolBytes, length: bodies[i]!.length });
    spoolBytes += bodies[i]!.length;
  }
  writeAll(spoolFd!, Buffer.concat(bodies));
}

function writeDocument(): void {
  const fd = openSync(tmp, "wx");
  try {
    writeAll(fd, '{\n  "data": [');
    let n = 0;
    for (const index of [...entries.keys()].sort((a, b) => a - b)) {
      const { sessionId, at, length } = entries.get(index)!;
      const body = Buffer.allocUnsafe(length);
      for (let got = 0; got < length; ) {
        const k = readSync(spoolFd!, body, got, length - got, at + got);
        if (k === 0) throw new Error("the spool of request bodies ended early");
        got += k;
      }
      writeAll(
        fd,
        `${n++ === 0 ? "" : ","}\n    {\n      "session_id": ${JSON.stringify(sessionId)},\n      "payloads": [\n        `,
      );
      writeAll(fd, indentCompactJson(body, "        "));
      writeAll(fd, "\n      ]\n    }");
    }
    writeAll(fd, n === 0 ? "]\n}\n" : "\n  ]\n}\n");
  } finally {
    closeSync(fd);
  }
}

function finish(reply: { kind: "done" } | { kind: "aborted" }): void {
  try {
    if (spoolFd !== null) closeSync(spoolFd);
  } catch (e) {
    failure ??= e as Error;
  }
  spoolFd = null;
  rmSync(spool, { force: true });
  port.postMessage(failure ? { kind: "failed", message: failure.message } : reply);
}

try {
  spoolFd = openSync(spool, "wx+");
} catch (e) {
  failure = e as Error;
}

port.on("message", (m: InputsMessage) => {
  if (m.kind === "abort") {
    failure = null;
    finish({ kind: "aborted" });
    return;
  }
  try {
    if (!failure && m.kind === "add") append(m.items);
    else if (!failure) writeDocument();
  } catch (e) {
    failure = e as Error;
  }
  if (m.kind === "end") finish({ kind: "done" });
});
