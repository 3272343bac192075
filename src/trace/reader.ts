import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createGunzip } from "node:zlib";
import { ServelabError } from "../errors.ts";
import type { TraceRow } from "./types.ts";
import { formatTraceIssue, type ParseOptions, parseTraceLine, type TraceIssue } from "./validate.ts";

/** How many bad lines an error message lists before it only counts the rest. */
const MAX_LISTED_ISSUES = 20;

/**
 * Longest line a trace may hold: 256 Mi characters, room for a row whose `text_input` spells out the largest request a row
 * may describe (10 M tokens of a few bytes each); a longer line (or a gzip member that inflates to one) is refused
 * before it is held in memory whole.
 */
export const MAX_LINE_BYTES = 256 * 2 ** 20;

/**
 * Splits a byte stream into UTF-8 lines ("\n" or "\r\n"), refusing any line longer than `max` characters before
 * it is held whole.
 */
async function* splitLines(input: AsyncIterable<Buffer>, file: string, max: number): AsyncGenerator<string> {
  const decoder = new TextDecoder("utf-8");
  let carry = "";
  let lineNo = 1;
  const tooLong = () =>
    new ServelabError(
      "TRACE_INVALID",
      `${file}:${lineNo}: the line is longer than ${max / 2 ** 20} MiB; not a trace row`,
    );
  const line = (text: string) => (text.endsWith("\r") ? text.slice(0, -1) : text);
  for await (const chunk of input) {
    const text = decoder.decode(chunk, { stream: true });
    let from = 0;
    for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n", from)) {
      if (carry.length + nl - from > max) throw tooLong();
      yield line(carry + text.slice(from, nl));
      carry = "";
      lineNo++;
      from = nl + 1;
    }
    if (carry.length + text.length - from > max) throw tooLong();
    carry += text.slice(from);
  }
  carry += decoder.decode();
  if (carry !== "") yield line(carry);
}

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
  return splitLines(stream as AsyncIterable<Buffer>, file, MAX_LINE_BYTES);
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
    for await (const line of lines) {
      lineNo++;
      // A UTF-8 byte-order mark (some editors write one) is not part of the first row.
      const text = lineNo === 1 ? line.replace(/^\uFEFF/, "") : line;
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
