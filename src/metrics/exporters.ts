import { ftruncateSync, writeSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { dirname, join } from "node:path";
import { ServelabError } from "../errors.ts";
import { writeFileAtomic } from "../io/atomic-write.ts";
import { makeDir } from "../io/make-dir.ts";
import {
  AIPERF_METRIC_TAGS,
  type AiperfSummary,
  computeRecordMetrics,
  type DistributionResult,
  type ErrorSummaryEntry,
  METRICS,
  RECORD_METRIC_TAGS,
  type RecordMetrics,
  type ScalarResult,
  toDisplayUnit,
} from "./aiperf-metrics.ts";
import { formatFixed2 } from "./format.ts";
import type { RequestRecord } from "./record.ts";
import { STAT_KEYS } from "./stats.ts";

/** AIPerf's artifact file names. */
export const PROFILE_EXPORT_JSON = "profile_export_aiperf.json";
export const PROFILE_EXPORT_CSV = "profile_export_aiperf.csv";
export const PROFILE_EXPORT_JSONL = "profile_export.jsonl";
/** AIPerf's raw export (`--export-level raw`): requests and responses as sent and received. */
export const PROFILE_EXPORT_RAW_JSONL = "profile_export_raw.jsonl";

/** What `profile_export_aiperf.json` carries after the metrics. */
export interface AiperfJsonContext {
  /** The options the user set, as AIPerf's `input_config` (e.g. `{endpoint: {...}, cli_command: "..."}`). */
  inputConfig: Readonly<Record<string, unknown>> | null;
  wasCancelled: boolean;
  errorSummary: readonly ErrorSummaryEntry[];
  /** Naive local ISO timestamps (see `naiveLocalIsoTimestamp`), or null when unknown. */
  startTime: string | null;
  endTime: string | null;
}

function isDistribution(r: DistributionResult | ScalarResult): r is DistributionResult {
  return "p50" in r;
}

/** Rebuilt key by key so the file's order never depends on how the caller assembled the object. */
function orderedResult(r: DistributionResult | ScalarResult): Record<string, unknown> {
  if (!isDistribution(r)) return { unit: r.unit, avg: r.avg };
  return {
    unit: r.unit,
    avg: r.avg,
    p1: r.p1,
    p5: r.p5,
    p10: r.p10,
    p25: r.p25,
    p50: r.p50,
    p75: r.p75,
    p90: r.p90,
    p95: r.p95,
    p99: r.p99,
    min: r.min,
    max: r.max,
    std: r.std,
  };
}

/** The text of `profile_export_aiperf.json`: every metric in declared order (null where absent), then the context. */
export function renderAiperfJson(summary: AiperfSummary, context: AiperfJsonContext): string {
  const doc: Record<string, unknown> = {};
  for (const tag of AIPERF_METRIC_TAGS) {
    const r = summary[tag];
    doc[tag] = r ? orderedResult(r) : null;
  }
  doc.input_config = context.inputConfig;
  doc.was_cancelled = context.wasCancelled;
  doc.error_summary = context.errorSummary.map((e) => ({
    error_details: {
      code: e.error_details.code,
      type: e.error_details.type,
      message: e.error_details.message,
    },
    count: e.count,
  }));
  doc.start_time = context.startTime;
  doc.end_time = context.endTime;
  return `${JSON.stringify(doc, null, 2)}\n`;
}

function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

function csvName(tag: keyof AiperfSummary, unit: string): string {
  const header = METRICS[tag].header;
  return unit === "requests" || unit === "count" ? header : `${header} (${unit})`;
}

/**
 * The text of `profile_export_aiperf.csv`: the distributions (`Metric,avg,min,...,std`), a blank line, then the
 * single values (`Metric,Value`), each section sorted by tag, numbers as `%.2f`. Lines end in CRLF because
 * AIPerf writes with Python's csv module, whose default dialect does.
 */
export function renderAiperfCsv(summary: AiperfSummary): string {
  const distributions: string[] = [];
  const scalars: string[] = [];
  for (const tag of [...AIPERF_METRIC_TAGS].sort()) {
    const r = summary[tag];
    if (!r) continue;
    const name = csvField(csvName(tag, r.unit));
    if (isDistribution(r)) distributions.push([name, ...STAT_KEYS.map((k) => formatFixed2(r[k]))].join(","));
    else scalars.push(`${name},${formatFixed2(r.avg)}`);
  }
  const lines: string[] = [];
  if (distributions.length > 0) lines.push(["Metric", ...STAT_KEYS].join(","), ...distributions);
  if (distributions.length > 0 && scalars.length > 0) lines.push("");
  if (scalars.length > 0) lines.push("Metric,Value", ...scalars);
  return lines.map((l) => `${l}\r\n`).join("");
}

/** Writes `profile_export_aiperf.json` atomically. */
export async function writeAiperfJson(
  file: string,
  summary: AiperfSummary,
  context: AiperfJsonContext,
): Promise<void> {
  // Rendered before the write so a bad input_config fails as itself, not as a file error.
  const text = renderAiperfJson(summary, context);
  await writeFileAtomic(file, [text]);
}

/** Writes `profile_export_aiperf.csv` atomically. */
export async function writeAiperfCsv(file: string, summary: AiperfSummary): Promise<void> {
  await writeFileAtomic(file, [renderAiperfCsv(summary)]);
}

/** Writes both summary files into `dir` under AIPerf's names; returns their paths. */
export async function writeAiperfSummaryFiles(
  dir: string,
  summary: AiperfSummary,
  context: AiperfJsonContext,
): Promise<{ json: string; csv: string }> {
  const json = join(dir, PROFILE_EXPORT_JSON);
  const csv = join(dir, PROFILE_EXPORT_CSV);
  await writeAiperfJson(json, summary, context);
  await writeAiperfCsv(csv, summary);
  return { json, csv };
}

const pad = (n: number, width = 2) => String(n).padStart(width, "0");

/**
 * A naive local ISO timestamp as Python's `datetime.isoformat()` prints it (AIPerf's `start_time`/`end_time`):
 * microseconds, omitted when zero. The caller supplies the instant, so this module never reads the clock.
 */
export function naiveLocalIsoTimestamp(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new RangeError("naiveLocalIsoTimestamp: invalid date");
  const base =
    `${pad(date.getFullYear(), 4)}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  const ms = date.getMilliseconds();
  return ms === 0 ? base : `${base}.${pad(ms * 1000, 6)}`;
}

/** The same layout in UTC: a simulated run's times, which must not depend on the machine's time zone. */
export function naiveUtcIsoTimestamp(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new RangeError("naiveUtcIsoTimestamp: invalid date");
  const base = date.toISOString().slice(0, 19);
  const ms = date.getUTCMilliseconds();
  return ms === 0 ? base : `${base}.${pad(ms * 1000, 6)}`;
}

/** The worker and record processor a run's records name (AIPerf's `worker_id`, `record_processor_id`). */
export interface RecordProcessIds {
  workerId: string;
  recordProcessorId: string;
}

/** For callers that have no run of their own (tests, one-off conversions). */
export const DEFAULT_PROCESS_IDS: RecordProcessIds = {
  workerId: "worker_00000000",
  recordProcessorId: "record_processor_00000000",
};

/** AIPerf's `*_ns` fields are integers; the simulator's times are fractional nanoseconds. */
const intNs = (v: number | undefined) => (v === undefined ? null : Math.round(v));

/**
 * One `profile_export.jsonl` line (no newline) in AIPerf's `MetricRecordInfo` shape: `*_ns` as integers, the
 * worker and record-processor ids as strings, `good_request_count` (1 or 0) when the run has goodput SLOs, values in
 * display units. Fields servelab does not track (correlation id, cancellation time) are null.
 */
export function formatRecordLine(
  record: RequestRecord,
  metrics: RecordMetrics = computeRecordMetrics(record),
  ids: RecordProcessIds = DEFAULT_PROCESS_IDS,
): string {
  // Built as text rather than through JSON.stringify of an object so that the numbers of the long per-chunk arrays
  // can come from `numberText`; the layout is what JSON.stringify would print.
  const fields: string[] = [];
  for (const tag of RECORD_METRIC_TAGS) {
    const v = metrics.values[tag];
    if (v === undefined) continue;
    let value: string;
    if (typeof v === "number") value = JSON.stringify(toDisplayUnit(tag, v));
    else {
      const items = new Array<string>(v.length);
      let last = Number.NaN;
      let lastText = "";
      for (let i = 0; i < v.length; i++) {
        // Steps of a run often last alike: consecutive gaps repeat.
        if (v[i] !== last) {
          last = v[i]!;
          lastText = numberText(toDisplayUnit(tag, last));
        }
        items[i] = lastText;
      }
      value = `[${items.join(",")}]`;
    }
    fields.push(`"${tag}":{"value":${value},"unit":${JSON.stringify(METRICS[tag].unit)}}`);
  }
  if (metrics.good !== undefined)
    fields.push(`"good_request_count":{"value":${metrics.good},"unit":"requests"}`);
  const metadata = JSON.stringify(recordMetadata(record, metrics, ids));
  return `{"metadata":${metadata},"metrics":{${fields.join(",")}},"error":${JSON.stringify(metrics.error)}}`;
}

/** AIPerf's `MetricRecordMetadata` of a record: ids, phase, and its times as integer nanoseconds. */
function recordMetadata(record: RequestRecord, metrics: RecordMetrics, ids: RecordProcessIds) {
  return {
    session_num: record.sessionNum,
    x_request_id: record.requestId,
    x_correlation_id: null,
    conversation_id: record.conversationId,
    turn_index: record.turnIndex,
    request_start_ns: intNs(record.startNs),
    request_ack_ns: intNs(record.ackNs),
    request_end_ns: intNs(metrics.endNs),
    worker_id: ids.workerId,
    record_processor_id: ids.recordProcessorId,
    benchmark_phase: "profiling",
    was_cancelled: record.cancelled ?? false,
    cancellation_time_ns: null,
  };
}

/** Header values a raw export must not keep. */
const SECRET_HEADERS = /^(authorization|proxy-authorization|x-api-key|api-key|cookie)$/i;

/**
 * One `profile_export_raw.jsonl` line (AIPerf's `RawRecordInfo`, `--export-level raw`): the record's metadata, the
 * request as sent (`payload`, `request_headers` with credentials redacted), the HTTP `status`, and every response
 * message with its arrival (`responses: [{perf_ns, text}]`, an SSE event's data or the whole body), then `error`.
 */
export function formatRawLine(
  record: RequestRecord,
  metrics: RecordMetrics,
  ids: RecordProcessIds,
  request: { body: string; headers: Readonly<Record<string, string>> },
): string {
  let payload: unknown;
  try {
    payload = JSON.parse(request.body);
  } catch {
    payload = request.body;
  }
  const headers = Object.fromEntries(
    Object.entries(request.headers).map(([k, v]) => [k, SECRET_HEADERS.test(k) ? "<redacted>" : v]),
  );
  return JSON.stringify({
    metadata: recordMetadata(record, metrics, ids),
    start_perf_ns: intNs(record.startNs),
    payload,
    request_headers: headers,
    status: record.status ?? null,
    responses: (record.responses ?? []).map((r) => ({ perf_ns: intNs(r.perfNs), text: r.text })),
    error: metrics.error,
  });
}

/**
 * Formatting a double is most of the cost of writing `profile_export.jsonl`, and a simulation's inter-chunk
 * latencies repeat (steps of one batch shape last alike): their text is cached, a bounded number at a time.
 */
const NUMBER_TEXT_LIMIT = 1 << 16;
const numberTexts = new Map<number, string>();
function numberText(x: number): string {
  let text = numberTexts.get(x);
  if (text === undefined) {
    text = JSON.stringify(x);
    if (numberTexts.size >= NUMBER_TEXT_LIMIT) numberTexts.clear();
    numberTexts.set(x, text);
  }
  return text;
}

export interface JsonlRecordWriterOptions {
  /** Lines buffered before a write to the file; AIPerf flushes every 100. */
  batchSize?: number;
  /**
   * Longest a finished record waits for its batch to fill, in ms (default 20): a slow run's records reach the file
   * (the page cache) soon after they finish, so a killed process loses at most this much.
   */
  flushMs?: number;
  /**
   * Write each batch before `write` returns, for a thread that does nothing else: no queue of writes is left to
   * drain at the end, and no event-loop turns are needed to move it along.
   */
  blocking?: boolean;
  /** The worker and record processor the lines name. */
  ids?: RecordProcessIds;
}

/**
 * Streams `profile_export.jsonl`: one line per finished request, in the order `write` is called, handed to the
 * file every `batchSize` lines or `flushMs` after the first line of a batch, whichever comes first, so a long run
 * neither holds its records in memory nor loses more than a few milliseconds of them when killed. `write` never
 * blocks (unless opened `blocking`); a failed file write is reported by the next `write`, `drain`, `flush` or
 * `close`, and the file is cut back to its last complete line.
 */
export class JsonlRecordWriter {
  readonly file: string;
  private readonly handle: FileHandle;
  private readonly batchSize: number;
  private readonly blocking: boolean;
  private readonly flushMs: number;
  private timer: NodeJS.Timeout | undefined;
  /** Bytes known to be in the file: every one ends a complete line. */
  private bytesWritten = 0;
  private batch: string[] = [];
  private pending: string[] = [];
  private writing = false;
  private tail: Promise<void> = Promise.resolve();
  private failure: ServelabError | null = null;
  private closed = false;
  private count = 0;

  private constructor(
    file: string,
    handle: FileHandle,
    batchSize: number,
    blocking: boolean,
    flushMs: number,
    private readonly ids: RecordProcessIds,
  ) {
    this.file = file;
    this.handle = handle;
    this.batchSize = batchSize;
    this.blocking = blocking;
    this.flushMs = flushMs;
  }

  /** Creates (or truncates) the file. */
  static async open(file: string, options: JsonlRecordWriterOptions = {}): Promise<JsonlRecordWriter> {
    const batchSize = options.batchSize ?? 100;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new RangeError(`JSONL batch size must be a positive integer, got ${batchSize}`);
    }
    const flushMs = options.flushMs ?? 20;
    if (!(flushMs >= 0)) throw new RangeError(`JSONL flush delay must be >= 0 ms, got ${flushMs}`);
    try {
      await makeDir(dirname(file));
      return new JsonlRecordWriter(
        file,
        await open(file, "w"),
        batchSize,
        options.blocking ?? false,
        flushMs,
        options.ids ?? DEFAULT_PROCESS_IDS,
      );
    } catch (e) {
      throw new ServelabError("FILE_WRITE", `cannot write ${file}: ${(e as Error).message}`);
    }
  }

  /** Lines accepted so far. */
  get recordsWritten(): number {
    return this.count;
  }

  /** Queues the request's line; pass the metrics `MetricsCollector.add` returned to avoid computing them twice. */
  write(record: RequestRecord, metrics?: RecordMetrics): void {
    this.writeLine(formatRecordLine(record, metrics, this.ids));
  }

  /** Queues a line already formatted (a raw export's). */
  writeLine(line: string): void {
    if (this.closed) throw new Error(`${this.file}: write after close`);
    if (this.failure) throw this.failure;
    this.batch.push(line);
    this.count++;
    if (this.batch.length >= this.batchSize) this.handOff();
    else if (!this.timer && !this.blocking) this.timer = setTimeout(() => this.handOff(), this.flushMs);
  }

  /** Waits until every full batch queued so far is in the file. */
  async drain(): Promise<void> {
    await this.tail;
    if (this.failure) throw this.failure;
  }

  /** Writes the partial batch too, and waits for it. */
  async flush(): Promise<void> {
    if (this.batch.length > 0 && !this.failure) this.handOff();
    await this.drain();
  }

  /** Flushes and closes the file; later writes throw. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) {
      await this.tail;
      return;
    }
    try {
      await this.flush();
    } finally {
      this.closed = true;
      await this.handle.close().catch((e: Error) => {
        this.failure ??= new ServelabError("FILE_WRITE", `cannot write ${this.file}: ${e.message}`);
      });
    }
    if (this.failure) throw this.failure;
  }

  private handOff(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.batch.length === 0 || this.failure) return;
    const text = `${this.batch.join("\n")}\n`;
    this.batch = [];
    if (!this.blocking) {
      this.pending.push(text);
      if (!this.writing) this.tail = this.pump();
      return;
    }
    const bytes = Buffer.from(text);
    try {
      for (let at = 0; at < bytes.length; ) at += writeSync(this.handle.fd, bytes, at);
      this.bytesWritten += bytes.length;
    } catch (e) {
      this.fail(e as Error);
    }
  }

  /** Records a failed write and cuts the file back to its last complete line (a full disk may take half a line). */
  private fail(e: Error): void {
    this.failure = new ServelabError("FILE_WRITE", `cannot write ${this.file}: ${e.message}`);
    try {
      ftruncateSync(this.handle.fd, this.bytesWritten);
    } catch {
      // The failure above is what the caller hears of; a file that cannot even be truncated adds nothing to it.
    }
  }

  /**
   * Writes the pending batches, one write at a time (FileHandle writes must not overlap, and lines must land in
   * call order); batches handed off while a write is in flight go out together in the next one, so a busy caller
   * does not leave a queue of small writes behind.
   */
  private async pump(): Promise<void> {
    this.writing = true;
    try {
      while (this.pending.length > 0 && !this.failure) {
        const text = this.pending.length === 1 ? this.pending[0]! : this.pending.join("");
        this.pending = [];
        const bytes = Buffer.from(text);
        try {
          await this.handle.writeFile(bytes);
          this.bytesWritten += bytes.length;
        } catch (e) {
          this.fail(e as Error);
        }
      }
    } finally {
      this.writing = false;
    }
  }
}
