import { readFileSync, unlinkSync } from "node:fs";
import { open, readFile, rename, rm, unlink, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { ServelabError } from "../errors.ts";
import { processAlive } from "./atomic-write.ts";
import { makeDir } from "./make-dir.ts";

/**
 * A file whose presence marks an artifact directory as unfinished: written when a run starts writing there and
 * removed when it completes, so a killed run's directory never passes for a complete one (`servelab report` refuses
 * it without `--allow-incomplete`).
 */
export const INCOMPLETE_MARKER = "servelab_incomplete";

const lockPathOf = (dir: string) => join(dirname(dir), `.${basename(dir)}.lock`);
/** Where a run builds an output directory before it is renamed into place. */
const partialDirOf = (dir: string) => join(dirname(dir), `.${basename(dir)}.partial`);

interface LockOwner {
  pid: number;
  started: string;
  command: string;
}

function readOwner(text: string): LockOwner | undefined {
  try {
    const o = JSON.parse(text) as Partial<LockOwner>;
    return typeof o.pid === "number" && Number.isInteger(o.pid) && o.pid > 0 ? (o as LockOwner) : undefined;
  } catch {
    return undefined;
  }
}

/** Creates the lock file, taking over a stale one (its owner gone, or not a lock at all); throws when it is held. */
async function claim(file: string, owner: LockOwner, dir: string): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(file, "wx");
      await handle.writeFile(`${JSON.stringify(owner)}\n`);
      await handle.close();
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST")
        throw new ServelabError("FILE_WRITE", `cannot write ${file}: ${(e as Error).message}`);
    }
    const held = readOwner(await readFile(file, "utf8").catch(() => ""));
    if (held && processAlive(held.pid)) {
      throw new ServelabError(
        "OUTPUT_LOCKED",
        `${dir} is being written by another servelab run (pid ${held.pid}, since ${held.started}: ${held.command})`,
        [`wait for it or use another output directory; if that process is gone, remove ${file}`],
      );
    }
    await unlink(file).catch(() => {});
  }
  throw new ServelabError("FILE_WRITE", `cannot take the lock ${file}: it keeps coming back`);
}

export interface OutputLock {
  readonly file: string;
  release(): Promise<void>;
}

/**
 * Claims an output directory for this run: a lock file beside it names the owner's pid, and a second run into the
 * same directory fails at once with `OUTPUT_LOCKED` instead of interleaving with the first. A lock whose owner is
 * gone (a killed run) is stale and taken over. Released by `release`, or when the process exits.
 */
export async function lockOutputDir(dir: string, command: string): Promise<OutputLock> {
  const file = lockPathOf(dir);
  const owner: LockOwner = { pid: process.pid, started: new Date().toISOString(), command };
  try {
    await makeDir(dirname(file));
  } catch (e) {
    throw new ServelabError("FILE_WRITE", `cannot create ${dirname(file)}: ${(e as Error).message}`);
  }
  await claim(file, owner, dir);
  const onExit = () => {
    try {
      if (readOwner(readFileSync(file, "utf8"))?.pid === process.pid) unlinkSync(file);
    } catch {
      // Already gone.
    }
  };
  process.once("exit", onExit);
  return {
    file,
    release: async () => {
      process.off("exit", onExit);
      await rm(file, { force: true });
    },
  };
}

/**
 * Starts building `dir` in a fresh directory beside it (any leftover of a killed run is removed first), marked
 * incomplete; `commit` then moves it into place, replacing what `dir` held, so readers only ever see the earlier
 * complete run or the new complete one (or, committed `incomplete`, a run stopped on request, marked). Hold the
 * directory's lock (`lockOutputDir`) while building.
 */
export async function buildOutputDir(
  dir: string,
): Promise<{ path: string; commit(opts?: { incomplete?: boolean }): Promise<void> }> {
  const path = partialDirOf(dir);
  try {
    await rm(path, { recursive: true, force: true });
    await makeDir(path);
    await writeFile(join(path, INCOMPLETE_MARKER), "this run has not finished\n");
  } catch (e) {
    throw new ServelabError("FILE_WRITE", `cannot create ${path}: ${(e as Error).message}`);
  }
  return {
    path,
    commit: async (opts = {}) => {
      try {
        // A run stopped on request keeps what it completed, marked as such.
        if (opts.incomplete)
          await writeFile(join(path, INCOMPLETE_MARKER), "this run was stopped before it completed\n");
        else await rm(join(path, INCOMPLETE_MARKER), { force: true });
        await rm(dir, { recursive: true, force: true });
        await rename(path, dir);
      } catch (e) {
        throw new ServelabError("FILE_WRITE", `cannot move ${path} to ${dir}: ${(e as Error).message}`);
      }
    },
  };
}
