import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createInterface } from "node:readline";
import { createGunzip } from "node:zlib";
import { ServelabError } from "../errors.ts";
import type { TraceRow } from "./types.ts";
import { formatTraceIssue, type ParseOptions, parseTraceLine, type TraceIssue } from "./validate.ts";

/** How many bad lines an error message lists before it only counts the rest. */
const MAX_LISTED_ISSUES = 20;

export interface ReadOptions extends ParseOptions {
  /** Called with the number of bytes consumed so far (compressed bytes for .gz), for progress display. */
  onBytes?: (bytesRead: number, totalBytes: number) => void;
}

export interface NumberedRow {
  row: TraceRow;
  line: number;
}

async function openLines(file: string, onBytes?: ReadOptions["onBytes"]): Promise<AsyncIterable<string>> {
  let size: number;
  try {
    const st = await stat(file);
    if (!st.isFile()) throw new ServelabError("FILE_READ", `${file} is not a regular file`);
    size = st.size;
  } catch (e) {
    if (e instanceof ServelabError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new ServelabError("FILE_NOT_FOUND", `trace file ${file} does not exist`);
    throw new ServelabError("FILE_READ", `cannot read trace file ${file}: ${(e as Error).message}`);
  }
  const raw = createReadStream(file);
  if (onBytes) raw.on("data", () => onBytes(raw.bytesRead, size));
  const stream = file.endsWith(".gz") ? raw.pipe(createGunzip()) : raw;
  const fail = (e: Error) => {
    stream.destroy(new ServelabError("FILE_READ", `cannot read trace file ${file}: ${e.message}`));
  };
  raw.on("error", fail);
  if (stream !== raw) stream.on("error", (e: Error) => (e instanceof ServelabError ? undefined : fail(e)));
  return createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
}

function invalidTraceError(file: string, issues: TraceIssue[], badLines: number): ServelabError {
  const listed = issues.slice(0, MAX_LISTED_ISSUES).map((i) => formatTraceIssue(file, i));
  if (issues.length > MAX_LISTED_ISSUES)
    listed.push(`… and ${issues.length - MAX_LISTED_ISSUES} more problems`);
  return new ServelabError(
    "TRACE_INVALID",
    `${file}: ${badLines} invalid line${badLines === 1 ? "" : "s"}`,
    listed,
  );
}

/**
 * Streams the valid rows of a Mooncake JSONL trace (optionally gzipped) in file order without holding the file in
 * memory. Blank lines are skipped. Bad lines do not stop the stream; once it is exhausted, every problem found is
 * thrown together as one TRACE_INVALID error, so a consumer never finishes silently on a damaged file. Timestamps
 * going backwards are reported as problems too (see `readTrace` with `sort` to accept them).
 */
export async function* streamTrace(
  file: string,
  opts: ReadOptions & { allowUnordered?: boolean } = {},
): AsyncGenerator<NumberedRow> {
  const lines = await openLines(file, opts.onBytes);
  const issues: TraceIssue[] = [];
  let badLines = 0;
  let count = 0;
  let lineNo = 0;
  let lastTs = Number.NEGATIVE_INFINITY;
  let lastTsLine = 0;
  try {
    for await (const text of lines) {
      lineNo++;
      if (text.trim() === "") continue;
      const res = parseTraceLine(text, lineNo, opts);
      if (!res.ok) {
        badLines++;
        if (issues.length <= MAX_LISTED_ISSUES * 50) issues.push(...res.issues);
        continue;
      }
      const ts = res.row.timestamp;
      if (ts !== undefined) {
        if (ts < lastTs && !opts.allowUnordered) {
          badLines++;
          issues.push({
            line: lineNo,
            field: "timestamp",
            reason: `goes backwards: ${ts} ms after ${lastTs} ms on line ${lastTsLine} (use --sort to reorder)`,
          });
          continue;
        }
        if (ts >= lastTs) {
          lastTs = ts;
          lastTsLine = lineNo;
        }
      }
      count++;
      yield { row: res.row, line: lineNo };
    }
  } catch (e) {
    if (e instanceof ServelabError) throw e;
    throw new ServelabError("FILE_READ", `cannot read trace file ${file}: ${(e as Error).message}`);
  }
  if (issues.length > 0) throw invalidTraceError(file, issues, badLines);
  if (count === 0) throw new ServelabError("TRACE_EMPTY", `${file} holds no requests`);
}

export interface ReadTraceOptions extends ReadOptions {
  /** Accept out-of-order timestamps and return the rows sorted by timestamp (stable), with a warning. */
  sort?: boolean;
  onWarning?: (message: string) => void;
}

/** Reads a whole trace into memory (for work that needs every row, such as synthesis). */
export async function readTrace(file: string, opts: ReadTraceOptions = {}): Promise<TraceRow[]> {
  const rows: TraceRow[] = [];
  let unordered = 0;
  let last = Number.NEGATIVE_INFINITY;
  for await (const { row } of streamTrace(file, { ...opts, allowUnordered: opts.sort === true })) {
    if (row.timestamp !== undefined) {
      if (row.timestamp < last) unordered++;
      else last = row.timestamp;
    }
    rows.push(row);
  }
  if (unordered > 0) {
    opts.onWarning?.(`${file}: ${unordered} rows had timestamps out of order; sorted by timestamp`);
    return sortByTimestamp(rows);
  }
  return rows;
}

/** Stable sort by timestamp; rows without one keep their place relative to their predecessor. */
export function sortByTimestamp(rows: TraceRow[]): TraceRow[] {
  let carry = 0;
  const keyed = rows.map((row, i) => {
    if (row.timestamp !== undefined) carry = row.timestamp;
    return { row, key: carry, i };
  });
  keyed.sort((a, b) => a.key - b.key || a.i - b.i);
  return keyed.map((k) => k.row);
}
