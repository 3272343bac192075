/**
 * Worker-thread entry that runs arms of a recipe on the simulator (see runArmsInParallel): the arms of an A/B are
 * independent, so each gets a thread and a core. Each message is a job; the thread answers with progress while it
 * runs, then a result or an error, and waits for the next.
 */
import { parentPort } from "node:worker_threads";
import { perfModelChoice } from "../engine/perf-models.ts";
import { isServelabError } from "../errors.ts";
import { loadRecipe } from "../recipe/load.ts";
import type { ArmJob, ArmMessage } from "./arm-jobs.ts";
import { runSimulation } from "./run-sim.ts";
import { unshareTrace } from "./shared-trace.ts";

const post = (m: ArmMessage) => parentPort!.postMessage(m);

async function run(job: ArmJob): Promise<void> {
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

parentPort!.on("message", (job: ArmJob) => void run(job));
