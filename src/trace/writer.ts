import { writeFileAtomic } from "../io/atomic-write.ts";
import type { TraceRow } from "./types.ts";

/** Fixed key order so the same rows always serialize to the same bytes. */
const FIELD_ORDER = [
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

export function serializeTraceRow(row: TraceRow): string {
  const ordered: Record<string, unknown> = {};
  for (const key of FIELD_ORDER) {
    if (row[key] !== undefined) ordered[key] = row[key];
  }
  return JSON.stringify(ordered);
}

/** Lines are batched so a large trace is not one string per row through the stream. */
function* traceChunks(rows: Iterable<TraceRow>): Generator<string> {
  let batch: string[] = [];
  for (const row of rows) {
    batch.push(serializeTraceRow(row));
    if (batch.length === 1024) {
      yield `${batch.join("\n")}\n`;
      batch = [];
    }
  }
  if (batch.length > 0) yield `${batch.join("\n")}\n`;
}

/** Writes a Mooncake JSONL trace atomically (temp file + rename). */
export async function writeTrace(file: string, rows: Iterable<TraceRow>): Promise<void> {
  await writeFileAtomic(file, traceChunks(rows));
}
