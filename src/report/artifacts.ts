import { access, readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { ServelabError } from "../errors.ts";
import { findExportFiles, readExportLines, readExportText } from "../io/export-files.ts";
import { INCOMPLETE_MARKER } from "../io/output-dir.ts";
import { PROFILE_EXPORT_JSONL } from "../metrics/exporters.ts";
import type { RequestRecord } from "../metrics/record.ts";
import type { SimExtras } from "../sim/run-sim.ts";
import { COMPARE_METRIC_TAGS, type CompareMetricTag } from "./compare.ts";

type JsonlRecord = {
  metadata?: {
    request_start_ns?: number;
    session_num?: number;
    x_request_id?: string;
    conversation_id?: string;
    turn_index?: number;
  };
  metrics?: Record<string, { value?: unknown }>;
  error?: { code?: number | null; type?: string; message?: string } | null;
};

const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

/**
 * A request record from one `profile_export.jsonl` line. The first chunk is at start + TTFT and each later one an
 * inter-chunk latency after the previous, which is exactly how AIPerf derived those from the chunk times.
 */
export function recordFromJsonl(rec: JsonlRecord, index: number): RequestRecord {
  const m = rec.metrics ?? {};
  const start = num(rec.metadata?.request_start_ns) ?? 0;
  const ttft = num(m.time_to_first_token?.value);
  const latency = num(m.request_latency?.value);
  const icl = Array.isArray(m.inter_chunk_latency?.value) ? (m.inter_chunk_latency!.value as unknown[]) : [];
  const chunkNs: number[] = [];
  if (ttft !== undefined) {
    let t = start + ttft * 1e6;
    chunkNs.push(t);
    for (const gap of icl) {
      const g = num(gap);
      if (g === undefined) break;
      t += g * 1e6;
      chunkNs.push(t);
    }
  } else if (latency !== undefined) {
    chunkNs.push(start + latency * 1e6);
  }
  const id = rec.metadata?.x_request_id ?? `line${index}`;
  const error = rec.error
    ? { code: rec.error.code ?? 0, type: rec.error.type ?? "Error", message: rec.error.message ?? "" }
    : null;
  return {
    sessionNum: num(rec.metadata?.session_num) ?? index,
    requestId: id,
    conversationId: rec.metadata?.conversation_id ?? id,
    turnIndex: num(rec.metadata?.turn_index) ?? 0,
    startNs: start,
    chunkNs,
    inputTokens: num(m.input_sequence_length?.value) ?? num(m.error_isl?.value) ?? 0,
    outputTokens: num(m.output_token_count?.value) ?? num(m.output_sequence_length?.value) ?? 0,
    reasoningTokens: num(m.reasoning_token_count?.value),
    error,
    streaming: ttft !== undefined,
  };
}

/** Per-request metrics the report compares, in display units (ms, tokens/s/user). */
export const REPORT_METRICS = COMPARE_METRIC_TAGS;
export type ReportMetric = CompareMetricTag;

/** One arm's measurements, read back from its artifact directory (servelab's or AIPerf's). */
export interface ArmArtifacts {
  name: string;
  dir: string;
  /** The requests, rebuilt from their JSONL lines (chunk times from TTFT and the inter-chunk latencies). */
  records: RequestRecord[];
  /** One value per request that has the metric. */
  values: Record<ReportMetric, number[]>;
  /** Send time (s since the arm's first send) and TTFT (ms) of each request with a TTFT, for time series. */
  sendTimesS: number[];
  ttftMs: number[];
  /** Requests that failed. */
  errors: number;
  requests: number;
  /** The AIPerf summary (`profile_export_aiperf.json`) as written. */
  summary: Record<string, unknown>;
  /** Simulator-only figures, when the arm was simulated. */
  sim?: SimExtras;
  /** The run did not finish (read with `allowIncomplete`). */
  incomplete?: boolean;
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * Reads an arm's artifacts: every line of `profile_export.jsonl` (AIPerf's record format), the summary JSON, and
 * `servelab_sim.json` when present. Lines that are not valid records are reported with file:line.
 */
export async function readArmArtifacts(
  dir: string,
  name = basename(dir),
  opts: { allowIncomplete?: boolean } = {},
): Promise<ArmArtifacts> {
  const files = await findExportFiles(dir);
  const jsonl = files.jsonl;
  const incomplete = await exists(join(dir, INCOMPLETE_MARKER));
  if (incomplete && !opts.allowIncomplete) {
    throw new ServelabError(
      "RUN_INCOMPLETE",
      `${dir} holds a run that did not finish (it has ${INCOMPLETE_MARKER}): its records stop where the run stopped`,
      ["pass --allow-incomplete to report on what it holds anyway"],
    );
  }
  if (!(await exists(jsonl))) {
    throw new ServelabError(
      "FILE_NOT_FOUND",
      `${dir} has no ${PROFILE_EXPORT_JSONL} (not a servelab or AIPerf artifact directory)`,
    );
  }
  const values = Object.fromEntries(REPORT_METRICS.map((m) => [m, [] as number[]])) as Record<
    ReportMetric,
    number[]
  >;
  const records: RequestRecord[] = [];
  const starts: number[] = [];
  const ttfts: number[] = [];
  let errors = 0;
  let requests = 0;
  let lineNo = 0;
  const problems: string[] = [];
  for await (const line of readExportLines(jsonl)) {
    lineNo++;
    if (line.trim() === "") continue;
    let rec: JsonlRecord;
    try {
      rec = JSON.parse(line);
    } catch (e) {
      if (problems.length < 10) problems.push(`${jsonl}:${lineNo}: malformed JSON (${(e as Error).message})`);
      continue;
    }
    if (typeof rec !== "object" || rec === null || typeof rec.metrics !== "object" || rec.metrics === null) {
      if (problems.length < 10)
        problems.push(`${jsonl}:${lineNo}: not an AIPerf record (no "metrics" object)`);
      continue;
    }
    records.push(recordFromJsonl(rec, requests));
    requests++;
    if (rec.error) {
      errors++;
      continue;
    }
    for (const m of REPORT_METRICS) {
      const v = rec.metrics[m]?.value;
      if (typeof v === "number" && Number.isFinite(v)) values[m].push(v);
    }
    const ttft = rec.metrics.time_to_first_token?.value;
    const start = rec.metadata?.request_start_ns;
    if (typeof ttft === "number" && typeof start === "number") {
      starts.push(start);
      ttfts.push(ttft);
    }
  }
  if (problems.length > 0) throw new ServelabError("FILE_READ", `${jsonl} has invalid lines`, problems);
  const first = starts.reduce((a, b) => Math.min(a, b), Number.POSITIVE_INFINITY);
  const summaryFile = files.summary;
  const summary = (await exists(summaryFile))
    ? (JSON.parse(await readExportText(summaryFile)) as Record<string, unknown>)
    : {};
  const simFile = join(dir, "servelab_sim.json");
  const arm: ArmArtifacts = {
    name,
    dir,
    records,
    values,
    sendTimesS: starts.map((s) => (s - first) / 1e9),
    ttftMs: ttfts,
    errors,
    requests,
    summary,
  };
  if (await exists(simFile)) arm.sim = JSON.parse(await readFile(simFile, "utf8")) as SimExtras;
  if (incomplete) arm.incomplete = true;
  return arm;
}
