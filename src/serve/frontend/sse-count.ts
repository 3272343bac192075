const DATA = Buffer.from("data:");
const DONE = Buffer.from("[DONE]");
const EVENT_ERROR = Buffer.from("event: error");
/** A chunk with no choices carries usage only (OpenAI's final `include_usage` chunk), not tokens. */
const NO_CHOICES = Buffer.from('"choices":[]');
const NL = 0x0a;
const SPACE = 0x20;
/** A line longer than this is classified from its start (a token chunk) instead of being held until its end. */
const MAX_HELD_LINE = 64 * 1024;

function matchAt(buf: Buffer, at: number, what: Buffer): boolean {
  if (at + what.length > buf.length) return false;
  for (let k = 0; k < what.length; k++) if (buf[at + k] !== what[k]) return false;
  return true;
}

/**
 * Counts the token-carrying `data:` events of an SSE byte stream, chunk by chunk, without parsing their JSON: the
 * frontend relays bytes as they come and only needs to know when tokens arrived. A line is classified once it is
 * complete (an incomplete last line waits for the next chunk); `[DONE]` is the end marker, a usage-only chunk
 * (`"choices":[]`) is no token, `event: error` marks an in-stream failure. JSON never holds a raw newline, so a
 * line is always one field.
 */
export class SseEventCounter {
  /** The incomplete last line of the previous chunk, or null once a long line was classified early. */
  private held: Buffer | null = null;
  /** Inside a long line already classified: skip to its end. */
  private skipping = false;
  done = false;
  sawError = false;

  /** Token-carrying data events completed in this chunk. */
  feed(chunk: Buffer): number {
    let count = 0;
    let i = 0;
    if (this.skipping) {
      const nl = chunk.indexOf(NL);
      if (nl < 0) return 0;
      this.skipping = false;
      i = nl + 1;
    }
    let buf = chunk;
    if (this.held) {
      buf = Buffer.concat([this.held, chunk.subarray(i)]);
      this.held = null;
      i = 0;
    }
    while (i < buf.length) {
      const nl = buf.indexOf(NL, i);
      if (nl < 0) {
        if (buf.length - i > MAX_HELD_LINE) {
          count += this.classify(buf, i, buf.length);
          this.skipping = true;
        } else this.held = Buffer.from(buf.subarray(i));
        break;
      }
      count += this.classify(buf, i, nl);
      i = nl + 1;
    }
    return count;
  }

  private classify(buf: Buffer, start: number, end: number): number {
    if (matchAt(buf, start, DATA)) {
      let v = start + DATA.length;
      if (buf[v] === SPACE) v++;
      if (matchAt(buf, v, DONE)) {
        this.done = true;
        return 0;
      }
      const usageOnly = buf.subarray(v, end).includes(NO_CHOICES);
      return usageOnly ? 0 : 1;
    }
    if (matchAt(buf, start, EVENT_ERROR)) this.sawError = true;
    return 0;
  }
}
