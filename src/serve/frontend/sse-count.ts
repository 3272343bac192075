const DATA = Buffer.from("data:");
const DONE = Buffer.from("[DONE]");
const EVENT_ERROR = Buffer.from("event: error");
const NL = 0x0a;
const SPACE = 0x20;
/** Bytes needed at a line start to tell a token event from the end marker or an error event. */
const DECIDABLE = EVENT_ERROR.length;

function matchAt(buf: Buffer, at: number, what: Buffer): boolean {
  if (at + what.length > buf.length) return false;
  for (let k = 0; k < what.length; k++) if (buf[at + k] !== what[k]) return false;
  return true;
}

/**
 * Counts the `data:` events an SSE byte stream carries, chunk by chunk, without parsing their JSON: the frontend
 * relays bytes as they come and only needs to know when tokens arrived. A `data:` field counts when it starts a
 * line; `[DONE]` is the end marker, not a token; `event: error` marks an in-stream failure. JSON never holds a raw
 * newline, so a line start is always a field start.
 */
export class SseEventCounter {
  private atLineStart = true;
  /** The start of a line too short to classify yet. */
  private carry: Buffer | null = null;
  done = false;
  sawError = false;

  /** Token-carrying data events begun in this chunk. */
  feed(chunk: Buffer): number {
    const buf = this.carry ? Buffer.concat([this.carry, chunk]) : chunk;
    this.carry = null;
    let count = 0;
    let i = 0;
    let lineStart = this.atLineStart;
    while (i < buf.length) {
      const nl = buf.indexOf(NL, i);
      if (lineStart) {
        if (nl < 0 && buf.length - i < DECIDABLE) {
          this.carry = Buffer.from(buf.subarray(i));
          this.atLineStart = true;
          return count;
        }
        if (matchAt(buf, i, DATA)) {
          let v = i + DATA.length;
          if (buf[v] === SPACE) v++;
          if (matchAt(buf, v, DONE)) this.done = true;
          else count++;
        } else if (matchAt(buf, i, EVENT_ERROR)) {
          this.sawError = true;
        }
      }
      if (nl < 0) {
        lineStart = false;
        break;
      }
      i = nl + 1;
      lineStart = true;
    }
    this.atLineStart = lineStart;
    return count;
  }
}
