import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createWriteStream, type WriteStream } from "node:fs";
import { readdir, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { finished } from "node:stream/promises";
import { ServelabError } from "../errors.ts";
import { makeDir } from "./make-dir.ts";

/** A temporary name beside `file` that `removeStaleTemps` recognises once its process is gone. */
export function tempPathFor(file: string): string {
  return join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
}

const TEMP_NAME = /^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$/;

/**
 * Removes temporary files `writeFileAtomic` left in `dir` when its process was killed (their pid is gone); a live
 * process's temporary files are its own.
 */
export async function removeStaleTemps(dir: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    const pid = Number(TEMP_NAME.exec(name)?.[1]);
    if (!pid || processAlive(pid)) continue;
    await rm(join(dir, name), { force: true }).catch(() => {});
  }
}

/** Whether a process with this pid exists (EPERM: it does, but belongs to someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Resolves once the stream has released its file descriptor, so the temp file can be removed for good. */
function closed(out: WriteStream): Promise<void> {
  if (out.closed) return Promise.resolve();
  return new Promise((resolve) => {
    out.once("close", () => resolve());
    out.destroy();
  });
}

/**
 * Writes chunks to `file` so that readers only ever see the old file or the complete new one: the data goes to a
 * temporary file in the same directory (same filesystem, so the rename is atomic) and is renamed over the target
 * once fully flushed. On any failure the temporary file is removed and the target is untouched.
 */
export async function writeFileAtomic(
  file: string,
  chunks: Iterable<string> | AsyncIterable<string>,
): Promise<void> {
  const tmp = tempPathFor(file);
  let out: WriteStream | undefined;
  try {
    await makeDir(dirname(file));
    out = createWriteStream(tmp, { flags: "wx" });
    const done = finished(out);
    // Without this, a failed open would surface as an unhandled rejection before we reach `await done`.
    done.catch(() => {});
    for await (const chunk of chunks) {
      if (out.errored) throw out.errored;
      // `once` rejects if the stream errors while we wait, so a failing disk cannot hang the write.
      if (!out.write(chunk)) await once(out, "drain");
    }
    out.end();
    await done;
    await rename(tmp, file);
  } catch (e) {
    // The stream may still be opening the temp file; wait for it to let go before removing it.
    if (out) await closed(out);
    await rm(tmp, { force: true }).catch(() => {});
    throw new ServelabError("FILE_WRITE", `cannot write ${file}: ${(e as Error).message}`);
  }
}
