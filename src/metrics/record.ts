/**
 * One request as measured, by the load generator (wall clock) or the simulator (virtual clock): the raw material
 * every AIPerf-compatible metric is computed from. Times are nanoseconds on one clock per run.
 */
export interface RequestRecord {
  /** Position in send order, from 0 (AIPerf `session_num`). */
  sessionNum: number;
  /** Unique id of the request (AIPerf `x_request_id`). */
  requestId: string;
  /** Conversation (session) the request belongs to, and its turn within it. */
  conversationId: string;
  turnIndex: number;
  /** When the request was sent (AIPerf `request_start_ns`). */
  startNs: number;
  /** When the response headers arrived (AIPerf `request_ack_ns`), if known. */
  ackNs?: number | undefined;
  /**
   * Arrival time of every content response (SSE chunk with content; a non-streamed response is one chunk), in
   * order. AIPerf's timing metrics use exactly these.
   */
  chunkNs: Float64Array | readonly number[];
  /** Prompt tokens (ISL). */
  inputTokens: number;
  /** Generated tokens, content only (AIPerf `output_token_count`). */
  outputTokens: number;
  /** Generated reasoning tokens (counted in OSL with the content tokens). */
  reasoningTokens?: number | undefined;
  /** Prompt tokens served from a prefix cache, when the server (or simulator) reports them. */
  cachedTokens?: number | undefined;
  /** Where the request ran, e.g. `worker/dp_rank`, when known. */
  target?: string | undefined;
  /** Set when the request failed; the record then only counts towards error metrics. */
  error?: RequestError | null | undefined;
  /**
   * When a request that received no content ended (the time of its error), on the same clock as `startNs`; the end
   * of a request with content is its last chunk.
   */
  endNs?: number | undefined;
  /** The HTTP status, and every response message with its arrival: kept only for a raw export. */
  status?: number | undefined;
  responses?: { perfNs: number; text: string }[] | undefined;
  cancelled?: boolean | undefined;
  /** Whether the request was streamed (ITL and TTFT need streaming). */
  streaming: boolean;
}

export interface RequestError {
  /** HTTP status, or 499 for a cancellation, or 0 for a transport failure. */
  code: number;
  type: string;
  message: string;
}
