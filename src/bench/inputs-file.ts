import { Readable } from "node:stream";
import type { ServelabError } from "../errors.ts";
import { writeFileAtomic } from "../io/atomic-write.ts";

/** AIPerf's file of the payloads it sent. */
export const INPUTS_JSON = "inputs.json";

const indent = (text: string, by: string) => text.replaceAll("\n", `\n${by}`);

/**
 * Streams AIPerf's `inputs.json` (`{"data": [{"session_id", "payloads": [body]}]}`, indent 2) while a benchmark
 * sends: each request's body is added, exactly as sent, when it goes out, so the file never holds more than what
 * is waiting for the disk, and prompts of a long trace are not kept in memory. The file appears, complete, only
 * at `close` (written to a temporary file and renamed).
 */
export class InputsFileWriter {
  readonly file: string;
  private readonly source = new Readable({ objectMode: true, read() {} });
  private readonly done: Promise<void>;
  private failure: ServelabError | null = null;
  private entries = 0;

  constructor(file: string) {
    this.file = file;
    this.done = writeFileAtomic(file, this.source).catch((e: ServelabError) => {
      this.failure = e;
    });
    this.source.push('{\n  "data": [');
  }

  /** Adds one session's request body (a JSON text, written verbatim). */
  add(sessionId: string, body: string): void {
    if (this.failure) return;
    const payload = indent(body, "        ");
    this.source.push(
      `${this.entries++ === 0 ? "" : ","}\n    {\n      "session_id": ${JSON.stringify(sessionId)},\n` +
        `      "payloads": [\n        ${payload}\n      ]\n    }`,
    );
  }

  /** Ends the document and waits until it is in place. */
  async close(): Promise<void> {
    this.source.push(this.entries === 0 ? "]\n}\n" : "\n  ]\n}\n");
    this.source.push(null);
    await this.done;
    if (this.failure) throw this.failure;
  }
}
