import type { RequestError, RequestRecord } from "./record.ts";

/**
 * Requests packed for a hand-over between threads: numbers in one Float64Array, strings and errors in arrays. A
 * structured clone of this costs a copy, where millions of record objects with their own chunk arrays would each
 * be walked and rebuilt.
 */
export interface RecordBatch {
  numbers: Float64Array;
  strings: string[];
  errors: (RequestError | null)[];
}

// Flags of a packed record.
const STREAMING = 1;
const CANCELLED_SET = 2;
const CANCELLED = 4;
const HAS_ERROR = 8;
const HAS_TARGET = 16;
/** Fixed numbers per record before its chunk times. */
const HEAD = 11;

const orNaN = (v: number | undefined) => (v === undefined ? Number.NaN : v);
const orUndefined = (v: number) => (Number.isNaN(v) ? undefined : v);

/** Packs records one at a time; `take` hands over what was packed and starts afresh. */
export class RecordPacker {
  private numbers = new Float64Array(1 << 14);
  private used = 0;
  private strings: string[] = [];
  private errors: (RequestError | null)[] = [];
  count = 0;

  add(r: RequestRecord): void {
    const chunks = r.chunkNs;
    const need = this.used + HEAD + chunks.length;
    if (need > this.numbers.length) {
      const grown = new Float64Array(Math.max(need, this.numbers.length * 2));
      grown.set(this.numbers.subarray(0, this.used));
      this.numbers = grown;
    }
    const n = this.numbers;
    let o = this.used;
    let flags = r.streaming ? STREAMING : 0;
    if (r.cancelled !== undefined) flags |= CANCELLED_SET | (r.cancelled ? CANCELLED : 0);
    if (r.error !== undefined) {
      flags |= HAS_ERROR;
      this.errors.push(r.error);
    }
    if (r.target !== undefined) flags |= HAS_TARGET;
    n[o++] = flags;
    n[o++] = r.sessionNum;
    n[o++] = r.turnIndex;
    n[o++] = r.startNs;
    n[o++] = orNaN(r.ackNs);
    n[o++] = r.inputTokens;
    n[o++] = r.outputTokens;
    n[o++] = orNaN(r.reasoningTokens);
    n[o++] = orNaN(r.cachedTokens);
    n[o++] = orNaN(r.endNs);
    n[o++] = chunks.length;
    for (let i = 0; i < chunks.length; i++) n[o++] = chunks[i]!;
    this.used = o;
    this.strings.push(r.requestId, r.conversationId);
    if (r.target !== undefined) this.strings.push(r.target);
    this.count++;
  }

  take(): RecordBatch {
    const batch = { numbers: this.numbers.slice(0, this.used), strings: this.strings, errors: this.errors };
    this.used = 0;
    this.strings = [];
    this.errors = [];
    this.count = 0;
    return batch;
  }
}

/** The records of a batch, as they were packed. */
export function unpackRecords(batch: RecordBatch): RequestRecord[] {
  const { numbers: n, strings, errors } = batch;
  const out: RequestRecord[] = [];
  let o = 0;
  let s = 0;
  let e = 0;
  while (o < n.length) {
    const flags = n[o]!;
    const chunkCount = n[o + 10]!;
    const rec: RequestRecord = {
      sessionNum: n[o + 1]!,
      requestId: strings[s++]!,
      conversationId: strings[s++]!,
      turnIndex: n[o + 2]!,
      startNs: n[o + 3]!,
      ackNs: orUndefined(n[o + 4]!),
      chunkNs: n.slice(o + HEAD, o + HEAD + chunkCount),
      inputTokens: n[o + 5]!,
      outputTokens: n[o + 6]!,
      reasoningTokens: orUndefined(n[o + 7]!),
      cachedTokens: orUndefined(n[o + 8]!),
      streaming: (flags & STREAMING) !== 0,
    };
    const endNs = orUndefined(n[o + 9]!);
    if (endNs !== undefined) rec.endNs = endNs;
    if (flags & HAS_TARGET) rec.target = strings[s++]!;
    if (flags & HAS_ERROR) rec.error = errors[e++]!;
    if (flags & CANCELLED_SET) rec.cancelled = (flags & CANCELLED) !== 0;
    out.push(rec);
    o += HEAD + chunkCount;
  }
  return out;
}
