import type { RequestError, RequestRecord } from "./record.ts";

export const NS_PER_MS = 1e6;

export interface RecordSpec {
  session?: number;
  startMs: number;
  chunksMs: readonly number[];
  input?: number;
  output?: number;
  reasoning?: number;
  streaming?: boolean;
  error?: RequestError;
  cancelled?: boolean;
  ackMs?: number;
}

/** A record with times given in milliseconds (tests read more easily in ms; records are in ns). */
export function makeRecord(spec: RecordSpec): RequestRecord {
  const session = spec.session ?? 0;
  return {
    sessionNum: session,
    requestId: `req-${session}`,
    conversationId: `conv-${session}`,
    turnIndex: 0,
    startNs: spec.startMs * NS_PER_MS,
    ackNs: spec.ackMs === undefined ? undefined : spec.ackMs * NS_PER_MS,
    chunkNs: Float64Array.from(spec.chunksMs, (t) => t * NS_PER_MS),
    inputTokens: spec.input ?? 10,
    outputTokens: spec.output ?? spec.chunksMs.length,
    reasoningTokens: spec.reasoning,
    error: spec.error ?? null,
    cancelled: spec.cancelled,
    streaming: spec.streaming ?? true,
  };
}

/**
 * Two successful streamed requests and one server error, small enough to work every figure out by hand:
 * TTFT 100 and 60 ms, TTST 50 and 20, latency 190 and 120, ITL 45 and 15, ICL 50, 40, 20, 20, 20; the run spans
 * 0–190 ms; the failure (which starts earlier and ends later) must not stretch it.
 */
export function smallRun(): RequestRecord[] {
  return [
    makeRecord({ session: 0, startMs: 0, chunksMs: [100, 150, 190], input: 10, output: 3, ackMs: 20 }),
    makeRecord({ session: 1, startMs: 50, chunksMs: [110, 130, 150, 170], input: 20, output: 5 }),
    makeRecord({
      session: 2,
      startMs: -40,
      chunksMs: [300],
      input: 30,
      output: 0,
      error: { code: 500, type: "Internal Server Error", message: "boom" },
    }),
  ];
}
