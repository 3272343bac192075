import { access, readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import type { Command } from "@commander-js/extra-typings";
import { ServelabError } from "../errors.ts";
import { artifactsBackend, type ResolvedArtifactDir, resolveArtifactDir } from "../experiment/artifacts.ts";
import { EXPERIMENT_MANIFEST, type ExperimentManifest } from "../experiment/plan.ts";
import { makeOutputDir } from "../io/make-dir.ts";
import { parseGoodput } from "../metrics/goodput.ts";
import { recordedGoodput } from "../metrics/input-config.ts";
import { loadRecipe } from "../recipe/load.ts";
import { armGpuCount, type Recipe } from "../recipe/schema.ts";
import { intOption } from "./options.ts";

export function registerReportCommand(program: Command): void {
  program
    .command("report")
    .description(
      "build the A/B report from existing artifact directories (servelab's or AIPerf's); the first is the baseline",
    )
    .argument(
      "<dirs...>",
      "artifact directories holding profile_export.jsonl, or one directory `servelab ab` wrote (its sweep included)",
    )
    .option("--out <dir>", "where report.md and report.html go", join("results", "report"))
    .option("--seed <n>", "seed for the bootstrap resampling", intOption(0), 0)
    .option(
      "--allow-incomplete",
      "report on artifact directories of runs that did not finish (marked as such)",
    )
    .option(
      "--goodput <slos>",
      'SLOs, e.g. "time_to_first_token:20000 inter_token_latency:50" (default: the run\'s own)',
    )
    .option(
      "--recipe <file>",
      "the recipe the runs come from (e.g. copied back from a cluster): arms named and ordered as in it, its SLOs by default",
    )
    .action(async (dirs, o) => {
      if (dirs.length === 1 && (await isExperimentDir(dirs[0]!))) {
        await reportExperiment(dirs[0]!, o);
        return;
      }
      if (dirs.length < 2)
        throw new ServelabError(
          "USAGE",
          `a report compares two or more artifact directories; got ${dirs.length}`,
        );
      // Before the (slow) reading: an --out that cannot be written fails at once.
      await makeOutputDir(o.out);
      // Loaded here, not with the CLI: the report's modules (charts among them) take about a second to load.
      const [{ readArmArtifacts }, { writeReport }] = await Promise.all([
        import("../report/artifacts.ts"),
        import("../report/report.ts"),
      ]);
      const allowIncomplete = o.allowIncomplete === true;
      // The artifacts backend: nothing runs, each directory must hold the records a report reads.
      await artifactsBackend().run(
        dirs.map((d) => ({ label: d, dir: d })),
        { onProgress: () => {} },
      );
      const recipe = o.recipe === undefined ? undefined : await loadRecipe(o.recipe);
      const runs = await namedRuns(await Promise.all(dirs.map(resolveArtifactDir)), recipe);
      const arms = await Promise.all(
        runs.map((r) => readArmArtifacts(r.exportDir, r.name, { allowIncomplete })),
      );
      for (const a of arms)
        if (a.incomplete)
          process.stderr.write(`warning: ${a.dir} is an unfinished run (${a.requests} records)\n`);
      // Without --goodput, the SLOs the runs were made with (servelab records them in input_config).
      const recorded = recordedGoodput(arms[0]?.summary.input_config);
      const slos =
        o.goodput !== undefined
          ? parseGoodput(o.goodput)
          : recipe
            ? parseGoodput(recipe.benchmark.goodput)
            : recorded
              ? parseGoodput(recorded)
              : [];
      const report = await writeReport(o.out, arms, {
        slos,
        // Without --goodput or a recipe, each arm is judged by the SLOs its own run was made with.
        ownSlos: o.goodput === undefined && recipe === undefined,
        ...(recipe ? { recipe } : {}),
        title: `${recipe ? `${recipe.name}: ` : ""}${arms.map((a) => a.name).join(" vs ")}`,
        command: ["servelab", ...process.argv.slice(2)].join(" "),
        seed: o.seed,
      });
      process.stdout.write(`${report.console}Report: ${report.html}\n`);
    });
}

/**
 * Report names for the directories: the directory's name, or with a recipe the arm each cluster run measured, in
 * the recipe's arm order (so a shell glob of run directories still puts the baseline first).
 */
async function namedRuns(
  resolved: readonly ResolvedArtifactDir[],
  recipe: Recipe | undefined,
): Promise<{ exportDir: string; name: string }[]> {
  const plain = resolved.map((r) => ({
    exportDir: r.exportDir,
    name: basename(r.dir.replace(/\/+$/, "")),
    order: 0,
  }));
  if (!recipe) return plain;
  const [{ armOfRun }, { effectiveDeploy }] = await Promise.all([
    import("../deploy/results.ts"),
    import("../deploy/render.ts"),
  ]);
  const d = effectiveDeploy(recipe);
  const armNames = Object.keys(recipe.arms);
  const named = resolved.map((r, i) => {
    const arm = r.run ? armOfRun(recipe, d, r.run) : armNames.find((a) => a === plain[i]!.name);
    return {
      exportDir: r.exportDir,
      name: arm ?? plain[i]!.name,
      order: arm ? armNames.indexOf(arm) : armNames.length,
    };
  });
  // Reruns of one arm keep their directory's name beside the arm's.
  const counts = new Map<string, number>();
  for (const n of named) counts.set(n.name, (counts.get(n.name) ?? 0) + 1);
  named.forEach((n, i) => {
    if (counts.get(n.name)! > 1) n.name = `${n.name} (${plain[i]!.name})`;
  });
  return named.map((n, i) => ({ ...n, i })).sort((a, b) => a.order - b.order || a.i - b.i);
}

async function isExperimentDir(dir: string): Promise<boolean> {
  try {
    await access(join(dir, EXPERIMENT_MANIFEST));
    return true;
  } catch {
    return false;
  }
}

/**
 * The report of a directory `servelab ab` wrote, rebuilt from its artifacts alone: the main point's arms, and the
 * capacity curves when it swept the load or the trace seed. The recipe comes from its `recipe.resolved.yaml`.
 */
async function reportExperiment(
  dir: string,
  o: { out: string; seed: number; allowIncomplete?: true | undefined; goodput?: string | undefined },
): Promise<void> {
  let manifest: ExperimentManifest;
  try {
    manifest = JSON.parse(await readFile(join(dir, EXPERIMENT_MANIFEST), "utf8")) as ExperimentManifest;
  } catch (e) {
    throw new ServelabError(
      "FILE_READ",
      `cannot read ${join(dir, EXPERIMENT_MANIFEST)}: ${(e as Error).message}`,
    );
  }
  if (
    !Array.isArray(manifest.runs) ||
    !Array.isArray(manifest.loads) ||
    typeof manifest.main?.load !== "number"
  )
    throw new ServelabError("FILE_READ", `${join(dir, EXPERIMENT_MANIFEST)} is not an experiment manifest`);
  await makeOutputDir(o.out);
  await artifactsBackend().run(
    manifest.runs.map((r) => ({ label: r.label, dir: join(dir, r.dir) })),
    { onProgress: () => {} },
  );
  const recipe = await loadRecipe(join(dir, "recipe.resolved.yaml"));
  const [{ readArmArtifacts }, { writeReport }, { readCapacityRuns }] = await Promise.all([
    import("../report/artifacts.ts"),
    import("../report/report.ts"),
    import("../report/capacity-runs.ts"),
  ]);
  const main = manifest.runs.filter(
    (r) => r.point.load === manifest.main.load && r.point.traceSeed === manifest.main.traceSeed,
  );
  const arms = await Promise.all(
    main.map((r) =>
      readArmArtifacts(join(dir, r.dir), r.arm, { allowIncomplete: o.allowIncomplete === true }),
    ),
  );
  const slos = o.goodput !== undefined ? parseGoodput(o.goodput) : parseGoodput(recipe.benchmark.goodput);
  const capacity =
    manifest.runs.length > main.length
      ? await readCapacityRuns(dir, manifest, {
          slos,
          seed: o.seed,
          gpusOf: (arm) => (recipe.arms[arm] ? armGpuCount(recipe.arms[arm]) : null),
          read: new Map(main.map((r, i) => [r.dir, arms[i]!])),
        })
      : undefined;
  const report = await writeReport(o.out, arms, {
    slos,
    recipe,
    title: `${recipe.name}: ${arms.map((a) => a.name).join(" vs ")}`,
    command: ["servelab", ...process.argv.slice(2)].join(" "),
    seed: o.seed,
    ...(capacity ? { capacity: { runs: capacity, loads: manifest.loads, seeds: manifest.seeds } } : {}),
  });
  process.stdout.write(`${report.console}Report: ${report.html}\n`);
}
