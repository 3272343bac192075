import { mkdir, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { ServelabError } from "../errors.ts";

/**
 * `mkdir -p` one level at a time. Node's recursive mkdir spins forever on paths it cannot create under some
 * virtual filesystems (`/proc/x`: ENOENT for the child, EEXIST for the parent, again and again); this walks up to
 * the nearest existing directory and creates each missing level, so any failure surfaces as an error.
 */
export async function makeDir(path: string): Promise<void> {
  const missing: string[] = [];
  let at = resolve(path);
  for (;;) {
    const st = await stat(at).catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") return undefined;
      throw e;
    });
    if (st) {
      if (!st.isDirectory()) throw Object.assign(new Error(`${at} is not a directory`), { code: "ENOTDIR" });
      break;
    }
    missing.push(at);
    const up = dirname(at);
    if (up === at) break;
    at = up;
  }
  for (const dir of missing.reverse()) {
    await mkdir(dir).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== "EEXIST") throw e;
    });
  }
}

/** `makeDir` for an output the user named: a failure is `error[FILE_WRITE]` naming it. */
export async function makeOutputDir(path: string): Promise<void> {
  try {
    await makeDir(path);
  } catch (e) {
    throw new ServelabError(
      "FILE_WRITE",
      `cannot create the output directory ${path}: ${(e as Error).message}`,
    );
  }
}
