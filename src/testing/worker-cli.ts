import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Command } from "@commander-js/extra-typings";
import { registerWorkerCommand } from "../cli/worker.ts";
import { REPO_ROOT } from "./fixtures.ts";

/** Parses `worker ...` on a fresh program; resolves with the error it threw (if any) and what it printed to stderr. */
export async function parseWorkerArgs(args: string[]): Promise<{ error: unknown; stderr: string }> {
  let stderr = "";
  const program = new Command("servelab")
    .exitOverride()
    .configureOutput({ writeErr: (s) => (stderr += s), writeOut: () => {} });
  registerWorkerCommand(program);
  try {
    await program.parseAsync(["worker", ...args], { from: "user" });
    return { error: undefined, stderr };
  } catch (error) {
    return { error, stderr };
  }
}

/** A script (for `node --import tsx --input-type=module -e`) that runs `servelab worker` with its argv. */
const WORKER_PROGRAM = `
import { Command } from "@commander-js/extra-typings";
const { registerWorkerCommand } = await import(${JSON.stringify(pathToFileURL(join(REPO_ROOT, "src/cli/worker.ts")).href)});
const program = new Command("servelab");
registerWorkerCommand(program);
await program.parseAsync(process.argv.slice(1), { from: "user" });
`;

/** Starts `servelab worker ARGS…` in a child process from the TypeScript sources, its output piped. */
export function spawnWorkerCli(args: readonly string[]): ChildProcessWithoutNullStreams {
  return spawn(
    process.execPath,
    ["--import", "tsx", "--input-type=module", "-e", WORKER_PROGRAM, "worker", ...args],
    {
      cwd: REPO_ROOT,
      stdio: ["pipe", "pipe", "pipe"],
    },
  );
}
