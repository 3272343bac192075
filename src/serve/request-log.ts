import type { KvTransferLog } from "./disagg/kv-handover.ts";
import type { Endpoint } from "./openai-request.ts";

export type RequestOutcome = "completed" | "cancelled" | "failed";

/**
 * One served request, as the server saw it. `*_ns` times are `process.hrtime.bigint()`: CLOCK_MONOTONIC on Linux,
 * the clock of Node's hrtime and Python's `time.perf_counter_ns()` in any process on the same host, so a benchmark
 * can subtract its own send time from `first_token_ns` to split its TTFT into network/client and server parts.
 */
export interface RequestLogEntry {
  /** Position in the log, from 1; `GET /servelab/requests?after=N` returns the entries after N. */
  seq: number;
  /** The response's `id` (also sent as the `x-servelab-request-id` header). */
  id: string;
  /** The client's `X-Request-ID` header (AIPerf sends one per request), or null. */
  client_request_id: string | null;
  endpoint: Endpoint;
  stream: boolean;
  outcome: RequestOutcome;
  /** The attention-DP rank the request ran on; null when it never reached one. */
  dp_rank: number | null;
  prompt_tokens: number;
  /** Prompt tokens served from the rank's prefix cache. */
  cached_tokens: number;
  max_tokens: number;
  /** Tokens generated before the request ended (all of `max_tokens` unless cancelled). */
  completion_tokens: number;
  /** Wall-clock arrival, ms since the Unix epoch, to line the log up with other logs. */
  arrival_unix_ms: number;
  /** Request headers received. */
  arrival_ns: bigint;
  /** Body read, validated and tokenized; handed to the engine. */
  enqueued_ns: bigint | null;
  /** First token written to the connection (streaming) or produced (non-streaming). */
  first_token_ns: bigint | null;
  last_token_ns: bigint | null;
  /** Response ended, or the client was seen gone. */
  end_ns: bigint;
  /** A prefill or decode worker's KV hand-over for this request (absent on an aggregated worker). */
  kv_transfer?: KvTransferLog;
}

const NS_FIELDS = ["arrival_ns", "enqueued_ns", "first_token_ns", "last_token_ns", "end_ns"] as const;

/** One JSON line; nanosecond times are written as exact integers (JSON numbers, not rounded to a double). */
export function formatLogEntry(e: RequestLogEntry): string {
  const { arrival_ns, enqueued_ns, first_token_ns, last_token_ns, end_ns, ...rest } = e;
  const times = { arrival_ns, enqueued_ns, first_token_ns, last_token_ns, end_ns };
  const tail = NS_FIELDS.map((k) => {
    const v = times[k];
    return `"${k}":${v === null ? "null" : v.toString()}`;
  }).join(",");
  return `${JSON.stringify(rest).slice(0, -1)},${tail}}`;
}

/** The most recent `capacity` finished requests, oldest first; older ones are dropped so memory stays bounded. */
export class RequestLog {
  private readonly capacity: number;
  private readonly entries: RequestLogEntry[] = [];
  private head = 0;
  private nextSeq = 1;

  constructor(capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1)
      throw new RangeError(`request log capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
  }

  add(entry: Omit<RequestLogEntry, "seq">): RequestLogEntry {
    const e = { seq: this.nextSeq++, ...entry };
    if (this.entries.length < this.capacity) this.entries.push(e);
    else {
      this.entries[this.head] = e;
      this.head = (this.head + 1) % this.capacity;
    }
    return e;
  }

  /** Entries with `seq > after`, oldest first. */
  since(after = 0): RequestLogEntry[] {
    const ordered = [...this.entries.slice(this.head), ...this.entries.slice(0, this.head)];
    return ordered.filter((e) => e.seq > after);
  }
}
