/**
 * The thread side of inputs-file.ts: lays each body out as AIPerf's `inputs.json` does (indent 2) and writes it to
 * the temporary file, in request order, with blocking writes that block only this thread. Runs at the lowest
 * priority, so that on a small machine it takes no core from the sending thread or the server under test.
 */
import { closeSync, openSync, writeSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import { lowerThisThreadPriority } from "../thread-priority.ts";
import type { InputsMessage } from "./inputs-file.ts";
import { indentCompactJson } from "./json-indent.ts";

lowerThisThreadPriority();
const { tmp } = (workerData as { data: { tmp: string } }).data;
const port = parentPort!;
let fd: number | null = null;
let failure: Error | null = null;
let entries = 0;
let next = 0;
const waiting = new Map<number, { sessionId: string; body: string | Uint8Array }>();

const write = (chunk: string | Uint8Array) => {
  const buf = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
  for (let at = 0; at < buf.length; ) at += writeSync(fd!, buf, at);
};
const emit = ({ sessionId, body }: { sessionId: string; body: string | Uint8Array }) => {
  const bytes = typeof body === "string" ? Buffer.from(body) : body;
  write(
    `${entries++ === 0 ? "" : ","}\n    {\n      "session_id": ${JSON.stringify(sessionId)},\n      "payloads": [\n        `,
  );
  write(indentCompactJson(bytes, "        "));
  write("\n      ]\n    }");
};
const finish = (reply: { kind: "done" } | { kind: "aborted" }) => {
  try {
    if (fd !== null) closeSync(fd);
  } catch (e) {
    failure ??= e as Error;
  }
  fd = null;
  port.postMessage(failure ? { kind: "failed", message: failure.message } : reply);
};

try {
  fd = openSync(tmp, "wx");
  write('{\n  "data": [');
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
    if (failure) {
      if (m.kind === "end") finish({ kind: "done" });
      return;
    }
    if (m.kind === "add") {
      for (const item of m.items) waiting.set(item.index, item);
      while (waiting.has(next)) {
        const e = waiting.get(next)!;
        waiting.delete(next);
        next++;
        emit(e);
      }
    } else {
      for (const i of [...waiting.keys()].sort((a, b) => a - b)) emit(waiting.get(i)!);
      waiting.clear();
      write(entries === 0 ? "]\n}\n" : "\n  ]\n}\n");
      finish({ kind: "done" });
    }
  } catch (e) {
    failure = e as Error;
    if (m.kind === "end") finish({ kind: "done" });
  }
});
