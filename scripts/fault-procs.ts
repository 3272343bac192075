import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const CLI = join(ROOT, "bin/servelab.js");

export interface Proc {
  child: ChildProcess;
  out: () => string;
  exit: Promise<number | null>;
}

/** Runs `servelab ARGS…` as a child process, collecting stdout and stderr together. */
export function start(args: string[]): Proc {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let text = "";
  child.stdout!.on("data", (d) => {
    text += d;
  });
  child.stderr!.on("data", (d) => {
    text += d;
  });
  const exit = once(child, "exit").then(([code]) => code as number | null);
  return { child, out: () => text, exit };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const lines = async (file: string) =>
  (await readFile(file, "utf8").catch(() => "")).split("\n").filter((l) => l !== "");

/** Waits for the first match of `re` in a process's output (its URL line), or fails after `ms`. */
export async function waitForLine(p: Proc, re: RegExp, what: string, ms = 60_000): Promise<string> {
  const end = Date.now() + ms;
  for (;;) {
    const m = re.exec(p.out());
    if (m) return m[1]!;
    if (Date.now() > end || p.child.exitCode !== null)
      throw new Error(`${what} did not start: ${p.out().slice(-500)}`);
    await sleep(50);
  }
}
