import { basename, join } from "node:path";
import type { Command } from "@commander-js/extra-typings";
import { ServelabError } from "../errors.ts";
import { makeOutputDir } from "../io/make-dir.ts";
import { parseGoodput } from "../metrics/goodput.ts";
import { intOption } from "./options.ts";

export function registerReportCommand(program: Command): void {
  program
    .command("report")
    .description(
      "build the A/B report from existing artifact directories (servelab's or AIPerf's); the first is the baseline",
    )
    .argument("<dirs...>", "artifact directories holding profile_export.jsonl")
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
    .action(async (dirs, o) => {
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
      const arms = await Promise.all(
        dirs.map((d) => readArmArtifacts(d, basename(d.replace(/\/+$/, "")), { allowIncomplete })),
      );
      for (const a of arms)
        if (a.incomplete)
          process.stderr.write(`warning: ${a.dir} is an unfinished run (${a.requests} records)\n`);
      // Without --goodput, the SLOs the runs were made with (servelab records them in input_config).
      const recorded = (arms[0]?.summary.input_config as { goodput?: Record<string, unknown> } | undefined)
        ?.goodput;
      const slos = o.goodput !== undefined ? parseGoodput(o.goodput) : recorded ? parseGoodput(recorded) : [];
      const report = await writeReport(o.out, arms, {
        slos,
        title: arms.map((a) => a.name).join(" vs "),
        command: ["servelab", ...process.argv.slice(2)].join(" "),
        seed: o.seed,
      });
      process.stdout.write(`${report.console}Report: ${report.html}\n`);
    });
}
