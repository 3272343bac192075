import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { finished } from "node:stream/promises";
import { ServelabError } from "../errors.ts";

function tempPathFor(file: string): string {
  return join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
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
  try {
    await mkdir(dirname(file), { recursive: true });
    const out = createWriteStream(tmp, { flags: "wx" });
    const done = finished(out);
    // Without this, a failed open would surface as an unhandled rejection before we reach `await done`.
    done.catch(() => {});
    for await (const chunk of chunks) {
      if (!out.write(chunk)) await new Promise<void>((resolve) => out.once("drain", resolve));
      if (out.errored) throw out.errored;
    }
    out.end();
    await done;
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => {});
    throw new ServelabError("FILE_WRITE", `cannot write ${file}: ${(e as Error).message}`);
  }
}
