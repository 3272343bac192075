/** One request of a Mooncake-format trace (JSONL, one object per line). */
export interface TraceRow {
  /** Arrival time in milliseconds since the trace's zero. */
  timestamp?: number;
  /** Prompt length in tokens. */
  input_length: number;
  /** Tokens to generate. */
  output_length: number;
  /** One id per prompt block (`block_size` tokens, the last one partial); equal ids mean a shared prefix block. */
  hash_ids: number[];
  session_id?: string;
  /** Wait after the previous turn of the same session, in milliseconds. */
  delay?: number;
  /** Tokens of the prompt that come from the shared prefix tree (synthesized traces). */
  context_len?: number;
  /** Tokens of the prompt that are unique to this request (synthesized traces). */
  unique_user_prompt_len?: number;
  /** A literal prompt sent as is instead of one synthesized from `hash_ids`. */
  text_input?: string;
}

/** Trace fields in their canonical order (the order the writer emits). */
export const TRACE_FIELDS = [
  "timestamp",
  "input_length",
  "output_length",
  "hash_ids",
  "session_id",
  "delay",
  "context_len",
  "unique_user_prompt_len",
  "text_input",
] as const satisfies readonly (keyof TraceRow)[];

/** Tokens per `hash_ids` block in Mooncake traces. */
export const DEFAULT_TRACE_BLOCK_SIZE = 512;

/** Options of the prefix-tree trace synthesizer; names follow Dynamo's prefix data generator. */
export interface SynthesisOptions {
  numRequests: number;
  speedupRatio: number;
  prefixLenMultiplier: number;
  prefixRootMultiplier: number;
  promptLenMultiplier: number;
  oslMultiplier: number;
  maxIsl?: number | undefined;
  minIsl?: number | undefined;
  minOsl?: number | undefined;
  maxOsl?: number | undefined;
  blockSize: number;
  seed: number;
}

export const SYNTHESIS_OPTION_KEYS = [
  "numRequests",
  "speedupRatio",
  "prefixLenMultiplier",
  "prefixRootMultiplier",
  "promptLenMultiplier",
  "oslMultiplier",
  "maxIsl",
  "minIsl",
  "minOsl",
  "maxOsl",
  "blockSize",
  "seed",
] as const satisfies readonly (keyof SynthesisOptions)[];

/**
 * Most requests one synthesis builds: ten million, a hundred times the default and of AIPerf-scale replays; every
 * request is held in memory while the trace is written.
 */
export const MAX_SYNTHESIZED_REQUESTS = 10_000_000;

export const DEFAULT_SYNTHESIS_OPTIONS: SynthesisOptions = {
  numRequests: 100_000,
  speedupRatio: 1,
  prefixLenMultiplier: 1,
  prefixRootMultiplier: 1,
  promptLenMultiplier: 1,
  oslMultiplier: 1,
  blockSize: DEFAULT_TRACE_BLOCK_SIZE,
  seed: 0,
};
