import { Command, CommanderError } from "@commander-js/extra-typings";
import { formatError, isServelabError, USER_ERROR_EXIT } from "../errors.ts";
import { registerAbCommand } from "./ab.ts";
import { registerBenchCommand } from "./bench.ts";
import { registerDeployCommands } from "./deploy.ts";
import { registerFrontendCommand } from "./frontend.ts";
import { registerRecipeCommands } from "./recipe.ts";
import { registerReportCommand } from "./report.ts";
import { registerSimCommand } from "./sim.ts";
import { registerTraceCommands } from "./trace.ts";
import { registerUpCommand } from "./up.ts";
import { registerWorkerCommand } from "./worker.ts";

/** Whether commander printed its error (a parse error) before throwing it; errors thrown in actions it does not. */
let printed = false;

export function buildProgram(): Command {
  printed = false;
  const program = new Command("servelab")
    .description("A/B test LLM serving configurations on real traces")
    .showHelpAfterError()
    // Usage errors carry the registry's code like every other error.
    .configureOutput({
      outputError: (text, write) => {
        printed = true;
        write(text.replace(/^error: /, "error[USAGE]: "));
      },
    })
    .exitOverride();
  registerAbCommand(program);
  registerTraceCommands(program);
  registerRecipeCommands(program);
  registerReportCommand(program);
  registerSimCommand(program);
  registerBenchCommand(program);
  registerDeployCommands(program);
  registerWorkerCommand(program);
  registerFrontendCommand(program);
  registerUpCommand(program);
  return program;
}

/** Runs the CLI and returns its exit status instead of exiting, so tests can call it in-process. */
export async function main(argv: readonly string[]): Promise<number> {
  // A reader that went away (a closed pipe, `| head`) ends the output, not the command with a stack trace.
  for (const stream of [process.stdout, process.stderr]) {
    if (stream.listenerCount("error") === 0) stream.on("error", () => {});
  }
  const program = buildProgram();
  try {
    await program.parseAsync(argv as string[]);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander has printed its own parse errors (or the help text); one thrown by an action it has not.
      if (!printed && e.exitCode !== 0)
        process.stderr.write(`error[USAGE]: ${e.message.replace(/^error: /, "")}\n`);
      return e.exitCode === 0 ? 0 : USER_ERROR_EXIT;
    }
    if (isServelabError(e)) {
      process.stderr.write(`${formatError(e)}\n`);
      return USER_ERROR_EXIT;
    }
    throw e;
  }
}
