import { randomUUID } from "node:crypto";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ServelabError } from "../errors.ts";
import { removeStaleTemps, writeFileAtomic } from "../io/atomic-write.ts";
import { makeDir } from "../io/make-dir.ts";
import { INCOMPLETE_MARKER, lockOutputDir } from "../io/output-dir.ts";
import type { AiperfSummary, ErrorSummaryEntry } from "../metrics/aiperf-metrics.ts";
import { MetricsCollector } from "../metrics/collector.ts";
import {
  formatRawLine,
  JsonlRecordWriter,
  naiveLocalIsoTimestamp,
  PROFILE_EXPORT_JSONL,
  PROFILE_EXPORT_RAW_JSONL,
  type RecordProcessIds,
  writeAiperfSummaryFiles,
} from "../metrics/exporters.ts";
import type { GoodputSlo } from "../metrics/goodput.ts";
import { aiperfInputConfig } from "../metrics/input-config.ts";
import type { RequestRecord } from "../metrics/record.ts";
import { recordIds } from "../metrics/record-ids.ts";
import { percentileOfSorted } from "../metrics/summary.ts";
import {
  TimesliceCollector,
  timesliceFileNames,
  timeslicesCsvChunks,
  timeslicesJsonChunks,
} from "../metrics/timeslices.ts";
import { createRng } from "../random.ts";
import { type FixedScheduleOptions, rateSchedule, scheduleRows } from "../trace/schedule.ts";
import type { TraceRow } from "../trace/types.ts";
import { INPUTS_JSON, InputsFileWriter } from "./inputs-file.ts";
import { buildHeaders, ENDPOINT_PATHS, type EndpointKind } from "./openai-request.ts";
import { sleepUntil } from "./precise-sleep.ts";
import { RequestBuilder, type RequestBuilderOptions } from "./request-builder.ts";
import {
  type ServerMetricsFormat,
  serverMetricsEndpoints,
  serverMetricsOptionsFromEnv,
  startServerMetrics,
} from "./server-metrics.ts";

/** How prompts are synthesized from hash ids (see PromptSynthesizer); the tokenizer is DeepSeek-V3's. */
export type PromptSource = Pick<
  RequestBuilderOptions,
  "blockSize" | "seed" | "corpusDir" | "tokenizer" | "recordProcessors"
>;

import { createHrClock, createPool, type HrClock, sendRequest, type TokenCounting } from "./stream-client.ts";

export type LoadMode =
  | ({ kind: "fixed" } & FixedScheduleOptions)
  | { kind: "rate"; rate: number; arrivals: "constant" | "poisson"; count: number; concurrency?: number }
  | { kind: "concurrency"; concurrency: number; count: number };

export interface BenchConfig {
  /** Server origin, e.g. http://127.0.0.1:8000. */
  url: string;
  /** `--slice-duration`: also AIPerf's per-window metrics (see TimesliceCollector). */
  sliceDurationS?: number | undefined;
  /** More servers: requests go round-robin over `url` and these (AIPerf's repeated `--url`). */
  moreUrls?: readonly string[];
  endpoint: EndpointKind;
  model: string;
  /** More model names (AIPerf's `-m a,b`), chosen per request by `modelSelection`. */
  moreModels?: readonly string[];
  /** AIPerf's `--model-selection-strategy`: in turn (default) or at random (seeded). */
  modelSelection?: "round_robin" | "random";
  /** Seeds the random model selection. */
  seed?: number;
  streaming: boolean;
  rows: readonly TraceRow[];
  mode: LoadMode;
  warmupCount: number;
  /**
   * Most sockets open to the server at once (AIPerf's `AIPERF_HTTP_CONNECTION_LIMIT`, default 2500): a burst of
   * requests due at the same timestamp queues for a socket instead of opening hundreds at once.
   */
  connectionLimit?: number;
  /** Stop sending after this long; requests still running after the grace period are cancelled. */
  durationS?: number | undefined;
  gracePeriodS: number;
  timeoutS: number;
  extraInputs: Readonly<Record<string, unknown>>;
  headers: Readonly<Record<string, string>>;
  apiKey?: string | undefined;
  goodput: readonly GoodputSlo[];
  artifactDir: string;
  /** Write `inputs.json` (every profiled request's body as sent); default true. */
  writeInputs?: boolean;
  /**
   * Keep `profile_export.jsonl` (AIPerf's export level `records`, the default); false is level `summary`: the
   * records still stream to the file while the run goes, so a killed run keeps them, and it is removed at the end.
   */
  exportRecords?: boolean;
  /**
   * Also write `profile_export_raw.jsonl` (AIPerf's export level `raw`): each request's payload and headers as sent,
   * its status and every response message with its arrival.
   */
  exportRaw?: boolean;
  /** Prometheus endpoints scraped during the run besides each server's `/metrics` (see startServerMetrics). */
  serverMetrics?: readonly string[];
  /** False: no server's metrics scraped, not even each `--url`'s `/metrics` (AIPerf's `--no-server-metrics`). */
  serverMetricsEnabled?: boolean;
  serverMetricsFormats?: readonly ServerMetricsFormat[];
  /** Each finished request, as it finishes (a live display). */
  onFinished?: (record: RequestRecord) => void;
  useServerTokenCount: boolean;
  cliCommand: string;
  inputConfig: Readonly<Record<string, unknown>>;
  /**
   * The run's clock; default one zeroed at the start. A benchmark that compares the records with a server's own
   * monotonic stamps passes one that reads `process.hrtime` unshifted.
   */
  clock?: HrClock;
  /** Aborting stops sending; in-flight requests then finish (or are cancelled after the grace period). */
  stop?: AbortSignal;
  /** Aborting cancels in-flight requests at once (a second Ctrl-C). */
  cancel?: AbortSignal;
  onProgress?: (p: { sent: number; done: number; errors: number; total: number }) => void;
}

export interface BenchResult {
  summary: AiperfSummary;
  errors: ErrorSummaryEntry[];
  files: {
    json: string;
    csv: string;
    jsonl: string;
    inputs?: string;
    timeslices?: { json: string; csv: string };
  };
  /** Actual minus scheduled send time, ms, over the profiled requests that had a schedule. */
  lag: { p50: number; p99: number; max: number } | null;
  sent: number;
  cancelled: boolean;
}

interface Prepared {
  row: TraceRow;
  profiled: boolean;
  n: number;
  requestId: string;
  inputTokens: number;
  /** Encoded ahead of its send, so the send hands undici bytes and nothing else. */
  body: Uint8Array;
  headers: Record<string, string>;
}

interface Planned {
  row: TraceRow;
  /** Send offset, ms after the phase start; undefined in concurrency mode. */
  atMs?: number;
}

/** The requests of a run, in send order; a closed loop bounded only by a duration has no last one. */
interface Plan {
  readonly length: number;
  at(i: number): Planned;
}

function plan(rows: readonly TraceRow[], mode: LoadMode): Plan {
  if (rows.length === 0) throw new ServelabError("TRACE_EMPTY", "the input has no requests");
  const fromArray = (items: Planned[]): Plan => ({ length: items.length, at: (i) => items[i]! });
  if (mode.kind === "fixed")
    return fromArray(scheduleRows(rows, mode).map(({ row, atMs }) => ({ row, atMs })));
  const pick = (i: number) => rows[i % rows.length]!;
  if (mode.kind === "rate") {
    return fromArray(
      rateSchedule(mode.count, mode.rate, mode.arrivals, 0).map((atMs, i) => ({ row: pick(i), atMs })),
    );
  }
  return { length: mode.count, at: (i) => ({ row: pick(i) }) };
}

/**
 * The run's `input_config` in AIPerf's shape, from what the run itself knows (endpoint, model, schedule, SLOs),
 * with the caller's sections (the input file, the dataset type…) merged over it section by section.
 */
function runInputConfig(cfg: BenchConfig): Record<string, unknown> {
  const base = aiperfInputConfig({
    models: [cfg.model, ...(cfg.moreModels ?? [])],
    endpointType: cfg.endpoint,
    streaming: cfg.streaming,
    url: cfg.url,
    ...(cfg.moreUrls?.length ? { urls: [cfg.url, ...cfg.moreUrls] } : {}),
    ...(cfg.moreModels?.length ? { modelSelection: cfg.modelSelection ?? "round_robin" } : {}),
    goodput: cfg.goodput,
    load: cfg.mode,
    warmupRequestCount: cfg.warmupCount,
    benchmarkDurationS: cfg.durationS,
    benchmarkGracePeriodS: cfg.gracePeriodS,
    requestTimeoutS: cfg.timeoutS,
  });
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(cfg.inputConfig)) {
    const mine = base[key];
    out[key] =
      mine && typeof mine === "object" && value && typeof value === "object" && !Array.isArray(value)
        ? { ...mine, ...value }
        : value;
  }
  return out;
}

/** AIPerf's default `AIPERF_HTTP_CONNECTION_LIMIT` (aiperf-spec: 2,500 connections per worker). */
export const DEFAULT_CONNECTION_LIMIT = 2500;

/** `AIPERF_HTTP_CONNECTION_LIMIT` from the environment, as AIPerf reads it; absent means the default. */
export function connectionLimitFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const text = env.AIPERF_HTTP_CONNECTION_LIMIT;
  if (text === undefined || text.trim() === "") return DEFAULT_CONNECTION_LIMIT;
  const v = Number(text);
  if (!Number.isSafeInteger(v) || v < 1)
    throw new ServelabError(
      "USAGE",
      `AIPERF_HTTP_CONNECTION_LIMIT must be a positive integer, got '${text}'`,
    );
  return v;
}

/** How far ahead of a send the requests due soon are built, so a burst is not built between its own sends. */
const LOOKAHEAD_MS = 100;

/** Prompts up to this many tokens in all are built before the run, as AIPerf builds all of its prompts. */
const PREBUILD_TOKENS = 20_000_000;

/**
 * Hands out prepared requests in order. A run whose prompts fit PREBUILD_TOKENS has them all built up front
 * (`prebuilt` resolves then), so no building competes with the measurement; a larger one builds each request once
 * it is due within LOOKAHEAD_MS of the next send, so memory stays bounded and a burst is not built between its own
 * sends.
 */
function lookahead(planned: Plan, build: (p: Planned, i: number) => Promise<Prepared>) {
  const ready = new Map<number, Promise<Prepared>>();
  let next = 0;
  let total = 0;
  for (let i = 0; i < planned.length && total <= PREBUILD_TOKENS; i++)
    total += planned.at(i).row.input_length;
  if (total <= PREBUILD_TOKENS) {
    for (; next < planned.length; next++) ready.set(next, build(planned.at(next), next));
  }
  return {
    prebuilt: Promise.all(ready.values()),
    take(i: number): Promise<Prepared> {
      const horizon = (planned.at(i).atMs ?? 0) + LOOKAHEAD_MS;
      while (
        next < planned.length &&
        (next <= i || (planned.at(next).atMs ?? Number.POSITIVE_INFINITY) <= horizon)
      ) {
        ready.set(next, build(planned.at(next), next));
        next++;
      }
      const p = ready.get(i)!;
      ready.delete(i);
      return p;
    },
  };
}

/**
 * Replays requests against an OpenAI-compatible server and measures them as AIPerf does: an optional warmup phase
 * whose records are dropped, then the profiled phase on the chosen schedule (fixed timestamps, a request rate, or
 * a fixed concurrency). Each finished request goes to the metrics and to `profile_export.jsonl` at once, so an
 * interrupted run keeps everything measured so far; the summary files are written at the end, even after a stop.
 */
export async function runBench(cfg: BenchConfig, deps: { prompts: PromptSource }): Promise<BenchResult> {
  // One run at a time per artifact directory, marked unfinished until its summary is written.
  const lock = await lockOutputDir(cfg.artifactDir, cfg.cliCommand);
  try {
    const marker = join(cfg.artifactDir, INCOMPLETE_MARKER);
    await removeStaleTemps(cfg.artifactDir);
    try {
      await makeDir(cfg.artifactDir);
      await writeFile(marker, "this run has not finished\n");
    } catch (e) {
      throw new ServelabError("FILE_WRITE", `cannot write ${marker}: ${(e as Error).message}`);
    }
    const result = await replay(cfg, deps);
    await rm(marker, { force: true });
    return result;
  } finally {
    await lock.release();
  }
}

async function replay(cfg: BenchConfig, deps: { prompts: PromptSource }): Promise<BenchResult> {
  const clock = cfg.clock ?? createHrClock();
  const nowMs = () => clock.nowNs() / 1e6;
  const origins = [cfg.url, ...(cfg.moreUrls ?? [])].map((u) => new URL(u).origin);
  const planned = plan(cfg.rows, cfg.mode);
  const concurrencyCap = cfg.mode.kind === "fixed" ? undefined : cfg.mode.concurrency;
  const limit = cfg.connectionLimit ?? DEFAULT_CONNECTION_LIMIT;
  // One pool per server, each within the connection limit (AIPerf's limit is per worker process).
  const pools = origins.map((o) => createPool(o, { connections: Math.min(concurrencyCap ?? limit, limit) }));
  const builder = new RequestBuilder({
    endpoint: cfg.endpoint,
    model: cfg.model,
    streaming: cfg.streaming,
    extraInputs: cfg.extraInputs,
    ...deps.prompts,
    // Taking the server's counts, nothing is encoded again but a row's own text, which the building thread can
    // count: a counting thread would only cost its tokenizer's load.
    ...(cfg.useServerTokenCount ? { recordProcessors: 0 } : {}),
  });
  const count = (t: string) => builder.count(t);
  const tokens: TokenCounting = cfg.useServerTokenCount
    ? { source: "server", fallback: count }
    : { source: "client", countTokens: count };
  const collector = new MetricsCollector({ goodput: cfg.goodput });
  const timeslices =
    cfg.sliceDurationS === undefined
      ? undefined
      : new TimesliceCollector({ sliceDurationS: cfg.sliceDurationS, goodput: cfg.goodput });
  const jsonlPath = join(cfg.artifactDir, PROFILE_EXPORT_JSONL);
  const ids = recordIds();
  const jsonl = await JsonlRecordWriter.open(jsonlPath, { ids });
  const raw = cfg.exportRaw
    ? await JsonlRecordWriter.open(join(cfg.artifactDir, PROFILE_EXPORT_RAW_JSONL), { ids })
    : undefined;
  const inputs =
    cfg.writeInputs === false ? undefined : new InputsFileWriter(join(cfg.artifactDir, INPUTS_JSON));
  try {
    return await measure(cfg, {
      clock,
      nowMs,
      origins,
      planned,
      pools,
      tokens,
      builder,
      collector,
      timeslices,
      jsonl,
      raw,
      ids,
      jsonlPath,
      inputs,
    });
  } catch (e) {
    // Whatever finished is in the file already; the half-built inputs.json goes, and so do the sockets.
    await inputs?.abort();
    await jsonl.close().catch(() => {});
    await raw?.close().catch(() => {});
    await Promise.all(pools.map((p) => p.close().catch(() => {})));
    throw e;
  } finally {
    await builder.close();
  }
}

interface Run {
  clock: ReturnType<typeof createHrClock>;
  nowMs: () => number;
  origins: string[];
  planned: Plan;
  pools: ReturnType<typeof createPool>[];
  tokens: TokenCounting;
  builder: RequestBuilder;
  collector: MetricsCollector;
  timeslices: TimesliceCollector | undefined;
  jsonl: JsonlRecordWriter;
  /** `profile_export_raw.jsonl`, at export level raw. */
  raw: JsonlRecordWriter | undefined;
  ids: RecordProcessIds;
  jsonlPath: string;
  inputs: InputsFileWriter | undefined;
}

async function measure(cfg: BenchConfig, run: Run): Promise<BenchResult> {
  const {
    clock,
    nowMs,
    origins,
    planned,
    pools,
    tokens,
    builder,
    collector,
    timeslices,
    jsonl,
    raw,
    ids,
    jsonlPath,
    inputs,
  } = run;
  const models = [cfg.model, ...(cfg.moreModels ?? [])];
  const modelFor = (n: number) =>
    models.length === 1
      ? cfg.model
      : cfg.modelSelection === "random"
        ? models[createRng(cfg.seed ?? 0, `model/${n}`).int(models.length)]!
        : models[n % models.length]!;
  const startDate = new Date();
  const scraping = await startServerMetrics(
    serverMetricsEndpoints({
      inferenceUrls: [cfg.url, ...(cfg.moreUrls ?? [])],
      extraUrls: cfg.serverMetrics ?? [],
      enabled: cfg.serverMetricsEnabled !== false,
    }),
    cfg.artifactDir,
    () => Number(clock.wallNsAtZero) + clock.nowNs(),
    {
      checkReachability: true,
      ...serverMetricsOptionsFromEnv(process.env),
      ...(cfg.serverMetricsFormats ? { formats: cfg.serverMetricsFormats } : {}),
      log: (level, text) => process.stderr.write(`${level === "warning" ? "warning: " : ""}${text}\n`),
    },
  );
  // Every request in flight is cancelled at once (Ctrl-C, the end of a duration run's grace period), so they share
  // one signal: one listener in all, not one per request.
  const cancelInFlight = new AbortController();
  cfg.cancel?.addEventListener("abort", () => cancelInFlight.abort());

  /** Builds a request ahead of its send time, its body in the builder's thread. */
  const prepare = async (row: TraceRow, profiled: boolean, n: number): Promise<Prepared> => {
    // The server's usage replaces a client count of the prompt, so there is none to wait for.
    const [{ body }, inputTokens] = await Promise.all([
      builder.build(row, modelFor(n)),
      cfg.useServerTokenCount && row.text_input === undefined ? row.input_length : builder.promptLength(row),
    ]);
    // AIPerf sends a uuid4 per request as X-Request-ID.
    const requestId = randomUUID();
    const headers = buildHeaders({
      streaming: cfg.streaming,
      requestId,
      apiKey: cfg.apiKey,
      extra: cfg.headers,
    });
    return { row, profiled, n, requestId, inputTokens, body, headers };
  };
  /** Sends and nothing else: what is written about the request happens once it has finished. */
  const send = async (prepared: Prepared): Promise<RequestRecord> => {
    const { row, profiled, n, requestId, inputTokens, body, headers } = prepared;
    const conversationId = row.session_id ?? requestId;
    // Servers in turn, as AIPerf spreads requests over repeated --url.
    const server = n % origins.length;
    try {
      return await sendRequest(
        pools[server]!,
        {
          sessionNum: n,
          requestId,
          conversationId,
          turnIndex: 0,
          origin: origins[server]!,
          ...(origins.length > 1 ? { target: origins[server]! } : {}),
          path: ENDPOINT_PATHS[cfg.endpoint],
          headers,
          body,
          streaming: cfg.streaming,
          inputTokens,
          signal: cancelInFlight.signal,
        },
        { clock, tokens, timeoutMs: cfg.timeoutS * 1000, keepResponses: cfg.exportRaw === true },
      );
    } finally {
      if (profiled) inputs?.add(n, conversationId, body);
    }
  };

  await builder.ready();
  const ahead = lookahead(planned, (p, i) => prepare(p.row, true, i));
  // Warmup: sequential requests from the start of the input; their records are dropped.
  for (let i = 0; i < cfg.warmupCount && !cfg.stop?.aborted; i++)
    await send(await prepare(cfg.rows[i % cfg.rows.length]!, false, i));
  await ahead.prebuilt;

  const phaseStart = nowMs();
  await scraping.markProfilingStart();
  const deadline = cfg.durationS === undefined ? Number.POSITIVE_INFINITY : phaseStart + cfg.durationS * 1000;
  const lags: number[] = [];
  let sent = 0;
  let done = 0;
  let errors = 0;
  const progress = () => cfg.onProgress?.({ sent, done, errors, total: planned.length });
  const utf8 = new TextDecoder();
  const finished = (rec: RequestRecord, sent: Prepared) => {
    done++;
    // AIPerf's duration mode: a request ending after the grace period is left out entirely.
    const endMs = rec.chunkNs.length > 0 ? rec.chunkNs[rec.chunkNs.length - 1]! / 1e6 : nowMs();
    if (endMs > deadline + cfg.gracePeriodS * 1000) return;
    // Record times are relative to the run's clock; exported as wall-clock nanoseconds like AIPerf's.
    const wall = Number(clock.wallNsAtZero);
    const exported: RequestRecord = {
      ...rec,
      startNs: rec.startNs + wall,
      ackNs: rec.ackNs === undefined ? undefined : rec.ackNs + wall,
      endNs: rec.endNs === undefined ? undefined : rec.endNs + wall,
      chunkNs: Array.from(rec.chunkNs, (t) => t + wall),
      ...(rec.responses
        ? { responses: rec.responses.map((r) => ({ perfNs: r.perfNs + wall, text: r.text })) }
        : {}),
    };
    if (exported.error) errors++;
    const metrics = collector.add(exported);
    timeslices?.add(exported);
    jsonl.write(exported, metrics);
    raw?.writeLine(
      formatRawLine(exported, metrics, ids, { body: utf8.decode(sent.body), headers: sent.headers }),
    );
    cfg.onFinished?.(rec);
    progress();
  };

  const running: Promise<void>[] = [];
  const launch = (ready: Prepared) => {
    sent++;
    running.push(send(ready).then((rec) => finished(rec, ready)));
    progress();
  };

  if (cfg.mode.kind === "concurrency" || cfg.mode.kind === "rate") {
    // A semaphore caps requests in flight (concurrency mode, or a rate with a concurrency cap).
    const cap = cfg.mode.concurrency ?? Number.POSITIVE_INFINITY;
    let active = 0;
    const waiters: (() => void)[] = [];
    const acquire = async () => {
      while (active >= cap) await new Promise<void>((resolve) => waiters.push(resolve));
      active++;
    };
    const release = () => {
      active--;
      waiters.shift()?.();
    };
    for (let i = 0; i < planned.length; i++) {
      const p = planned.at(i);
      if (cfg.stop?.aborted || nowMs() >= deadline) break;
      const ready = await ahead.take(i);
      if (p.atMs !== undefined) {
        await sleepUntil(phaseStart + p.atMs, nowMs);
        lags.push(nowMs() - phaseStart - p.atMs);
      }
      await acquire();
      if (cfg.stop?.aborted) {
        release();
        break;
      }
      sent++;
      running.push(
        send(ready)
          .then((rec) => finished(rec, ready))
          .finally(release),
      );
      progress();
    }
  } else {
    for (let i = 0; i < planned.length; i++) {
      const p = planned.at(i);
      if (cfg.stop?.aborted) break;
      const due = phaseStart + p.atMs!;
      if (due >= deadline) break;
      const ready = await ahead.take(i);
      await sleepUntil(due, nowMs);
      lags.push(nowMs() - due);
      launch(ready);
    }
  }
  // Past the end of the sending phase, give in-flight requests the grace period in duration mode.
  if (Number.isFinite(deadline)) {
    const graceEnd = deadline + cfg.gracePeriodS * 1000;
    const timer = setTimeout(() => cancelInFlight.abort(), Math.max(0, graceEnd - nowMs()));
    await Promise.all(running);
    clearTimeout(timer);
  } else {
    await Promise.all(running);
  }
  await jsonl.close();
  await raw?.close();
  await inputs?.close();
  await Promise.all(pools.map((p) => p.close()));
  await scraping.stop({ ...runInputConfig(cfg), cli_command: cfg.cliCommand });
  if (cfg.exportRecords === false) await rm(jsonlPath, { force: true });

  const summary = collector.finish();
  const errorSummary = collector.errorSummary();
  const files = await writeAiperfSummaryFiles(cfg.artifactDir, summary, {
    inputConfig: { ...runInputConfig(cfg), cli_command: cfg.cliCommand },
    wasCancelled: cfg.stop?.aborted === true,
    errorSummary,
    startTime: naiveLocalIsoTimestamp(startDate),
    endTime: naiveLocalIsoTimestamp(new Date()),
  });
  const slices = timeslices?.results() ?? [];
  let timesliceFiles: { json: string; csv: string } | undefined;
  if (slices.length > 0) {
    const names = timesliceFileNames();
    timesliceFiles = { json: join(cfg.artifactDir, names.json), csv: join(cfg.artifactDir, names.csv) };
    await writeFileAtomic(
      timesliceFiles.json,
      timeslicesJsonChunks(slices, { ...runInputConfig(cfg), cli_command: cfg.cliCommand }),
    );
    await writeFileAtomic(timesliceFiles.csv, timeslicesCsvChunks(slices));
  }
  const sortedLags = lags.sort((a, b) => a - b);
  return {
    summary,
    errors: errorSummary,
    files: {
      ...files,
      jsonl: jsonlPath,
      ...(inputs ? { inputs: inputs.file } : {}),
      ...(timesliceFiles ? { timeslices: timesliceFiles } : {}),
    },
    lag:
      sortedLags.length === 0
        ? null
        : {
            p50: percentileOfSorted(sortedLags, 50),
            p99: percentileOfSorted(sortedLags, 99),
            max: sortedLags[sortedLags.length - 1]!,
          },
    sent,
    cancelled: cfg.stop?.aborted === true,
  };
}
