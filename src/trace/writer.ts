import { writeFileAtomic } from "../io/atomic-write.ts";
import { TRACE_FIELDS, type TraceRow } from "./types.ts";

/** Keys in a fixed order, so the same rows always serialize to the same bytes. */
export function serializeTraceRow(row: TraceRow): string {
  const ordered: Record<string, unknown> = {};
  for (const key of TRACE_FIELDS) {
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
