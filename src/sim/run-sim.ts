import { rm } from "node:fs/promises";
import { join } from "node:path";
import { engineSettingsFor } from "../engine/engine-settings.ts";
import { settingLabel } from "../engine/perf/bounds.ts";
import type { PerfModelChoice } from "../engine/perf-models.ts";
import { ServelabError } from "../errors.ts";
import { writeFileAtomic } from "../io/atomic-write.ts";
import { buildOutputDir, lockOutputDir } from "../io/output-dir.ts";
import { createBlockHasher } from "../kv/block-hash.ts";
import type { AiperfSummary } from "../metrics/aiperf-metrics.ts";
import { type RecordExport, startRecordExport } from "../metrics/export-thread.ts";
import {
  naiveUtcIsoTimestamp,
  PROFILE_EXPORT_CSV,
  PROFILE_EXPORT_JSON,
  PROFILE_EXPORT_JSONL,
  type RecordProcessIds,
  renderAiperfJson,
  writeAiperfSummaryFiles,
} from "../metrics/exporters.ts";
import { parseGoodput } from "../metrics/goodput.ts";
import { aiperfInputConfig } from "../metrics/input-config.ts";
import type { RequestRecord } from "../metrics/record.ts";
import { recordIds, seededRequestUuid } from "../metrics/record-ids.ts";
import { summarize } from "../metrics/summary.ts";
import { recipeSynthesisOptions } from "../recipe/load.ts";
import { armWorkerGroups, type Recipe } from "../recipe/schema.ts";
import { readTrace } from "../trace/reader.ts";
import { resolveTraceInput } from "../trace/resolve-dataset.ts";
import { scaleArrivals } from "../trace/schedule.ts";
import { synthesizeTrace } from "../trace/synthesize.ts";
import type { TraceRow } from "../trace/types.ts";
import { type PreparedTrace, prepareTrace, type SimResult, simulateArm } from "./cluster.ts";

export interface SimRunOptions {
  recipe: Recipe;
  /** Where the recipe file lives, to resolve a relative trace source. */
  recipeDir: string;
  arm: string;
  /** A trace file to replay instead of the recipe's trace. */
  traceFile?: string;
  dataDir?: string;
  seed?: number;
  /** Arrival-rate factor (Dynamo's `--speedup-ratio`): the trace's timestamps divided by it. Default 1. */
  load?: number;
  /** When the run starts, ISO 8601 (records carry epoch nanoseconds from it); default the recipe's `start_time`. */
  startTime?: string;
  outDir: string;
  perfModel: PerfModelChoice;
  cliCommand: string;
  onProgress?: (virtualMs: number, done: number, total: number) => void;
  /** A trace already prepared (e.g. shared by several arms). */
  prepared?: PreparedTrace;
  /**
   * The run's output, claimed and its record export started by the caller (`startSimOutput`), so that the export
   * thread can boot while the trace is prepared.
   */
  output?: SimOutput;
}

/** The KV block size of an arm's (first) workers: the one its trace is hashed with. */
export function armKvBlockSize(recipe: Recipe, arm: string): number {
  const a = recipe.arms[arm];
  return a?.workers?.kv_block_size ?? a?.prefill?.kv_block_size ?? 64;
}

/**
 * Where a simulation writes: `outDir` claimed for this run (a lock beside it), its files built in a fresh directory
 * that replaces `outDir` only once the run is complete, and the record export streaming into it.
 */
export interface SimOutput {
  /** The directory the files are written to until `commit`. */
  building: string;
  exporter: RecordExport;
  /** Moves the finished run into `outDir`. */
  commit(): Promise<void>;
  /**
   * Stops the export (if still running) and gives up the lock. A run that failed takes what it built with it (a
   * simulation is rerun, not resumed); one stopped from outside leaves it, marked incomplete.
   */
  release(failed?: boolean): Promise<void>;
}

/** Claims `outDir` and starts the record export of a simulation of about `requests` requests. */
export async function startSimOutput(
  recipe: Recipe,
  outDir: string,
  requests: number,
  command: string,
  ids?: RecordProcessIds,
): Promise<SimOutput> {
  const lock = await lockOutputDir(outDir, command);
  try {
    const build = await buildOutputDir(outDir);
    const exporter = await startRecordExport(
      {
        jsonlPath: join(build.path, PROFILE_EXPORT_JSONL),
        goodput: parseGoodput(recipe.benchmark.goodput),
        ...(ids ? { ids } : {}),
      },
      requests,
    );
    let finished = false;
    return {
      building: build.path,
      exporter,
      commit: async () => {
        finished = true;
        await build.commit();
      },
      release: async (failed = false) => {
        if (!finished) await exporter.finish().catch(() => {});
        if (failed && !finished) await rm(build.path, { recursive: true, force: true }).catch(() => {});
        await lock.release();
      },
    };
  } catch (e) {
    await lock.release();
    throw e;
  }
}

/** Simulator-only figures, reported next to the AIPerf metrics. */
export interface SimExtras {
  recipe: string;
  arm: string;
  perf_model: string;
  /** The step-time model each worker group ran, the profile bounds, and whether a measured profile is behind it. */
  step_time_model: { models: Record<string, string>; bounds: string; calibrated: boolean };
  seed: number;
  requests: number;
  simulated_s: number;
  prefix_cache_hit_rate: number;
  kv_transfer_ms: { count: number; mean: number; p50: number; p99: number; max: number } | null;
  kv_transfer_bytes: number;
  preemptions: number;
  router_index_errors: SimResult["routerIndexErrors"];
  targets: SimResult["targets"];
  timeline: SimResult["timeline"];
}

export interface SimRunResult {
  summary: AiperfSummary;
  extras: SimExtras;
  /** `profile_export_aiperf.json` plus the `servelab` object, as `servelab sim --json` prints it. */
  json: string;
  files: { json: string; csv: string; jsonl: string; extras: string };
}

/** The recipe's trace: its source, synthesized with its parameters and seed when it has some. */
export async function loadRecipeTrace(
  recipe: Recipe,
  recipeDir: string,
  opts: { traceFile?: string; dataDir?: string },
): Promise<TraceRow[]> {
  const resolveOpts = opts.dataDir === undefined ? {} : { dataDir: opts.dataDir };
  // A trace file given for the recipe's trace has the recipe's prompt blocks.
  if (opts.traceFile !== undefined)
    return readTrace(await resolveTraceInput(opts.traceFile, resolveOpts), {
      blockSize: recipe.benchmark.prompt_block_size,
    });
  const source =
    recipe.trace.source.includes("/") && !recipe.trace.source.startsWith(".")
      ? recipe.trace.source
      : join(recipeDir, recipe.trace.source);
  const synthesis = recipeSynthesisOptions(recipe);
  const rows = await readTrace(
    await resolveTraceInput(source, resolveOpts),
    synthesis ? { blockSize: synthesis.blockSize } : {},
  );
  return synthesis ? synthesizeTrace(rows, synthesis).rows : rows;
}

/** A simulated run's worker and record-processor ids: seeded, so that reruns are byte-identical. */
export function simProcessIds(recipe: Recipe, arm: string, seed?: number): RecordProcessIds {
  const { workerId, recordProcessorId } = recordIds({ seed: seed ?? recipe.trace.seed, label: arm });
  return { workerId, recordProcessorId };
}

const simIds = (opts: SimRunOptions) => simProcessIds(opts.recipe, opts.arm, opts.seed);

/** Epoch nanoseconds at the simulated run's zero: `startTime` (ISO 8601), else the recipe's `start_time`. */
export function simEpochNs(recipe: Recipe, startTime?: string): number {
  const text = startTime ?? recipe.benchmark.start_time;
  const ms = Date.parse(text);
  if (!Number.isFinite(ms))
    throw new ServelabError("USAGE", `start time '${text}' is not an ISO 8601 date and time`);
  return ms * 1e6;
}

/**
 * A simulated record as a measured one looks: times in epoch nanoseconds from the run's start, and a uuid4 request
 * id (the same for the same request in every arm).
 */
function asMeasured(rec: RequestRecord, epochNs: number, seed: number): RequestRecord {
  const id = seededRequestUuid(seed, rec.sessionNum);
  const shift = (t: number) => t + epochNs;
  return {
    ...rec,
    requestId: id,
    conversationId: rec.conversationId === rec.requestId ? id : rec.conversationId,
    startNs: shift(rec.startNs),
    ackNs: rec.ackNs === undefined ? undefined : shift(rec.ackNs),
    ...(rec.endNs === undefined ? {} : { endNs: shift(rec.endNs) }),
    chunkNs: Array.from(rec.chunkNs, shift),
  };
}

/**
 * Runs one arm on the simulator and writes AIPerf's artifacts into `outDir`: per-request records streamed to
 * `profile_export.jsonl` as requests complete, then `profile_export_aiperf.json` / `.csv`, and the simulator-only
 * figures in `servelab_sim.json`.
 */
export async function runSimulation(opts: SimRunOptions): Promise<SimRunResult> {
  const { recipe } = opts;
  // Checked before the output directory is claimed, so a typo or an impossible arm leaves nothing behind.
  const arm = recipe.arms[opts.arm];
  if (!arm)
    throw new ServelabError(
      "USAGE",
      `recipe ${recipe.name} has no arm "${opts.arm}"; arms: ${Object.keys(recipe.arms).join(", ")}`,
    );
  for (const { group } of armWorkerGroups(arm)) engineSettingsFor(recipe, group);
  const hasher = await createBlockHasher();
  const kvBlock = armKvBlockSize(recipe, opts.arm);
  let output = opts.output;
  try {
    let prepared = opts.prepared;
    if (!prepared) {
      const rows = await loadRecipeTrace(recipe, opts.recipeDir, {
        ...(opts.traceFile === undefined ? {} : { traceFile: opts.traceFile }),
        ...(opts.dataDir === undefined ? {} : { dataDir: opts.dataDir }),
      });
      // The export thread boots while the trace is hashed.
      output ??= await startSimOutput(recipe, opts.outDir, rows.length, opts.cliCommand, simIds(opts));
      prepared = prepareTrace(rows, hasher, kvBlock, recipe.benchmark.prompt_block_size);
    }
    output ??= await startSimOutput(recipe, opts.outDir, prepared.rows.length, opts.cliCommand, simIds(opts));
    const result = await simulateInto(opts, output, prepared, hasher);
    await output.release();
    return result;
  } catch (e) {
    await output?.release(true);
    throw e;
  }
}

async function simulateInto(
  opts: SimRunOptions,
  output: SimOutput,
  prepared: PreparedTrace,
  hasher: Awaited<ReturnType<typeof createBlockHasher>>,
): Promise<SimRunResult> {
  const { recipe } = opts;
  const { exporter, building } = output;
  // The simulator always replays the trace's timestamps; the window options exist in fixed-schedule mode only.
  const schedule = recipe.benchmark.mode === "fixed_schedule" ? recipe.benchmark : undefined;
  const load = opts.load ?? 1;
  const epochNs = simEpochNs(recipe, opts.startTime);
  const seed = opts.seed ?? recipe.trace.seed;
  const result = simulateArm({
    recipe,
    arm: opts.arm,
    trace: load === 1 ? prepared : { ...prepared, rows: scaleArrivals(prepared.rows, load) },
    hasher,
    perfModel: opts.perfModel.forGroup,
    ...(opts.seed === undefined ? {} : { seed: opts.seed }),
    autoOffset: schedule?.auto_offset ?? false,
    ...(schedule?.start_offset_ms === undefined ? {} : { startOffsetMs: schedule.start_offset_ms }),
    ...(schedule?.end_offset_ms === undefined ? {} : { endOffsetMs: schedule.end_offset_ms }),
    onRecord: (rec) => exporter.add(asMeasured(rec, epochNs, seed)),
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
  });
  const { summary, errorSummary } = await exporter.finish();
  const served = result.targets.filter((t) => t.role !== "decode");
  const prompt = served.reduce((a, t) => a + t.prompt_tokens, 0);
  const cached = served.reduce((a, t) => a + t.cached_tokens, 0);
  const transfers = result.kvTransferMs.length > 0 ? summarize(result.kvTransferMs) : undefined;
  const extras: SimExtras = {
    recipe: recipe.name,
    arm: opts.arm,
    perf_model: opts.perfModel.requested,
    step_time_model: {
      models: Object.fromEntries(opts.perfModel.resolved),
      bounds: settingLabel(opts.perfModel.setting),
      calibrated: opts.perfModel.calibrated(),
    },
    seed: opts.seed ?? recipe.trace.seed,
    requests: result.requests,
    simulated_s: result.virtualMs / 1000,
    prefix_cache_hit_rate: prompt === 0 ? 0 : cached / prompt,
    kv_transfer_ms: transfers
      ? {
          count: transfers.count,
          mean: transfers.mean,
          p50: transfers.p50,
          p99: transfers.p99,
          max: transfers.max,
        }
      : null,
    kv_transfer_bytes: result.kvTransferBytes,
    preemptions: result.preemptions,
    router_index_errors: result.routerIndexErrors,
    targets: result.targets,
    timeline: result.timeline,
  };
  const context = {
    inputConfig: {
      ...aiperfInputConfig({
        models: [recipe.model.served_model_name],
        endpointType: "chat",
        streaming: recipe.benchmark.streaming,
        url: null,
        file: opts.traceFile,
        customDatasetType: "mooncake_trace",
        randomSeed: recipe.benchmark.random_seed,
        goodput: parseGoodput(recipe.benchmark.goodput),
        load: schedule
          ? {
              kind: "fixed",
              autoOffset: schedule.auto_offset,
              startOffsetMs: schedule.start_offset_ms,
              endOffsetMs: schedule.end_offset_ms,
            }
          : { kind: "fixed" },
        requestTimeoutS: recipe.benchmark.request_timeout_s,
        servelab: {
          backend: "simulator",
          recipe: recipe.name,
          arm: opts.arm,
          perf_model: opts.perfModel.requested,
          perf_bounds: extras.step_time_model.bounds,
          seed: extras.seed,
          load,
          start_time: naiveUtcIsoTimestamp(new Date(epochNs / 1e6)),
        },
      }),
      cli_command: opts.cliCommand,
    },
    wasCancelled: false,
    errorSummary,
    // The run's documented start and its end in simulated time, in UTC: reruns stay byte-identical everywhere.
    startTime: naiveUtcIsoTimestamp(new Date(epochNs / 1e6)),
    endTime: naiveUtcIsoTimestamp(new Date(epochNs / 1e6 + result.virtualMs)),
  };
  await writeAiperfSummaryFiles(building, summary, context);
  await writeFileAtomic(join(building, "servelab_sim.json"), [`${JSON.stringify(extras, null, 2)}\n`]);
  await output.commit();
  const files = {
    json: join(opts.outDir, PROFILE_EXPORT_JSON),
    csv: join(opts.outDir, PROFILE_EXPORT_CSV),
    jsonl: join(opts.outDir, PROFILE_EXPORT_JSONL),
    extras: join(opts.outDir, "servelab_sim.json"),
  };
  const aiperf = JSON.parse(renderAiperfJson(summary, context)) as Record<string, unknown>;
  const { timeline: _t, targets: _g, ...compact } = extras;
  const json = `${JSON.stringify({ ...aiperf, servelab: compact }, null, 2)}\n`;
  return { summary, extras, json, files };
}
