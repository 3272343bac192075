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

/** Runs the CLI in this process (no start-up cost), capturing what it writes to stdout and stderr. */
export async function runInProcess(
  args: readonly string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const capture = (stream: NodeJS.WriteStream, into: string[]) => {
    const original = stream.write;
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      if (typeof chunk === "string") {
        into.push(chunk);
        return true;
      }
      return (original as (...a: unknown[]) => boolean).call(stream, chunk, ...rest);
    }) as typeof stream.write;
    return () => {
      stream.write = original;
    };
  };
  const out: string[] = [];
  const err: string[] = [];
  const restoreOut = capture(process.stdout, out);
  const restoreErr = capture(process.stderr, err);
  try {
    const code = await main(["node", "servelab", ...args]);
    return { code, stdout: out.join(""), stderr: err.join("") };
  } finally {
    restoreOut();
    restoreErr();
  }
}
