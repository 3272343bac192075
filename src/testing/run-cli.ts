import { execFile } from "node:child_process";
import { join } from "node:path";
import { main } from "../cli/main.ts";
import { REPO_ROOT } from "./fixtures.ts";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real `servelab` binary in a child process, as a user would. */
export function runCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  cwd = REPO_ROOT,
): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(REPO_ROOT, "bin/servelab.js"), ...args],
      { cwd, env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/**
 * Runs the CLI in this process (no start-up cost: a child costs ~1 s of CPU to boot and load the sources), capturing
 * what it writes to stdout and stderr; `env` and `cwd` apply while it runs. For commands that finish on their own:
 * signals and process exit need `runCli`.
 */
export async function runInProcess(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  cwd?: string,
): Promise<CliResult> {
  const capture = (stream: NodeJS.WriteStream, into: string[]) => {
    const original = stream.write;
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      // Only text: the test runner reports to its parent through this stream in binary, and that must pass.
      if (typeof chunk === "string") {
        into.push(chunk);
        const done = rest.find((r) => typeof r === "function") as (() => void) | undefined;
        done?.();
        return true;
      }
      return (original as (...a: unknown[]) => boolean).call(stream, chunk, ...rest);
    }) as typeof stream.write;
    return () => {
      stream.write = original;
    };
  };
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  const savedCwd = process.cwd();
  const out: string[] = [];
  const err: string[] = [];
  const restoreOut = capture(process.stdout, out);
  const restoreErr = capture(process.stderr, err);
  try {
    Object.assign(process.env, env);
    if (cwd !== undefined) process.chdir(cwd);
    const code = await main(["node", "servelab", ...args]);
    return { code, stdout: out.join(""), stderr: err.join("") };
  } finally {
    restoreOut();
    restoreErr();
    process.chdir(savedCwd);
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
