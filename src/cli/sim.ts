import { dirname, join } from "node:path";
import type { Command } from "@commander-js/extra-typings";
import Table from "cli-table3";
import { PERF_BOUNDS, parsePerfBounds } from "../engine/perf/bounds.ts";
import { describePerfModels, perfModelChoice, uncalibratedWarning } from "../engine/perf-models.ts";
import { ServelabError } from "../errors.ts";
import { parseLoads } from "../experiment/plan.ts";
import { loadRecipe } from "../recipe/load.ts";
import type { SimExtras } from "../sim/run-sim.ts";
import { intOption } from "./options.ts";
import { startProgress } from "./progress.ts";
import { TABLE_STYLE } from "./table-style.ts";

const fmt = (v: number, digits = 2) =>
  v.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

function renderExtras(x: SimExtras, wallS: number): string {
  const t = new Table({ head: ["simulator", ""], ...TABLE_STYLE });
  t.push(
    ["arm", `${x.arm} (${x.recipe})`],
    ["requests / simulated time", `${x.requests} / ${fmt(x.simulated_s / 60, 1)} min`],
    ["wall time / speed-up", `${fmt(wallS, 1)} s / ${fmt(x.simulated_s / Math.max(wallS, 1e-9), 0)}×`],
    ["prefix-cache hit rate", `${fmt(100 * x.prefix_cache_hit_rate, 1)} %`],
    [
      "KV transfer (mean / p99)",
      x.kv_transfer_ms ? `${fmt(x.kv_transfer_ms.mean, 3)} / ${fmt(x.kv_transfer_ms.p99, 3)} ms` : "–",
    ],
    ["peak queued requests", String(Math.max(0, ...x.timeline.map((s) => s.waiting)))],
    ["preemptions", String(x.preemptions)],
    ...Object.entries(x.step_time_model.models).map(([role, m]) => [`step-time model (${role})`, m]),
    ["profile bounds", x.step_time_model.bounds],
    [
      "calibration",
      x.step_time_model.calibrated ? "measured profile" : "UNCALIBRATED (polynomial mocker model)",
    ],
  );
  return `${t.toString()}\n`;
}

export function registerSimCommand(program: Command): void {
  program
    .command("sim")
    .description("run one arm of a recipe on the simulated cluster and write AIPerf-compatible artifacts")
    .argument("<recipe>", "recipe YAML")
    .requiredOption("--arm <name>", "the arm to run")
    .option("--trace <file>", "replay this trace (file or dataset name) instead of the recipe's")
    .option("--out <dir>", "artifact directory (default: results/sim/<recipe>/<arm>)")
    .option(
      "--seed <n>",
      "seed for the router's random choices (default: the recipe's trace seed)",
      intOption(0),
    )
    .option(
      "--perf-model <name>",
      "step-time model: auto (the measured GB200 profile where the recipe matches it, else polynomial), table, polynomial, or a profile name",
      "auto",
    )
    .option(
      "--perf-bounds <bound>",
      `where the table profile's uncertain parameters are read: ${PERF_BOUNDS.join(", ")}`,
      "nominal",
    )
    .option(
      "--load <factor>",
      "arrival-rate factor: the trace's timestamps divided by it (Dynamo's --speedup-ratio); default 1",
      (v: string) => {
        const loads = parseLoads(v);
        if (loads.length !== 1)
          throw new ServelabError("USAGE", "servelab sim runs one load; servelab ab --load sweeps several");
        return loads[0]!;
      },
    )
    .option(
      "--start-time <iso>",
      "when the simulated run starts, e.g. 2026-01-01T00:00:00Z: its records carry epoch nanoseconds from it (default: the recipe's benchmark.start_time)",
    )
    .option("--data-dir <dir>", "where named datasets are looked up first")
    .option("--json", "print the summary as profile_export_aiperf.json plus a servelab object")
    .action(async (recipePath, o) => {
      const recipe = await loadRecipe(recipePath);
      const [{ simulateArmHere }, { renderConsoleReport }] = await Promise.all([
        import("../experiment/simulator.ts"),
        import("../metrics/console-table.ts"),
      ]);
      if (o.startTime !== undefined && !Number.isFinite(Date.parse(o.startTime)))
        throw new ServelabError("USAGE", `--start-time '${o.startTime}' is not an ISO 8601 date and time`);
      const bounds = parsePerfBounds(o.perfBounds);
      if (bounds.length !== 1)
        throw new ServelabError(
          "USAGE",
          "servelab sim runs one bound at a time; servelab ab compares several",
        );
      const perfModel = perfModelChoice(o.perfModel, recipe, { bound: bounds[0]! });
      const described = describePerfModels(o.perfModel, recipe, [o.arm], { bound: bounds[0]! });
      if (!described.calibrated) process.stderr.write(uncalibratedWarning(described.models));
      const outDir = o.out ?? join("results", "sim", recipe.name, o.arm);
      const progress = startProgress("simulate", 1, "requests");
      const t0 = performance.now();
      const run = await simulateArmHere({
        recipe,
        recipeDir: dirname(recipePath),
        arm: o.arm,
        ...(o.trace === undefined ? {} : { traceFile: o.trace }),
        ...(o.dataDir === undefined ? {} : { dataDir: o.dataDir }),
        ...(o.seed === undefined ? {} : { seed: o.seed }),
        ...(o.load === undefined ? {} : { load: o.load }),
        ...(o.startTime === undefined ? {} : { startTime: o.startTime }),
        outDir,
        perfModel,
        cliCommand: ["servelab", ...process.argv.slice(2)].join(" "),
        onProgress: (_virtualMs, done, total) => {
          if (done % 100 === 0 || done === total) progress.update(done, total);
        },
      }).finally(() => progress.stop());
      const wallS = (performance.now() - t0) / 1000;
      if (o.json) {
        process.stdout.write(run.json);
        return;
      }
      process.stdout.write(
        renderConsoleReport(run.summary, [], { csvPath: run.files.csv, jsonPath: run.files.json }) +
          renderExtras(run.extras, wallS),
      );
    });
}
