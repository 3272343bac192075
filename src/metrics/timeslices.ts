import {
  AIPERF_METRIC_TAGS,
  type AiperfSummary,
  type DistributionResult,
  METRICS,
  type ScalarResult,
} from "./aiperf-metrics.ts";
import { MetricsCollector } from "./collector.ts";
import { formatFixed2 } from "./format.ts";
import type { GoodputSlo } from "./goodput.ts";
import type { RequestRecord } from "./record.ts";
import { STAT_KEYS } from "./stats.ts";

/**
 * AIPerf's timeslice exports (`--slice-duration S`), as its 0.5/0.6-era `TimesliceMetricResultsProcessor` and
 * `TimesliceMetrics{Json,Csv}Exporter` make them:
 *
 * - A request belongs to the slice its **start** falls in: window `floor(request_start_ns / S_ns)` of a grid that
 *   starts at 0 on the records' clock (for wall-clock records, multiples of S since the Unix epoch), so the first
 *   and last slices are usually partial. Where it ends does not matter.
 * - Windows that no request started in are skipped; the others are numbered 0, 1, 2… in time order
 *   (`timeslice_index`, the CSV's `Timeslice`), so the numbers are dense even where the grid has gaps.
 * - Each slice is summarized like a whole run over its own requests: its throughputs divide by its own benchmark
 *   duration (its successful requests' last response minus their first start), not by S.
 *
 * Pure: no I/O, no clock. The caller writes the files (see `timesliceFileNames`).
 */

/** AIPerf's file names for the timeslice exports (`--profile-export-prefix` unset). */
export const PROFILE_EXPORT_TIMESLICES_JSON = "profile_export_aiperf_timeslices.json";
export const PROFILE_EXPORT_TIMESLICES_CSV = "profile_export_aiperf_timeslices.csv";

/** Suffixes AIPerf strips from `--profile-export-prefix` (longest first), so `foo.json` and `foo` name alike. */
const PREFIX_SUFFIXES = [
  "_server_metrics.parquet",
  "_server_metrics.jsonl",
  "_server_metrics.json",
  "_server_metrics.csv",
  "_gpu_telemetry.jsonl",
  "_timeslices.csv",
  "_timeslices.json",
  "_records.csv",
  "_raw.jsonl",
  ".parquet",
  ".csv",
  ".json",
  ".jsonl",
];

/**
 * The timeslice files' names, relative to the artifact directory: `<stem>_timeslices.json` / `.csv`, where the
 * stem is `profile_export_aiperf`, or AIPerf's `--profile-export-prefix` with at most one known suffix removed.
 */
export function timesliceFileNames(prefix?: string): { json: string; csv: string } {
  if (prefix === undefined)
    return { json: PROFILE_EXPORT_TIMESLICES_JSON, csv: PROFILE_EXPORT_TIMESLICES_CSV };
  let stem = prefix;
  const suffix = PREFIX_SUFFIXES.find((s) => stem.endsWith(s));
  if (suffix) stem = stem.slice(0, -suffix.length);
  return { json: `${stem}_timeslices.json`, csv: `${stem}_timeslices.csv` };
}

const NS_PER_S = 1e9;

/**
 * A slice duration in seconds as whole nanoseconds, as AIPerf takes it (`int(S * 1e9)`). Throws RangeError unless
 * S is a finite number that comes to at least 1 ns (AIPerf's newer config rejects S <= 0; older ones crashed).
 */
export function sliceDurationNs(sliceDurationS: number): number {
  if (typeof sliceDurationS !== "number" || !Number.isFinite(sliceDurationS) || sliceDurationS <= 0) {
    throw new RangeError(
      `slice duration must be a positive number of seconds, got ${String(sliceDurationS)}`,
    );
  }
  const ns = Math.trunc(sliceDurationS * NS_PER_S);
  if (!Number.isFinite(ns) || ns < 1) {
    throw new RangeError(`slice duration must be at least 1 ns (1e-9 s), got ${sliceDurationS} s`);
  }
  return ns;
}

export interface TimesliceCollectorOptions {
  /** `--slice-duration`, in seconds (see `sliceDurationNs`). */
  sliceDurationS: number;
  /**
   * Where the slice grid starts on the records' clock (default 0). AIPerf's grid is the wall clock's own:
   * windows are multiples of S since the Unix epoch, so pass 0 for records stamped in Unix nanoseconds.
   */
  originNs?: number | undefined;
  /** The run's goodput SLOs, so each slice has its `goodput` and `good_request_count`. */
  goodput?: readonly GoodputSlo[] | undefined;
}

/** One non-empty slice. */
export interface Timeslice {
  /** Position among the non-empty slices, from 0: AIPerf's `timeslice_index` (the CSV's `Timeslice`). */
  index: number;
  /**
   * Its window on the records' clock, `[startNs, endNs)`: the requests in it started there. Not in AIPerf's
   * 0.5/0.6-era files, which carry only the index.
   */
  startNs: number;
  endNs: number;
  /** AIPerf's metrics over the requests that started in the window, as `MetricsCollector.finish` gives them. */
  summary: AiperfSummary;
}

/** Buffers of a slice's collector start this small: a short slice holds few requests, and there may be many. */
const SLICE_BUFFER_CAPACITY = 16;

/**
 * Splits a run's records into AIPerf's timeslices as they finish. Records may be added in any order; the result
 * depends only on which records were added. Feed it exactly what the run's MetricsCollector gets (profiled
 * requests, within the duration and grace period).
 */
export class TimesliceCollector {
  /** The slice duration as AIPerf uses it, whole nanoseconds. */
  readonly sliceDurationNs: number;
  private readonly originNs: number;
  private readonly goodput: readonly GoodputSlo[];
  /** Grid window → the collector of the requests that started in it. */
  private readonly windows = new Map<number, MetricsCollector>();
  private count = 0;

  constructor(options: TimesliceCollectorOptions) {
    this.sliceDurationNs = sliceDurationNs(options.sliceDurationS);
    const origin = options.originNs ?? 0;
    if (!Number.isFinite(origin)) throw new RangeError(`slice grid origin must be finite, got ${origin}`);
    this.originNs = origin;
    this.goodput = options.goodput ?? [];
  }

  /** Records added so far. */
  get recordCount(): number {
    return this.count;
  }

  /** Non-empty slices so far. */
  get sliceCount(): number {
    return this.windows.size;
  }

  /** The grid window a request starting at `startNs` falls in: windows are `[origin + k·S, origin + (k+1)·S)`. */
  windowOf(startNs: number): number {
    return Math.floor((startNs - this.originNs) / this.sliceDurationNs);
  }

  /** Adds one finished request to its slice. Throws RangeError for a malformed record, without counting it. */
  add(record: RequestRecord): void {
    if (!Number.isFinite(record.startNs)) {
      throw new RangeError(
        `request record ${JSON.stringify(record.requestId)}: startNs must be a finite number, got ${record.startNs}`,
      );
    }
    const window = this.windowOf(record.startNs);
    let collector = this.windows.get(window);
    const created = collector === undefined;
    collector ??= new MetricsCollector({ goodput: this.goodput, initialCapacity: SLICE_BUFFER_CAPACITY });
    // Validated by the collector before it counts anything; a new slice stays out until its record is in.
    collector.add(record);
    if (created) this.windows.set(window, collector);
    this.count++;
  }

  /** The non-empty slices in time order, numbered from 0. May be called again after more records are added. */
  results(): Timeslice[] {
    const windows = [...this.windows.keys()].sort((a, b) => a - b);
    return windows.map((window, index) => {
      const startNs = this.originNs + window * this.sliceDurationNs;
      return {
        index,
        startNs,
        endNs: startNs + this.sliceDurationNs,
        summary: this.windows.get(window)!.finish(),
      };
    });
  }

  /**
   * The texts of `profile_export_aiperf_timeslices.json` and `.csv`, or null when no request was added (AIPerf
   * then writes neither file). `inputConfig` is the run's `input_config`, as in `profile_export_aiperf.json`.
   * A run with very many slices should write `timeslicesJsonChunks(results(), …)` / `timeslicesCsvChunks`
   * instead, which never build the whole text.
   */
  render(inputConfig: Readonly<Record<string, unknown>> | null): { json: string; csv: string } | null {
    if (this.windows.size === 0) return null;
    const slices = this.results();
    return { json: renderTimeslicesJson(slices, inputConfig), csv: renderTimeslicesCsv(slices) };
  }
}

/**
 * One metric as AIPerf's `JsonMetricResult` lists it (the order of `profile_export_aiperf.json` too): `unit`, `avg`,
 * the percentiles, `min`, `max`, `std`; a single value has `unit` and `avg` only.
 */
function jsonResult(r: DistributionResult | ScalarResult): Record<string, unknown> {
  if (!("p50" in r)) return { unit: r.unit, avg: r.avg };
  const { unit, avg, p1, p5, p10, p25, p50, p75, p90, p95, p99, min, max, std } = r;
  return { unit, avg, p1, p5, p10, p25, p50, p75, p90, p95, p99, min, max, std };
}

/** A CSV field as Python's csv module writes it (quoted only when it must be). */
function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** A copy without null members, as pydantic's `exclude_none` writes a model (arrays are kept as they are). */
function withoutNulls(value: unknown): unknown {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== null) out[k] = withoutNulls(v);
  return out;
}

/** One slice's object in the JSON: `timeslice_index`, then the metrics it has, in declared order. */
function sliceEntry(slice: Timeslice): Record<string, unknown> {
  const entry: Record<string, unknown> = { timeslice_index: slice.index };
  for (const tag of AIPERF_METRIC_TAGS) {
    const r = slice.summary[tag];
    if (r) entry[tag] = jsonResult(r);
  }
  return entry;
}

/** `JSON.stringify(value, null, 2)` for a value nested `depth` levels deep in a document printed that way. */
function nested(value: unknown, depth: number): string {
  return JSON.stringify(value, null, 2).replaceAll("\n", `\n${"  ".repeat(depth)}`);
}

/**
 * `profile_export_aiperf_timeslices.json` a slice at a time (for `writeFileAtomic`: a run with very many slices
 * never holds the whole text): `{"timeslices": [{"timeslice_index": i, <metric>: {...}, ...}], "input_config":
 * {...}}`, pretty-printed with indent 2. A slice lists only the metrics it has (AIPerf dumps with `exclude_none`),
 * in `AIPERF_METRIC_TAGS` order, each as in `profile_export_aiperf.json` (`unit`, then `avg`, the percentiles,
 * `min`, `max`, `std`; a single value has `unit` and `avg` only); numbers and the final newline as
 * `renderAiperfJson` writes them. A null `input_config`, and null members inside it, are left out.
 */
export function* timeslicesJsonChunks(
  slices: readonly Timeslice[],
  inputConfig: Readonly<Record<string, unknown>> | null,
): Generator<string> {
  const config = inputConfig === null ? "" : `,\n  "input_config": ${nested(withoutNulls(inputConfig), 1)}`;
  if (slices.length === 0) {
    yield `{\n  "timeslices": []${config}\n}\n`;
    return;
  }
  for (let i = 0; i < slices.length; i++) {
    yield `${i === 0 ? '{\n  "timeslices": [\n    ' : ",\n    "}${nested(sliceEntry(slices[i]!), 2)}`;
  }
  yield `\n  ]${config}\n}\n`;
}

/** The whole text of `profile_export_aiperf_timeslices.json` (see `timeslicesJsonChunks`). */
export function renderTimeslicesJson(
  slices: readonly Timeslice[],
  inputConfig: Readonly<Record<string, unknown>> | null,
): string {
  return [...timeslicesJsonChunks(slices, inputConfig)].join("");
}

/**
 * `profile_export_aiperf_timeslices.csv` a slice at a time, in AIPerf's tidy layout: `Timeslice,Metric,Unit,Stat,
 * Value`, then per slice (in order) and per metric (sorted by tag) one row for each statistic it has, in
 * `STAT_KEYS` order (a single value is one `avg` row). `Metric` is the header alone (no unit), values are `%.2f`,
 * lines end in CRLF (Python's csv module).
 */
export function* timeslicesCsvChunks(slices: readonly Timeslice[]): Generator<string> {
  yield "Timeslice,Metric,Unit,Stat,Value\r\n";
  const tags = [...AIPERF_METRIC_TAGS].sort();
  for (const slice of slices) {
    let text = "";
    for (const tag of tags) {
      const r = slice.summary[tag];
      if (!r) continue;
      const head = `${slice.index},${csvField(METRICS[tag].header)},${csvField(r.unit)}`;
      if ("p50" in r) for (const stat of STAT_KEYS) text += `${head},${stat},${formatFixed2(r[stat])}\r\n`;
      else text += `${head},avg,${formatFixed2(r.avg)}\r\n`;
    }
    yield text;
  }
}

/** The whole text of `profile_export_aiperf_timeslices.csv` (see `timeslicesCsvChunks`). */
export function renderTimeslicesCsv(slices: readonly Timeslice[]): string {
  return [...timeslicesCsvChunks(slices)].join("");
}
