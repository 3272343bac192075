/**
 * Incremental Server-Sent Events parser, following the WHATWG "parsing an event stream" algorithm
 * (https://html.spec.whatwg.org/multipage/server-sent-events.html#parsing-an-event-stream).
 *
 * Chunks may be split anywhere: inside a UTF-8 sequence, between the CR and LF of a CRLF, inside a field name.
 * Each dispatched event carries the arrival time of its first byte, because AIPerf stamps every SSE message at its
 * first byte and its timing metrics (TTFT, ITL, latency) are defined on those stamps; stamping at the blank line
 * that ends an event would shift every chunk by the time the rest of the event took to arrive.
 */

export interface SseEvent {
  /** The `event:` field, when the event set one (the spec's default type, "message", is left implicit). */
  event?: string;
  /** The `data:` lines, joined with "\n". */
  data: string;
  /** The last event id seen on the stream (it persists across events, as the spec's last-event-id buffer does). */
  id?: string;
  /** Arrival time (as passed to `feed`) of the chunk that held the event's first byte. */
  firstByteNs: number;
}

export interface SseParserOptions {
  /**
   * Largest event, in decoded characters (UTF-16 code units; equal to bytes for the ASCII JSON that inference
   * servers send). Counts the pending line, the data lines and the event type. Default 8 MiB.
   */
  maxEventSize?: number;
}

export const DEFAULT_MAX_EVENT_SIZE = 8 * 1024 * 1024;

/** The stream broke the parser's limits; the parser refuses further input after throwing it. */
export class SseParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SseParseError";
  }
}

const LF = 10;
const CR = 13;

/**
 * Length of an incomplete UTF-8 sequence at the end of `bytes` (0 when it ends on a character boundary). Those
 * bytes are held back so that a character split across chunks is decoded once, with the time of its first byte.
 */
function incompleteTail(bytes: Uint8Array): number {
  const n = bytes.length;
  // A UTF-8 sequence is at most 4 bytes, so only the last 3 can start an unfinished one.
  for (let back = 1; back <= 3 && back <= n; back++) {
    const b = bytes[n - back]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? back : 0;
  }
  // Only continuation bytes (or too few bytes): nothing to wait for; the decoder replaces stray ones.
  return 0;
}

export class SseParser {
  private readonly maxEventSize: number;
  // ignoreBOM: the spec strips only the stream's first BOM; a default decoder would strip one per decode call.
  private readonly decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  private carry: Uint8Array | null = null;
  private carryNs = 0;
  private atStreamStart = true;
  private skipLf = false;
  private line = "";
  private dataParts: string[] = [];
  private dataSize = 0;
  private eventType = "";
  private lastEventId = "";
  private eventStartNs: number | undefined = undefined;
  private failed: SseParseError | null = null;
  private retryMs: number | undefined = undefined;

  constructor(options: SseParserOptions = {}) {
    const max = options.maxEventSize ?? DEFAULT_MAX_EVENT_SIZE;
    if (!Number.isSafeInteger(max) || max <= 0) {
      throw new RangeError(`maxEventSize must be a positive integer, got ${max}`);
    }
    this.maxEventSize = max;
  }

  /** The reconnection time from the last valid `retry:` field, in ms. */
  get retry(): number | undefined {
    return this.retryMs;
  }

  /**
   * Parses one chunk that arrived at `nowNs` and returns the events it completed, in order.
   * Throws SseParseError when an event exceeds the size limit (and on every call after that).
   */
  feed(chunk: Uint8Array | string, nowNs: number): SseEvent[] {
    if (this.failed) throw this.failed;
    const out: SseEvent[] = [];
    if (typeof chunk === "string") {
      this.consume(chunk, nowNs, nowNs, out);
      return out;
    }
    let bytes = chunk;
    let firstNs = nowNs;
    if (this.carry) {
      const joined = new Uint8Array(this.carry.length + chunk.length);
      joined.set(this.carry, 0);
      joined.set(chunk, this.carry.length);
      bytes = joined;
      firstNs = this.carryNs;
      this.carry = null;
    }
    const tail = incompleteTail(bytes);
    if (tail > 0) {
      const wasEmpty = tail === bytes.length;
      // Copy: the caller may reuse its buffer.
      this.carry = bytes.slice(bytes.length - tail);
      // The held bytes arrived with their first byte; if they were already carried, keep the older time.
      this.carryNs = wasEmpty ? firstNs : nowNs;
      bytes = bytes.subarray(0, bytes.length - tail);
    }
    if (bytes.length > 0) this.consume(this.decoder.decode(bytes), firstNs, nowNs, out);
    return out;
  }

  /**
   * Ends the stream. The spec discards an event that is still open at the end of the stream; it is returned here
   * (as the event a blank line would have dispatched, or null when there is none) so that the caller can decide.
   */
  finish(nowNs: number): SseEvent | null {
    if (this.failed) throw this.failed;
    const out: SseEvent[] = [];
    if (this.carry) {
      // An unfinished UTF-8 sequence at the end of the stream decodes to U+FFFD, as a streaming decoder would.
      const rest = this.decoder.decode(this.carry);
      this.carry = null;
      this.consume(rest, this.carryNs, nowNs, out);
    }
    if (this.line.length > 0) {
      this.processLine(this.line);
      this.line = "";
    }
    const pending = this.dataParts.length > 0 ? this.makeEvent() : null;
    this.resetEvent();
    return pending;
  }

  /** `firstNs` is the arrival time of `text[0]` (it may come from an earlier chunk); the rest arrived at `nowNs`. */
  private consume(text: string, firstNs: number, nowNs: number, out: SseEvent[]): void {
    let i = 0;
    const n = text.length;
    if (this.atStreamStart && n > 0) {
      this.atStreamStart = false;
      if (text.charCodeAt(0) === 0xfeff) i = 1;
    }
    if (this.skipLf && i < n) {
      this.skipLf = false;
      if (text.charCodeAt(i) === LF) i++;
    }
    while (i < n) {
      let j = i;
      while (j < n) {
        const c = text.charCodeAt(j);
        if (c === LF || c === CR) break;
        j++;
      }
      if (j > i && this.line.length === 0 && this.eventStartNs === undefined) {
        this.eventStartNs = i === 0 ? firstNs : nowNs;
      }
      if (j === n) {
        this.line += text.slice(i);
        this.checkSize();
        return;
      }
      const line = this.line.length > 0 ? this.line + text.slice(i, j) : text.slice(i, j);
      this.line = "";
      if (line.length === 0) {
        if (this.dataParts.length > 0) out.push(this.makeEvent());
        this.resetEvent();
      } else {
        this.processLine(line);
        this.checkSize();
      }
      if (text.charCodeAt(j) === CR) {
        if (j + 1 < n) {
          if (text.charCodeAt(j + 1) === LF) j++;
        } else {
          this.skipLf = true;
        }
      }
      i = j + 1;
    }
  }

  private processLine(line: string): void {
    const colon = line.indexOf(":");
    if (colon === 0) return; // comment
    let field: string;
    let value: string;
    if (colon < 0) {
      field = line;
      value = "";
    } else {
      field = line.slice(0, colon);
      value = line.charCodeAt(colon + 1) === 0x20 ? line.slice(colon + 2) : line.slice(colon + 1);
    }
    switch (field) {
      case "data":
        this.dataParts.push(value);
        this.dataSize += value.length + 1;
        break;
      case "event":
        this.eventType = value;
        break;
      case "id":
        if (!value.includes("\0")) this.lastEventId = value;
        break;
      case "retry":
        if (/^[0-9]+$/.test(value)) this.retryMs = Number(value);
        break;
      default:
        // Unknown fields are ignored, as the spec requires.
        break;
    }
  }

  private makeEvent(): SseEvent {
    const event: SseEvent = { data: this.dataParts.join("\n"), firstByteNs: this.eventStartNs ?? 0 };
    if (this.eventType !== "") event.event = this.eventType;
    if (this.lastEventId !== "") event.id = this.lastEventId;
    return event;
  }

  private resetEvent(): void {
    this.dataParts = [];
    this.dataSize = 0;
    this.eventType = "";
    this.eventStartNs = undefined;
  }

  private checkSize(): void {
    const size = this.line.length + this.dataSize + this.eventType.length;
    if (size > this.maxEventSize) {
      this.failed = new SseParseError(
        `SSE event exceeds ${this.maxEventSize} characters without ending (no blank line)`,
      );
      // Drop what was buffered so a caller that keeps the parser around does not keep the memory.
      this.line = "";
      this.resetEvent();
      throw this.failed;
    }
  }
}
