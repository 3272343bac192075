import { availableParallelism } from "node:os";
import type { Worker } from "node:worker_threads";
import type { PerfSetting } from "../engine/perf/bounds.ts";
import { type ErrorCode, ServelabError } from "../errors.ts";
import type { Recipe } from "../recipe/schema.ts";
import { startThread } from "../threads.ts";
import type { SimExtras } from "./run-sim.ts";
import type { SharedTrace } from "./shared-trace.ts";

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
 * Runs arms in worker threads, as many at a time as there are cores (each thread taking job after job), and resolves
 * with their results in job order. The first failing arm rejects the whole run, after the other threads are stopped.
 */
export async function runArmsInParallel(
  jobs: readonly ArmJob[],
  onProgress: (arm: string, done: number, total: number) => void,
  parallel = Math.max(1, availableParallelism()),
  onResult?: (result: ArmResult) => void,
  stop?: AbortSignal,
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
  stop?.addEventListener("abort", onStop, { once: true });
  // A thread runs one job at a time and is given the next when it is done: starting one (the module loader, the
  // simulator's sources) costs about a second of CPU, as much as a small arm run itself.
  const runOn = (worker: Worker, index: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const job = jobs[index]!;
      const done = (e?: Error) => {
        worker.off("message", onMessage);
        worker.off("error", onError);
        worker.off("exit", onExit);
        if (e) reject(e);
        else resolve();
      };
      const onMessage = (m: ArmMessage) => {
        if (m.type === "progress") onProgress(job.label ?? m.arm, m.done, m.total);
        else if (m.type === "result") {
          results[index] = m;
          onResult?.(m);
          done();
        } else
          done(
            m.code
              ? new ServelabError(m.code, `arm ${m.arm}: ${m.message}`, m.details)
              : new Error(`arm ${m.arm}: ${m.message}`),
          );
      };
      const onError = (e: Error) => done(e);
      const onExit = (code: number) =>
        done(new Error(`arm ${job.arm}: simulation thread exited with code ${code}`));
      worker.on("message", onMessage);
      worker.on("error", onError);
      worker.on("exit", onExit);
      worker.postMessage(job);
    });
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
    await Promise.all(Array.from({ length: Math.min(parallel, jobs.length) }, lane));
  } finally {
    stop?.removeEventListener("abort", onStop);
  }
  if (failure) throw failure;
  return results;
}
