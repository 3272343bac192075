import { availableParallelism } from "node:os";
import type { Worker } from "node:worker_threads";
import type { PerfSetting } from "../engine/perf/bounds.ts";
import { perfModelChoice } from "../engine/perf-models.ts";
import { type ErrorCode, isServelabError, ServelabError } from "../errors.ts";
import { loadRecipe } from "../recipe/load.ts";
import type { Recipe } from "../recipe/schema.ts";
import { startThread } from "../threads.ts";
import { runSimulation, type SimExtras } from "./run-sim.ts";
import { type SharedTrace, unshareTrace } from "./shared-trace.ts";

export interface ArmJob {
  recipePath: string;
  recipeDir: string;
  /** A recipe built in memory (e.g. with attribution arms), used instead of reading `recipePath`. */
  recipeOverride?: Recipe;
  arm: string;
  /** What progress calls the job (the arm's name by default): one arm may run under several settings. */
  label?: string;
  traceFile: string;
  /** The trace prepared once for every arm (see `shareTrace`); without it, the arm prepares `traceFile` itself. */
  trace?: SharedTrace;
  seed?: number;
  outDir: string;
  perfModel: string;
  /** The step-time profile's bounds (nominal when absent). */
  perfSetting?: PerfSetting;
  /** Arrival-rate factor: the trace's timestamps divided by it (default 1). */
  load?: number;
  /** When the simulated run starts (ISO 8601); default the recipe's `start_time`. */
  startTime?: string;
  cliCommand: string;
}

export type ArmMessage =
  | { type: "progress"; arm: string; done: number; total: number; virtualMs: number }
  | { type: "result"; arm: string; dir: string; extras: Omit<SimExtras, "timeline" | "targets"> }
  | { type: "error"; arm: string; code: ErrorCode | undefined; message: string; details: string[] };

export type ArmResult = Extract<ArmMessage, { type: "result" }>;

/**
 * Plans of at most this many requests in all (every job's trace prepared, so its size known) run on the calling
 * thread, one job after another: starting a thread costs ~0.8 s of CPU, more than simulating that many requests.
 */
export const IN_THREAD_REQUESTS = 2000;

const small = (jobs: readonly ArmJob[], limit: number) =>
  jobs.every((j) => j.trace !== undefined) && jobs.reduce((n, j) => n + j.trace!.rows.length, 0) <= limit;

/**
 * Runs one job, reporting through `post` as a thread does: progress while it runs, then a result or an error.
 * Shared by arm-worker.ts and by small plans, which run it on the calling thread.
 */
export async function runArmJob(job: ArmJob, post: (m: ArmMessage) => void): Promise<void> {
  try {
    const recipe = job.recipeOverride ?? (await loadRecipe(job.recipePath));
    const result = await runSimulation({
      recipe,
      recipeDir: job.recipeDir,
      arm: job.arm,
      traceFile: job.traceFile,
      ...(job.trace ? { prepared: unshareTrace(job.trace) } : {}),
      ...(job.seed === undefined ? {} : { seed: job.seed }),
      ...(job.load === undefined ? {} : { load: job.load }),
      ...(job.startTime === undefined ? {} : { startTime: job.startTime }),
      outDir: job.outDir,
      perfModel: perfModelChoice(job.perfModel, recipe, job.perfSetting),
      cliCommand: job.cliCommand,
      onProgress: (virtualMs, done, total) => {
        if (done % 200 === 0 || done === total)
          post({ type: "progress", arm: job.arm, done, total, virtualMs });
      },
    });
    const { timeline: _t, targets: _g, ...extras } = result.extras;
    post({ type: "result", arm: job.arm, dir: job.outDir, extras });
  } catch (e) {
    post({
      type: "error",
      arm: job.arm,
      code: isServelabError(e) ? e.code : undefined,
      message: e instanceof Error ? e.message : String(e),
      details: isServelabError(e) ? [...e.details] : [],
    });
  }
}

/**
 * Runs arms in worker threads, as many at a time as there are cores (each thread taking job after job), and resolves
 * with their results in job order; a small plan (IN_THREAD_REQUESTS) runs on this thread instead. The first failing
 * arm rejects the whole run, after the other threads are stopped.
 */
export async function runArmsInParallel(
  jobs: readonly ArmJob[],
  onProgress: (arm: string, done: number, total: number) => void,
  parallel = Math.max(1, availableParallelism()),
  onResult?: (result: ArmResult) => void,
  stop?: AbortSignal,
  options: { inThreadRequests?: number } = {},
): Promise<ArmResult[]> {
  const results = new Array<ArmResult>(jobs.length);
  const running = new Set<Worker>();
  let next = 0;
  let failure: Error | undefined;
  // Stopping ends the threads in flight (their directories stay unfinished) and starts no more.
  const onStop = () => {
    const done = jobs.filter((_, i) => results[i]).map((j) => j.label ?? j.arm);
    const left = jobs.filter((_, i) => !results[i]).map((j) => j.label ?? j.arm);
    failure ??= new ServelabError(
      "INTERRUPTED",
      `stopped with ${done.length} of ${jobs.length} arm runs complete`,
      [`complete: ${done.join(", ") || "none"}`, `stopped: ${left.join(", ")}`],
    );
    for (const w of running) void w.terminate();
  };
  if (stop?.aborted) onStop();
  else stop?.addEventListener("abort", onStop, { once: true });
  /** Applies one of a job's messages: its progress, its result (the job is done), or its error. */
  const handle = (index: number, m: ArmMessage): "done" | Error | undefined => {
    const job = jobs[index]!;
    if (m.type === "progress") {
      onProgress(job.label ?? m.arm, m.done, m.total);
      return undefined;
    }
    if (m.type === "result") {
      results[index] = m;
      onResult?.(m);
      return "done";
    }
    return m.code
      ? new ServelabError(m.code, `arm ${m.arm}: ${m.message}`, m.details)
      : new Error(`arm ${m.arm}: ${m.message}`);
  };
  // A thread runs one job at a time and is given the next when it is done: starting one (the module loader, the
  // simulator's sources) costs about a second of CPU, as much as a small arm run itself.
  const runOn = (worker: Worker, index: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const done = (e?: Error) => {
        worker.off("message", onMessage);
        worker.off("error", onError);
        worker.off("exit", onExit);
        if (e) reject(e);
        else resolve();
      };
      const onMessage = (m: ArmMessage) => {
        const outcome = handle(index, m);
        if (outcome === "done") done();
        else if (outcome) done(outcome);
      };
      const onError = (e: Error) => done(e);
      const onExit = (code: number) =>
        done(new Error(`arm ${jobs[index]!.arm}: simulation thread exited with code ${code}`));
      worker.on("message", onMessage);
      worker.on("error", onError);
      worker.on("exit", onExit);
      worker.postMessage(jobs[index]);
    });
  // A small plan: job after job on this thread, through the same messages a thread would send.
  const here = async (): Promise<void> => {
    for (let index = 0; index < jobs.length && !failure; index++) {
      let outcome: "done" | Error | undefined;
      await runArmJob(jobs[index]!, (m) => {
        outcome = handle(index, m) ?? outcome;
      });
      if (outcome instanceof Error) failure ??= outcome;
    }
  };
  const lane = async (): Promise<void> => {
    let worker: Worker | undefined;
    try {
      while (next < jobs.length && !failure) {
        const index = next++;
        if (!worker) {
          worker = startThread(new URL("./arm-worker.ts", import.meta.url), null);
          running.add(worker);
        }
        try {
          await runOn(worker, index);
        } catch (e) {
          failure ??= e as Error;
          for (const w of running) void w.terminate();
        }
      }
    } finally {
      if (worker) {
        running.delete(worker);
        await worker.terminate();
      }
    }
  };
  try {
    if (small(jobs, options.inThreadRequests ?? IN_THREAD_REQUESTS)) await here();
    else await Promise.all(Array.from({ length: Math.min(parallel, jobs.length) }, lane));
  } finally {
    stop?.removeEventListener("abort", onStop);
  }
  if (failure) throw failure;
  return results;
}
