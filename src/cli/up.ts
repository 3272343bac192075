import type { Command } from "@commander-js/extra-typings";
import { Option } from "@commander-js/extra-typings";
import Table from "cli-table3";
import { PERF_MODEL_CHOICES } from "../engine/perf-models.ts";
import { loadRecipe } from "../recipe/load.ts";
import { type RunningStack, startStack } from "../serve/stack/run-stack.ts";
import { planStack } from "../serve/stack/stack-plan.ts";
import { intOption, portOption, positiveNumberOption } from "./options.ts";
import { waitForStopSignal } from "./stop-signal.ts";
import { TABLE_STYLE } from "./table-style.ts";

function stackTable(stack: RunningStack): string {
  const t = new Table({ head: ["process", "pid", "url", "dp ranks", "KV events"], ...TABLE_STYLE });
  t.push([stack.frontend.id, stack.frontend.pid, stack.frontend.url, "", ""]);
  for (const w of stack.workers) {
    const kv = w.kvEvents.map((k) => k.endpoint.replace(/^tcp:\/\/127\.0\.0\.1:/, ":")).join(" ");
    t.push([`${w.id} (${w.kind})`, w.pid, w.url, w.dpSize, kv]);
  }
  return t.toString();
}

export function registerUpCommand(program: Command): void {
  program
    .command("up")
    .description(
      "start one arm of a recipe on loopback as real processes (one `servelab worker` per worker, plus `servelab frontend`) and keep it up until Ctrl-C",
    )
    .argument("<recipe>", "recipe file")
    .option("--arm <name>", "the arm to start (default: the recipe's only arm)")
    .option(
      "--scale <f>",
      "shrink replicas and DP ranks by this factor (each rounded, at least 1) for a small machine",
      positiveNumberOption,
      1,
    )
    .option(
      "--speedup-ratio <x>",
      "run engine steps this many times faster than modelled",
      positiveNumberOption,
      1,
    )
    .option("--port <n>", "the frontend's port (0: any free port)", portOption, 8000)
    .addOption(
      new Option("--perf-model <name>", "step-time model of the workers").choices(PERF_MODEL_CHOICES),
    )
    .option("--discovery-file <file>", "where to write the workers' discovery file")
    .option("--migration-limit <n>", "the frontend's --migration-limit", intOption(0), 0)
    .option("--stream-timeout-secs <s>", "the frontend's --stream-timeout-secs", positiveNumberOption)
    .option("--verbose", "show every process's output")
    .action(async (recipePath, o) => {
      const recipe = await loadRecipe(recipePath);
      const plan = planStack(recipe, o.arm, o.scale);
      process.stdout.write(
        `servelab up: ${plan.recipe}, arm ${plan.arm}: ${plan.workers.length} workers + frontend, speed-up ${o.speedupRatio}x\n`,
      );
      for (const line of plan.scaling) process.stdout.write(`servelab up: --scale ${o.scale}: ${line}\n`);
      const stack = await startStack({
        plan,
        recipePath,
        speedupRatio: o.speedupRatio,
        port: o.port,
        ...(o.perfModel === undefined ? {} : { perfModel: o.perfModel }),
        ...(o.discoveryFile === undefined ? {} : { discoveryFile: o.discoveryFile }),
        frontendArgs: [
          "--migration-limit",
          String(o.migrationLimit),
          ...(o.streamTimeoutSecs === undefined
            ? []
            : ["--stream-timeout-secs", String(o.streamTimeoutSecs)]),
        ],
        onOutput: (proc, line, stream) => {
          if (o.verbose || stream === "stderr") process.stderr.write(`[${proc.id}] ${line}\n`);
        },
        onExit: (proc, code, signal) =>
          process.stderr.write(
            `servelab up: ${proc.id} (pid ${proc.pid}) exited (${signal ?? `code ${code}`}); the frontend skips it\n`,
          ),
      });
      process.stdout.write(`${stackTable(stack)}\n`);
      process.stdout.write(`servelab up: discovery file ${stack.discoveryFile}\n`);
      process.stdout.write(
        `servelab up: endpoint ${stack.endpoint}/v1 (model ${plan.model}); Ctrl-C stops it\n`,
      );
      const signal = await waitForStopSignal();
      process.stdout.write(`servelab up: ${signal}, stopping ${stack.workers.length + 1} processes\n`);
      await stack.stop();
      process.stdout.write("servelab up: stopped\n");
    });
}
