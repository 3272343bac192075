import { Readable } from "node:stream";
import type { ServelabError } from "../errors.ts";
import { writeFileAtomic } from "../io/atomic-write.ts";

/** AIPerf's file of the payloads it sent. */
export const INPUTS_JSON = "inputs.json";

const indent = (text: string, by: string) => text.replaceAll("\n", `\n${by}`);

/**
 * Streams AIPerf's `inputs.json` (`{"data": [{"session_id", "payloads": [body]}]}`, indent 2 throughout) while a
 * benchmark sends: each request's body is added when it goes out and formatted a moment later, off the path of the
 * send that follows, so the file never holds more than what is waiting for the disk and prompts of a long trace are
 * not kept in memory. The file appears, complete, only at `close` (written to a temporary file and renamed).
 */
export class InputsFileWriter {
  readonly file: string;
  private readonly source = new Readable({ objectMode: true, read() {} });
  private readonly done: Promise<void>;
  private failure: ServelabError | null = null;
  private entries = 0;
  private pending: [sessionId: string, body: string][] = [];
  private scheduled: NodeJS.Immediate | null = null;

  constructor(file: string) {
    this.file = file;
    this.done = writeFileAtomic(file, this.source).catch((e: ServelabError) => {
      this.failure = e;
    });
    this.source.push('{\n  "data": [');
  }

  /** Adds one session's request body (a JSON text, as sent). */
  add(sessionId: string, body: string): void {
    if (this.failure) return;
    this.pending.push([sessionId, body]);
    this.scheduled ??= setImmediate(() => this.drain());
  }

  private drain(): void {
    this.scheduled = null;
    for (const [sessionId, body] of this.pending) {
      const payload = indent(JSON.stringify(JSON.parse(body), null, 2), "        ");
      this.source.push(
        `${this.entries++ === 0 ? "" : ","}\n    {\n      "session_id": ${JSON.stringify(sessionId)},\n` +
          `      "payloads": [\n        ${payload}\n      ]\n    }`,
      );
    }
    this.pending = [];
  }

  /** Gives the file up: its temporary file is removed and `inputs.json` is left as it was. */
  abort(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.pending = [];
    this.source.destroy(new Error("the run stopped before inputs.json was complete"));
  }

  /** Ends the document and waits until it is in place. */
  async close(): Promise<void> {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.drain();
    this.source.push(this.entries === 0 ? "]\n}\n" : "\n  ]\n}\n");
    this.source.push(null);
    await this.done;
    if (this.failure) throw this.failure;
  }
}
