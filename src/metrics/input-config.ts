import type { GoodputSlo } from "./goodput.ts";

/** How a run sent its requests, in the terms AIPerf's config uses. */
export type InputConfigLoad =
  | {
      kind: "fixed";
      autoOffset?: boolean | undefined;
      startOffsetMs?: number | undefined;
      endOffsetMs?: number | undefined;
    }
  | {
      kind: "rate";
      rate: number;
      arrivals: "constant" | "poisson";
      count: number;
      concurrency?: number | undefined;
    }
  | { kind: "concurrency"; concurrency: number; count: number };

export interface InputConfigFacts {
  models: readonly string[];
  endpointType: "chat" | "completions";
  streaming: boolean;
  /** Null for a simulated run. */
  url: string | null;
  /** Every server, when requests went round-robin over several. */
  urls?: readonly string[] | undefined;
  /** How a request's model was chosen among several (AIPerf's `--model-selection-strategy`). */
  modelSelection?: "round_robin" | "random" | undefined;
  file?: string | undefined;
  customDatasetType?: string | undefined;
  randomSeed?: number | undefined;
  goodput: readonly GoodputSlo[];
  load: InputConfigLoad;
  warmupRequestCount?: number | undefined;
  benchmarkDurationS?: number | undefined;
  benchmarkGracePeriodS?: number | undefined;
  requestTimeoutS?: number | undefined;
  /** servelab's own facts (recipe, arm, step-time model…), kept apart from AIPerf's keys. */
  servelab?: Readonly<Record<string, unknown>> | undefined;
}

/** SLOs as AIPerf keeps them (`--goodput "time_to_first_token:20000"` → `{time_to_first_token: 20000}`). */
export function goodputRecord(slos: readonly GoodputSlo[]): Record<string, number> {
  return Object.fromEntries(slos.map((s) => [s.tag, s.threshold]));
}

const defined = (o: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

/**
 * `input_config` of `profile_export_aiperf.json` in AIPerf's shape: `endpoint` (model_names, type, streaming, url),
 * `input` (goodput, fixed_schedule and its offsets, file, custom_dataset_type, random_seed), `loadgen`
 * (concurrency, request_rate, request_rate_mode, request_count, warmup_request_count, benchmark_duration,
 * benchmark_grace_period), and servelab's own facts under `servelab`. Only what was set, as AIPerf writes it.
 */
export function aiperfInputConfig(f: InputConfigFacts): Record<string, unknown> {
  const fixed = f.load.kind === "fixed" ? f.load : undefined;
  const loadgen =
    f.load.kind === "rate"
      ? {
          request_rate: f.load.rate,
          request_rate_mode: f.load.arrivals,
          request_count: f.load.count,
          concurrency: f.load.concurrency,
        }
      : f.load.kind === "concurrency"
        ? {
            concurrency: f.load.concurrency,
            request_count: Number.isFinite(f.load.count) ? f.load.count : undefined,
          }
        : {};
  return {
    endpoint: defined({
      model_names: [...f.models],
      type: f.endpointType,
      streaming: f.streaming,
      url: f.url,
      urls: f.urls ? [...f.urls] : undefined,
      model_selection_strategy: f.modelSelection,
      timeout: f.requestTimeoutS,
    }),
    input: defined({
      goodput: f.goodput.length > 0 ? goodputRecord(f.goodput) : undefined,
      fixed_schedule: fixed ? true : undefined,
      fixed_schedule_auto_offset: fixed?.autoOffset || undefined,
      fixed_schedule_start_offset: fixed?.startOffsetMs,
      fixed_schedule_end_offset: fixed?.endOffsetMs,
      file: f.file,
      custom_dataset_type: f.customDatasetType,
      random_seed: f.randomSeed,
    }),
    loadgen: defined({
      ...loadgen,
      warmup_request_count: f.warmupRequestCount || undefined,
      benchmark_duration: f.benchmarkDurationS,
      benchmark_grace_period: f.benchmarkDurationS === undefined ? undefined : f.benchmarkGracePeriodS,
    }),
    ...(f.servelab ? { servelab: { ...f.servelab } } : {}),
  };
}

/**
 * The goodput SLOs a run was made with, read from its `input_config`: AIPerf's place (`input.goodput`) first, then
 * where servelab wrote them before (`goodput` at the top). Undefined when the run recorded none.
 */
export function recordedGoodput(inputConfig: unknown): Record<string, unknown> | undefined {
  const c = inputConfig as { input?: { goodput?: unknown }; goodput?: unknown } | undefined;
  const g = c?.input?.goodput ?? c?.goodput;
  return g !== null && typeof g === "object" && !Array.isArray(g)
    ? (g as Record<string, unknown>)
    : undefined;
}
