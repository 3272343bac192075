import { DEFAULT_TRACE_BLOCK_SIZE, TRACE_FIELDS, type TraceRow } from "./types.ts";

/** One problem found on one line of a trace file. */
export interface TraceIssue {
  line: number;
  /** The offending field, or undefined when the whole line is at fault (e.g. malformed JSON). */
  field?: string | undefined;
  reason: string;
}

export function formatTraceIssue(file: string, issue: TraceIssue): string {
  const where = issue.field === undefined ? "" : ` field '${issue.field}'`;
  return `${file}:${issue.line}:${where} ${issue.reason}`;
}

const KNOWN_FIELDS = new Set<string>([
  ...TRACE_FIELDS,
  // Later AIPerf trace rows may carry these; they pass through untouched.
  "messages",
  "tools",
  "extra",
  "message_mode",
  "payload",
]);

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 20 ? `${v.slice(0, 20)}…` : v)}`;
  if (typeof v === "object") return "an object";
  return `${typeof v} ${String(v)}`;
}

type FieldCheck = (v: unknown) => string | undefined;

const nonNegativeInteger: FieldCheck = (v) => {
  if (typeof v !== "number") return `must be a number, got ${describe(v)}`;
  if (!Number.isInteger(v)) return `must be an integer, got ${v}`;
  if (v < 0) return `must not be negative, got ${v}`;
  return undefined;
};

/**
 * Most tokens one request may carry, in or out: ten million, above any model's context window (the largest public
 * ones reach 10M), so a larger count is a damaged trace, not a workload, and would only exhaust memory.
 */
export const MAX_REQUEST_TOKENS = 10_000_000;

const tokenCount: FieldCheck = (v) =>
  nonNegativeInteger(v) ??
  ((v as number) > MAX_REQUEST_TOKENS
    ? `must be at most ${MAX_REQUEST_TOKENS.toLocaleString("en-US")} tokens, got ${v}`
    : undefined);

const nonNegativeNumber: FieldCheck = (v) => {
  if (typeof v !== "number" || !Number.isFinite(v)) return `must be a finite number, got ${describe(v)}`;
  if (v < 0) return `must not be negative, got ${v}`;
  return undefined;
};

const aString: FieldCheck = (v) =>
  typeof v === "string" ? undefined : `must be a string, got ${describe(v)}`;

const hashIdList: FieldCheck = (v) => {
  if (!Array.isArray(v)) return `must be an array of non-negative integers, got ${describe(v)}`;
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (typeof x !== "number" || !Number.isSafeInteger(x) || x < 0) {
      return `element ${i} must be a non-negative integer, got ${describe(x)}`;
    }
  }
  return undefined;
};

const CHECKS: Record<string, FieldCheck> = {
  timestamp: nonNegativeNumber,
  input_length: tokenCount,
  output_length: tokenCount,
  hash_ids: hashIdList,
  session_id: aString,
  delay: nonNegativeNumber,
  context_len: tokenCount,
  unique_user_prompt_len: tokenCount,
  text_input: aString,
};

export interface ParseOptions {
  blockSize?: number;
}

export type LineResult = { ok: true; row: TraceRow } | { ok: false; issues: TraceIssue[] };

/**
 * Parses and validates one JSONL line. `input_length`, `output_length` and `hash_ids` are required unless the row
 * carries a literal `text_input` (AIPerf's rule), and then `hash_ids` needs an `input_length` to size its blocks.
 */
export function parseTraceLine(text: string, line: number, opts: ParseOptions = {}): LineResult {
  const blockSize = opts.blockSize ?? DEFAULT_TRACE_BLOCK_SIZE;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { ok: false, issues: [{ line, reason: `malformed JSON (${(e as Error).message})` }] };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { ok: false, issues: [{ line, reason: `expected a JSON object, got ${describe(value)}` }] };
  }
  const obj = value as Record<string, unknown>;
  const issues: TraceIssue[] = [];
  for (const key of Object.keys(obj)) {
    if (!KNOWN_FIELDS.has(key)) issues.push({ line, field: key, reason: "is not a Mooncake trace field" });
  }
  for (const [field, check] of Object.entries(CHECKS)) {
    const v = obj[field];
    if (v === undefined) continue;
    const problem = check(v);
    if (problem !== undefined) issues.push({ line, field, reason: problem });
  }
  const hasText = obj.text_input !== undefined;
  const required = hasText ? ["output_length"] : ["input_length", "output_length", "hash_ids"];
  for (const field of required) {
    if (obj[field] === undefined) issues.push({ line, field, reason: "is missing" });
  }
  if (hasText && obj.hash_ids !== undefined && obj.input_length === undefined) {
    issues.push({ line, field: "hash_ids", reason: "needs input_length to size its blocks" });
  }
  if (issues.length > 0) return { ok: false, issues };

  const row = obj as unknown as TraceRow;
  if (row.hash_ids === undefined) row.hash_ids = [];
  if (row.input_length === undefined) row.input_length = 0;
  if (row.hash_ids.length > 0 || !hasText) {
    const expected = Math.ceil(row.input_length / blockSize);
    if (row.hash_ids.length !== expected) {
      issues.push({
        line,
        field: "hash_ids",
        reason: `has ${row.hash_ids.length} blocks but input_length ${row.input_length} needs ceil(${row.input_length}/${blockSize}) = ${expected}`,
      });
    }
  }
  if (
    row.context_len !== undefined &&
    row.unique_user_prompt_len !== undefined &&
    row.context_len + row.unique_user_prompt_len !== row.input_length
  ) {
    issues.push({
      line,
      field: "unique_user_prompt_len",
      reason: `context_len ${row.context_len} + unique_user_prompt_len ${row.unique_user_prompt_len} != input_length ${row.input_length}`,
    });
  }
  return issues.length > 0 ? { ok: false, issues } : { ok: true, row };
}
