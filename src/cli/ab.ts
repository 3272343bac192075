import { readdir, readFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import type { Command } from "@commander-js/extra-typings";
import cliProgress from "cli-progress";
import {
  PERF_BOUNDS,
  type PerfBound,
  type PerfSetting,
  PROFILE_PARAMETERS,
  parsePerfBounds,
  settingLabel,
} from "../engine/perf/bounds.ts";
import { DSV32_GB200_DEP8 } from "../engine/perf/registry.ts";
import { describePerfModels, uncalibratedWarning } from "../engine/perf-models.ts";
import { ServelabError } from "../errors.ts";
import type { ArmRunRequest, Backend } from "../experiment/backend.ts";
import { checkEndpoints, endpointBackend, parseEndpoints } from "../experiment/endpoint.ts";
import { loopbackBackend } from "../experiment/loopback.ts";
import { EXPERIMENT_MANIFEST, parseLoads, parseSeedCount, planExperiment } from "../experiment/plan.ts";
import { simulatorBackend } from "../experiment/simulator.ts";
import { writeFileAtomic } from "../io/atomic-write.ts";
import { buildOutputDir, lockOutputDir } from "../io/output-dir.ts";
import {
  checkErrorRate,
  DEFAULT_MAX_ERROR_RATE,
  errorSummaryOf,
  parseMaxErrorRate,
} from "../metrics/error-rate.ts";
import { PROFILE_EXPORT_JSON } from "../metrics/exporters.ts";
import { parseGoodput } from "../metrics/goodput.ts";
import { loadRecipe, recipeSynthesisOptions, resolvedRecipeYaml } from "../recipe/load.ts";
import { armGpuCount, type Recipe } from "../recipe/schema.ts";
import type { ArmArtifacts } from "../report/artifacts.ts";
import { withAttributionArms } from "../report/attribution.ts";
import { simEpochNs } from "../sim/run-sim.ts";
import { prepareSharedTrace, type SharedTrace } from "../sim/shared-trace.ts";
import { analyzeRows, type TraceAnalysis } from "../trace/analyze.ts";
import { readTrace } from "../trace/reader.ts";
import { prepareRecipeTrace } from "../trace/recipe-trace.ts";
import type { TraceRow } from "../trace/types.ts";
import { intOption, positiveNumberOption } from "./options.ts";

/**
 * What the report needs, loaded on demand: its modules (charts among them) take about a second to load, better
 * spent while the last arms run than before any starts.
 */
async function reportModules() {
  const [artifacts, report, capacity] = await Promise.all([
    import("../report/artifacts.ts"),
    import("../report/report.ts"),
    import("../report/capacity-runs.ts"),
  ]);
  return {
    readArmArtifacts: artifacts.readArmArtifacts,
    writeReport: report.writeReport,
    readCapacityRuns: capacity.readCapacityRuns,
  };
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

/** Where an arm's run under a non-main step-time setting goes: `bounds/<setting>/<arm>`. */
function boundsDir(outDir: string, setting: PerfSetting, arm: string): string {
  return join(outDir, "bounds", settingLabel(setting).replaceAll(", ", "+").replaceAll(" ", "-"), arm);
}

async function readSummary(dir: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(dir, PROFILE_EXPORT_JSON), "utf8")) as Record<string, unknown>;
}

/**
 * Every parameter of the profile moved alone to each end where that end differs from its nominal value, the
 * others at `bound`.
 */
function sensitivitySettings(bound: PerfBound): PerfSetting[] {
  return PROFILE_PARAMETERS.flatMap((p) => {
    const values = p.values(DSV32_GB200_DEP8);
    return (["optimistic", "pessimistic"] as const)
      .filter((end) => values[end] !== values.nominal)
      .map((end) => ({ bound, vary: { parameter: p.name, bound: end } }));
  });
}

export function registerAbCommand(program: Command): void {
  program
    .command("ab")
    .description("run every arm of a recipe on the simulator and report the A/B with statistics and charts")
    .argument("<recipe>", "recipe YAML")
    .option("--attribution", "add arms that change one factor at a time (reuse, routing, disaggregation)")
    .option("--out <dir>", "report directory (default: results/<recipe>-<UTC time>)")
    .option("--force", "replace what --out holds (once the new run completes)")
    .option("--model <name>", "model name live runs send (default: the recipe's served_model_name)")
    .option(
      "--max-error-rate <fraction>",
      "exit with error[RUN_FAILED] when more than this share of an arm's requests failed (or all did)",
      parseMaxErrorRate,
      DEFAULT_MAX_ERROR_RATE,
    )
    .option(
      "--seed <n>",
      "seed for routing and the statistics' resampling (default: the recipe's)",
      intOption(0),
    )
    .option("--perf-model <name>", "step-time model (see servelab sim)", "auto")
    .option(
      "--perf-bounds <list>",
      `step-time profile bounds to run the A/B under, comma-separated (${PERF_BOUNDS.join(", ")}); the report shows the verdict under each`,
      "nominal",
    )
    .option(
      "--sensitivity",
      "also rerun the A/B with each uncertain profile parameter alone at its ends, and rank the parameters by how far they move the verdict",
    )
    .option(
      "--load <factors>",
      "sweep the offered load: arrival-rate factors, comma-separated (each divides the trace's timestamps, Dynamo's --speedup-ratio), e.g. 0.5,0.75,1,1.25,1.5",
      parseLoads,
    )
    .option(
      "--seeds <n>",
      "replicates: synthesize the trace with seeds 1..N and run every arm (at every load) on each",
      parseSeedCount,
    )
    .option(
      "--start-time <iso>",
      "when simulated runs start, e.g. 2026-01-01T00:00:00Z: their records carry epoch nanoseconds from it (default: the recipe's benchmark.start_time)",
    )
    .option("--data-dir <dir>", "where named datasets are looked up first")
    .option(
      "--endpoint <name=url>",
      "replay the recipe's trace against a live OpenAI-compatible endpoint instead of simulating (repeatable)",
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option(
      "--live",
      "run every arm on the loopback stack (servelab up, one arm after another) instead of simulating",
    )
    .option(
      "--scale <f>",
      "with --live: replicas and DP ranks multiplied by this (as servelab up --scale)",
      positiveNumberOption,
      1,
    )
    .option(
      "--speedup-ratio <x>",
      "with --live: engines step and the trace replays this many times faster than modelled (measured times shrink by as much)",
      positiveNumberOption,
      1,
    )
    .option("--requests <n>", "with --live: replay only the trace's first N requests", intOption(1))
    .option("--migration-limit <n>", "with --live: the frontend's --migration-limit", intOption(0), 0)
    .action(async (recipePath, o) => {
      const base = await loadRecipe(recipePath);
      const outDir = o.out ?? join("results", `${base.name}-${utcStamp(new Date())}`);
      // One A/B at a time into a directory: a second refuses at once instead of interleaving with the first.
      const lock = await lockOutputDir(outDir, ["servelab", ...process.argv.slice(2)].join(" "));
      try {
        const held = await readdir(outDir).catch(() => [] as string[]);
        if (held.length > 0 && !o.force)
          throw new ServelabError("USAGE", `--out ${outDir} is not empty (${held.length} entries)`, [
            "use another directory, or --force to replace what it holds once this run completes",
          ]);
        // The whole A/B is built beside --out and moved in when complete: a stopped run leaves the earlier one.
        const build = await buildOutputDir(outDir);
        // Ctrl-C (or SIGTERM): stop the arms in flight and keep what completed, marked as stopped.
        const stop = new AbortController();
        const onSignal = () => stop.abort();
        for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, onSignal);
        try {
          await runAb(recipePath, base, { work: build.path, final: outDir }, o, stop.signal);
          await build.commit();
        } catch (e) {
          if (e instanceof ServelabError && e.code === "INTERRUPTED") {
            await build.commit({ incomplete: true });
            process.stderr.write(
              `What completed is in ${outDir}, marked as stopped (servelab_incomplete).\n`,
            );
          }
          throw e;
        } finally {
          for (const sig of ["SIGINT", "SIGTERM"] as const) process.off(sig, onSignal);
        }
      } finally {
        await lock.release();
      }
    });
}

type AbOptions = {
  attribution?: true | undefined;
  out?: string | undefined;
  seed?: number | undefined;
  perfModel: string;
  perfBounds: string;
  sensitivity?: true | undefined;
  dataDir?: string | undefined;
  endpoint?: string[] | undefined;
  force?: true | undefined;
  maxErrorRate: number;
  model?: string | undefined;
  load?: number[] | undefined;
  seeds?: number | undefined;
  startTime?: string | undefined;
  live?: true | undefined;
  scale: number;
  speedupRatio: number;
  requests?: number | undefined;
  migrationLimit: number;
};

/** The recipe with its trace synthesized from `seed` (a replicate); the recipe itself for undefined. */
function withTraceSeed(recipe: Recipe, seed: number | undefined): Recipe {
  return seed === undefined ? recipe : { ...recipe, trace: { ...recipe.trace, seed } };
}

/**
 * Runs the A/B into `dirs.work`, to be moved to `dirs.final` when it completes: what it prints and what the report
 * records name the final directory. Every arm at every load and trace seed is planned once (src/experiment) and run
 * on one backend: the simulator, or live endpoints.
 */
async function runAb(
  recipePath: string,
  base: Recipe,
  dirs: { work: string; final: string },
  o: AbOptions,
  stop: AbortSignal,
): Promise<void> {
  const outDir = dirs.work;
  const shown = (a: ArmArtifacts): ArmArtifacts => ({ ...a, dir: join(dirs.final, relative(outDir, a.dir)) });
  const reportPath = join(dirs.final, "report.html");
  const attribution = o.attribution ? withAttributionArms(base) : undefined;
  const recipe = attribution?.recipe ?? base;
  const recipeDir = dirname(recipePath);
  const seeds = o.seeds === undefined ? null : Array.from({ length: o.seeds }, (_, i) => i + 1);
  if (seeds && !recipeSynthesisOptions(recipe))
    throw new ServelabError(
      "USAGE",
      `--seeds synthesizes the trace with each seed, but recipe ${recipe.name} replays its trace as it is (no synthesis parameters)`,
    );
  const loads = o.load ?? [1];
  if (o.startTime !== undefined) simEpochNs(recipe, o.startTime);
  const cliCommand = ["servelab", ...process.argv.slice(2)].join(" ");
  const endpoints = o.endpoint?.length ? parseEndpoints(o.endpoint) : [];
  if (endpoints.length === 1)
    throw new ServelabError("USAGE", "an A/B against live endpoints needs two or more --endpoint");
  if (o.live && endpoints.length > 0)
    throw new ServelabError(
      "USAGE",
      "--live and --endpoint are exclusive: the loopback stack is the endpoint",
    );
  if (
    !o.live &&
    (o.scale !== 1 || o.speedupRatio !== 1 || o.requests !== undefined || o.migrationLimit !== 0)
  )
    throw new ServelabError(
      "USAGE",
      "--scale, --speedup-ratio, --requests and --migration-limit apply to --live runs",
    );
  const live = endpoints.length > 0 || o.live === true;
  const model = o.model ?? recipe.model.served_model_name;
  if (endpoints.length > 0) await checkEndpoints(endpoints, model);
  const arms = endpoints.length > 0 ? endpoints.map((e) => e.name) : Object.keys(recipe.arms);
  const manifest = planExperiment(recipe.name, arms, loads, seeds);
  // One trace per seed, synthesized (or found in the cache) before any arm starts.
  const traces = new Map<number | undefined, { recipe: Recipe; file: string; cached: boolean }>();
  for (const seed of seeds ?? [undefined]) {
    const r = withTraceSeed(recipe, seed);
    const t = await prepareRecipeTrace(r, recipeDir, o.dataDir === undefined ? {} : { dataDir: o.dataDir });
    traces.set(seed, { recipe: r, file: t.file, cached: t.cached });
  }
  const mainTrace = traces.get(manifest.main.traceSeed)!;
  const bounds = parsePerfBounds(o.perfBounds);
  const main: PerfSetting = { bound: bounds.includes("nominal") ? "nominal" : bounds[0]! };
  // The A/B itself: the recipe's own first two arms (attribution arms are not rerun under every bound).
  const [baseArm, candidateArm] = Object.keys(base.arms);
  const extra: PerfSetting[] = live
    ? []
    : [
        ...bounds.filter((b) => b !== main.bound).map((bound) => ({ bound })),
        ...(o.sensitivity ? sensitivitySettings(main.bound) : []),
      ];
  if ((extra.length > 0 || bounds.length > 1) && candidateArm === undefined)
    throw new ServelabError("USAGE", "--perf-bounds and --sensitivity compare two arms; the recipe has one");
  if (!live) {
    const described = describePerfModels(o.perfModel, recipe, arms, main);
    if (!described.calibrated) process.stderr.write(uncalibratedWarning(described.models));
  }
  const requests: ArmRunRequest[] = [
    ...manifest.runs.map((run) => {
      const t = traces.get(run.point.traceSeed)!;
      return {
        recipe: t.recipe,
        arm: run.arm,
        label: run.label,
        dir: join(outDir, run.dir),
        traceFile: t.file,
        load: run.point.load,
        perfSetting: main,
      };
    }),
    // Bounds and sensitivity runs at the main point.
    ...extra.flatMap((setting) =>
      [baseArm!, candidateArm!].map((arm) => ({
        recipe: mainTrace.recipe,
        arm,
        label: `${arm} @ ${settingLabel(setting)}`,
        dir: boundsDir(outDir, setting, arm),
        traceFile: mainTrace.file,
        load: manifest.main.load,
        perfSetting: setting,
      })),
    ),
  ];
  const mainDirs = new Map(arms.map((arm) => [join(outDir, "arms", arm), arm]));
  const progress = armProgress(requests.map((r) => r.label));
  const t0 = performance.now();
  // Loaded when the first arm finishes, beside the arms still running (not while the arms' threads start).
  let reportLoad: ReturnType<typeof reportModules> | undefined;
  const report = () => (reportLoad ??= reportModules());
  const rowsOf = new Map<string, TraceRow[]>();
  for (const t of traces.values())
    rowsOf.set(t.file, await readTrace(t.file, { blockSize: recipe.benchmark.prompt_block_size }));
  const analyzeTrace = () =>
    analyzeRows(rowsOf.get(mainTrace.file)!, { blockSize: recipe.benchmark.prompt_block_size });
  // An arm's artifacts, and the trace statistics, are read as soon as its run finishes, on the core it frees.
  const reading = new Map<string, Promise<ArmArtifacts>>();
  let traceStats: TraceAnalysis | undefined;
  const sharedTraces = new Map<string, SharedTrace>();
  if (!live)
    for (const t of traces.values()) {
      // The arms replay one trace per seed: it is hashed and its blocks numbered once, for all of them.
      const shared = await prepareSharedTrace(t.recipe, arms, rowsOf.get(t.file)!);
      if (shared) sharedTraces.set(t.file, shared);
    }
  const backend: Backend = o.live
    ? loopbackBackend({
        recipePath,
        model,
        cliCommand,
        scale: o.scale,
        speedupRatio: o.speedupRatio,
        requests: o.requests,
        migrationLimit: o.migrationLimit,
      })
    : live
      ? endpointBackend({ endpoints, model, cliCommand })
      : simulatorBackend({
          recipePath,
          recipeDir,
          perfModel: o.perfModel,
          cliCommand,
          seed: o.seed,
          sharedTraces,
          startTime: o.startTime,
        });
  try {
    await backend.run(requests, {
      onProgress: progress.update,
      onDone: (req) => {
        const arm = mainDirs.get(req.dir);
        if (arm === undefined) return;
        const read = report().then(async (m) => shown(await m.readArmArtifacts(req.dir, arm)));
        traceStats ??= analyzeTrace();
        // Awaited below; a failing arm elsewhere must not turn it into an unhandled rejection first.
        read.catch(() => {});
        reading.set(arm, read);
      },
      stop,
    });
  } finally {
    progress.stop();
  }
  const runSeconds = (performance.now() - t0) / 1000;
  await writeFileAtomic(join(outDir, "recipe.resolved.yaml"), [resolvedRecipeYaml(recipe)]);
  await writeFileAtomic(join(outDir, EXPERIMENT_MANIFEST), [`${JSON.stringify(manifest, null, 2)}\n`]);
  const { readArmArtifacts, writeReport, readCapacityRuns } = await report();
  const artifacts = await Promise.all(
    arms.map((arm) => reading.get(arm) ?? readArmArtifacts(join(outDir, "arms", arm), arm).then(shown)),
  );
  const settingRun = async (setting: PerfSetting, dirOf: (arm: string) => string) => ({
    label: settingLabel(setting),
    bound: setting.bound,
    ...(setting.vary ? { vary: setting.vary } : {}),
    arms: await Promise.all(
      [baseArm!, candidateArm!].map(async (name) => ({ name, summary: await readSummary(dirOf(name)) })),
    ),
  });
  const boundRuns =
    extra.length === 0
      ? undefined
      : [
          await settingRun(main, (arm) => join(outDir, "arms", arm)),
          ...(await Promise.all(extra.map((s) => settingRun(s, (arm) => boundsDir(outDir, s, arm))))),
        ];
  const seed = o.seed ?? recipe.trace.seed;
  const slos = parseGoodput(recipe.benchmark.goodput);
  const capacity =
    manifest.runs.length > arms.length
      ? await readCapacityRuns(outDir, manifest, {
          slos,
          seed,
          gpusOf: (arm) => (recipe.arms[arm] ? armGpuCount(recipe.arms[arm]) : null),
          read: new Map(arms.map((arm, i) => [join("arms", arm), artifacts[i]!])),
        })
      : undefined;
  const written = await writeReport(outDir, artifacts, {
    title: `${recipe.name}: ${arms.join(" vs ")}${live ? " (live)" : ""}`,
    recipe,
    trace: traceStats ?? analyzeTrace(),
    traceFile: mainTrace.file,
    command: cliCommand,
    seed,
    ...(attribution ? { attribution: attribution.steps } : {}),
    ...(boundRuns ? { bounds: { baseline: baseArm!, candidate: candidateArm!, runs: boundRuns } } : {}),
    ...(capacity ? { capacity: { runs: capacity, loads, seeds } } : {}),
  });
  process.stdout.write(written.console);
  const what = `${manifest.runs.length} arm runs${extra.length > 0 ? ` and ${extra.length * 2} bound runs` : ""}`;
  process.stdout.write(
    `\n${live ? "Ran" : "Simulated"} ${what} in ${runSeconds.toFixed(1)} s (${traces.size === 1 ? `trace ${mainTrace.cached ? "from cache" : "synthesized"}` : `${traces.size} traces`}).\nReport: ${reportPath}\n`,
  );
  checkArmErrors(artifacts, o.maxErrorRate);
}

/** After the report is written: an arm whose requests (mostly) failed makes the A/B a failure. */
function checkArmErrors(arms: readonly ArmArtifacts[], maxErrorRate: number): void {
  const problems: string[] = [];
  for (const a of arms) {
    try {
      checkErrorRate(`arm ${a.name}`, a.requests, errorSummaryOf(a.summary, a.records), maxErrorRate);
    } catch (e) {
      if (!(e instanceof ServelabError)) throw e;
      problems.push(e.message, ...e.details.map((d) => `  ${d}`));
    }
  }
  if (problems.length > 0)
    throw new ServelabError(
      "RUN_FAILED",
      "the A/B compared arms whose requests failed (the report says so)",
      problems,
    );
}
