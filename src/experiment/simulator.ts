import type { Recipe } from "../recipe/schema.ts";
import { type ArmJob, runArmsInParallel } from "../sim/arm-jobs.ts";
import { runSimulation, type SimRunOptions, type SimRunResult } from "../sim/run-sim.ts";
import type { SharedTrace } from "../sim/shared-trace.ts";
import type { ArmRunRequest, Backend } from "./backend.ts";

export interface SimulatorBackendOptions {
  /** The recipe file, and its directory (relative trace sources resolve from it). */
  recipePath: string;
  recipeDir: string;
  /** Step-time model name (see `servelab sim --perf-model`). */
  perfModel: string;
  cliCommand: string;
  /** Routing seed; default the recipe's. */
  seed?: number | undefined;
  /** Traces prepared once for every arm that replays them, by trace file. */
  sharedTraces?: ReadonlyMap<string, SharedTrace>;
  /** Threads at once; default one per core. */
  parallel?: number;
  /** When the simulated runs start (ISO 8601); default the recipe's `start_time`. */
  startTime?: string | undefined;
}

/**
 * The simulator as a backend: every run in a worker thread of its own, as many at once as there are cores, with the
 * recipe each request carries (a sweep's replicates differ in their trace seed, attribution arms are added in
 * memory).
 */
export function simulatorBackend(opts: SimulatorBackendOptions): Backend {
  const job = (req: ArmRunRequest): ArmJob => ({
    recipePath: opts.recipePath,
    recipeDir: opts.recipeDir,
    recipeOverride: req.recipe as Recipe,
    arm: req.arm,
    label: req.label,
    traceFile: req.traceFile,
    ...(opts.sharedTraces?.has(req.traceFile) ? { trace: opts.sharedTraces.get(req.traceFile)! } : {}),
    ...(opts.seed === undefined ? {} : { seed: opts.seed }),
    outDir: req.dir,
    perfModel: opts.perfModel,
    ...(req.perfSetting ? { perfSetting: req.perfSetting } : {}),
    load: req.load,
    ...(opts.startTime === undefined ? {} : { startTime: opts.startTime }),
    cliCommand: opts.cliCommand,
  });
  return {
    kind: "simulator",
    async run(requests, hooks) {
      const byDir = new Map(requests.map((r) => [r.dir, r]));
      await runArmsInParallel(
        requests.map(job),
        hooks.onProgress,
        opts.parallel,
        (result) => {
          const req = byDir.get(result.dir);
          if (req) hooks.onDone?.(req);
        },
        hooks.stop,
      );
    },
  };
}

/**
 * One arm on the simulator in this thread (`servelab sim`): the same run a backend thread makes, with its progress
 * and result at hand.
 */
export function simulateArmHere(opts: SimRunOptions): Promise<SimRunResult> {
  return runSimulation(opts);
}
