import { dirname, join } from "node:path";
import type { Command } from "@commander-js/extra-typings";
import cliProgress from "cli-progress";
import { ServelabError } from "../errors.ts";
import { writeFileAtomic } from "../io/atomic-write.ts";
import { loadRecipe, resolvedRecipeYaml } from "../recipe/load.ts";
import type { ArmArtifacts } from "../report/artifacts.ts";
import { withAttributionArms } from "../report/attribution.ts";
import { runArmsInParallel } from "../sim/arm-jobs.ts";
import { prepareSharedTrace } from "../sim/shared-trace.ts";
import { analyzeRows, type TraceAnalysis } from "../trace/analyze.ts";
import { readTrace } from "../trace/reader.ts";
import { prepareRecipeTrace } from "../trace/recipe-trace.ts";
import { intOption } from "./options.ts";

/**
 * What the report needs, loaded on demand: its modules (charts among them) take about a second to load, better
 * spent while the last arms run than before any starts.
 */
async function reportModules() {
  const [artifacts, report] = await Promise.all([
    import("../report/artifacts.ts"),
    import("../report/report.ts"),
  ]);
  return { readArmArtifacts: artifacts.readArmArtifacts, writeReport: report.writeReport };
}

/** `2026-11-25T22-52-24Z`: sortable, and valid in file names everywhere. */
function utcStamp(d: Date): string {
  return `${d.toISOString().slice(0, 19).replaceAll(":", "-")}Z`;
}

/** One bar per arm on stderr (a terminal only), so parallel arms show their progress side by side. */
function armProgress(arms: readonly string[]) {
  if (!process.stderr.isTTY) return { update: () => {}, stop: () => {} };
  const multi = new cliProgress.MultiBar(
    {
      stream: process.stderr,
      format: "{arm} [{bar}] {percentage}% | {value}/{total} requests | ETA {eta_formatted}",
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  const width = Math.max(...arms.map((a) => a.length));
  const bars = new Map(arms.map((a) => [a, multi.create(1, 0, { arm: a.padEnd(width) })]));
  return {
    update: (arm: string, done: number, total: number) => {
      const bar = bars.get(arm);
      bar?.setTotal(total);
      bar?.update(done);
    },
    stop: () => multi.stop(),
  };
}

export function registerAbCommand(program: Command): void {
  program
    .command("ab")
    .description("run every arm of a recipe on the simulator and report the A/B with statistics and charts")
    .argument("<recipe>", "recipe YAML")
    .option("--attribution", "add arms that change one factor at a time (reuse, routing, disaggregation)")
    .option("--out <dir>", "report directory (default: results/<recipe>-<UTC time>)")
    .option(
      "--seed <n>",
      "seed for routing and the statistics' resampling (default: the recipe's)",
      intOption(0),
    )
    .option("--perf-model <name>", "step-time model (see servelab sim)", "auto")
    .option("--data-dir <dir>", "where named datasets are looked up first")
    .option(
      "--endpoint <name=url>",
      "replay the recipe's trace against a live OpenAI-compatible endpoint instead of simulating (repeatable)",
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .action(async (recipePath, o) => {
      const started = new Date();
      const base = await loadRecipe(recipePath);
      const attribution = o.attribution ? withAttributionArms(base) : undefined;
      const recipe = attribution?.recipe ?? base;
      const outDir = o.out ?? join("results", `${recipe.name}-${utcStamp(started)}`);
      const recipeDir = dirname(recipePath);
      const trace = await prepareRecipeTrace(
        recipe,
        recipeDir,
        o.dataDir === undefined ? {} : { dataDir: o.dataDir },
      );
      const cliCommand = ["servelab", ...process.argv.slice(2)].join(" ");
      const live = o.endpoint?.length ? await import("../report/live-arms.ts") : undefined;
      const endpoints = live ? (o.endpoint ?? []).map(live.parseEndpoint) : [];
      if (endpoints.length === 1)
        throw new ServelabError("USAGE", "an A/B against live endpoints needs two or more --endpoint");
      const arms = endpoints.length > 0 ? endpoints.map((e) => e.name) : Object.keys(recipe.arms);
      const progress = armProgress(arms);
      const t0 = performance.now();
      // Loaded when the first arm finishes, beside the arms still running (not while the arms' threads start).
      let reportLoad: ReturnType<typeof reportModules> | undefined;
      const report = () => (reportLoad ??= reportModules());
      const rows = await readTrace(trace.file, { blockSize: recipe.benchmark.prompt_block_size });
      const analyzeTrace = () => analyzeRows(rows, { blockSize: recipe.benchmark.prompt_block_size });
      if (live) {
        let dirs: string[];
        try {
          dirs = await live.runLiveArms(recipe, rows, endpoints, outDir, cliCommand, progress.update);
        } finally {
          progress.stop();
        }
        await writeFileAtomic(join(outDir, "recipe.resolved.yaml"), [resolvedRecipeYaml(recipe)]);
        const { readArmArtifacts, writeReport } = await report();
        const artifacts = await Promise.all(dirs.map((d, i) => readArmArtifacts(d, arms[i]!)));
        const written = await writeReport(outDir, artifacts, {
          title: `${recipe.name}: ${arms.join(" vs ")} (live)`,
          recipe,
          trace: analyzeTrace(),
          traceFile: trace.file,
          command: cliCommand,
          seed: o.seed ?? recipe.trace.seed,
        });
        process.stdout.write(`${written.console}\nReport: ${written.html}\n`);
        return;
      }
      // An arm's artifacts, and the trace statistics, are read as soon as a thread finishes, on the core it frees,
      // while other arms still run.
      const reading = new Map<string, Promise<ArmArtifacts>>();
      let traceStats: TraceAnalysis | undefined;
      // The arms replay one trace: it is hashed and its blocks numbered once, for all of them.
      const shared = await prepareSharedTrace(recipe, arms, rows);
      try {
        await runArmsInParallel(
          arms.map((arm) => ({
            recipePath,
            recipeDir,
            ...(attribution ? { recipeOverride: recipe } : {}),
            arm,
            traceFile: trace.file,
            ...(shared ? { trace: shared } : {}),
            ...(o.seed === undefined ? {} : { seed: o.seed }),
            outDir: join(outDir, "arms", arm),
            perfModel: o.perfModel,
            cliCommand,
          })),
          progress.update,
          undefined,
          (r) => {
            const read = report().then((m) => m.readArmArtifacts(r.dir, r.arm));
            traceStats ??= analyzeTrace();
            // Awaited below; a failing arm elsewhere must not turn it into an unhandled rejection first.
            read.catch(() => {});
            reading.set(r.arm, read);
          },
        );
      } finally {
        progress.stop();
      }
      const simSeconds = (performance.now() - t0) / 1000;
      await writeFileAtomic(join(outDir, "recipe.resolved.yaml"), [resolvedRecipeYaml(recipe)]);
      const { readArmArtifacts, writeReport } = await report();
      const artifacts = await Promise.all(
        arms.map((arm) => reading.get(arm) ?? readArmArtifacts(join(outDir, "arms", arm), arm)),
      );
      const written = await writeReport(outDir, artifacts, {
        title: `${recipe.name}: ${arms.join(" vs ")}`,
        recipe,
        trace: traceStats ?? analyzeTrace(),
        traceFile: trace.file,
        command: cliCommand,
        seed: o.seed ?? recipe.trace.seed,
        ...(attribution ? { attribution: attribution.steps } : {}),
      });
      process.stdout.write(written.console);
      process.stdout.write(
        `\nSimulated ${arms.length} arms in ${simSeconds.toFixed(1)} s (trace ${trace.cached ? "from cache" : "synthesized"}).\nReport: ${written.html}\n`,
      );
    });
}
