import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

/** Repository root, from this file's location. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** The shared data dir that CI exports; tests that need upstream data skip when it is absent. */
export const SHARED_DATA_DIR = process.env.SERVELAB_DATA_DIR ?? resolve(REPO_ROOT, "../shared/data");
export const CONVERSATION_TRACE = join(SHARED_DATA_DIR, "mooncake/conversation_trace.jsonl");

/** A temp dir removed after the callback, whatever happens. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "servelab-test-"));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Writes lines (objects are JSON-encoded) to `dir/name`, gzipped when the name ends in .gz. */
export async function writeLines(
  dir: string,
  name: string,
  lines: readonly (string | object)[],
): Promise<string> {
  const file = join(dir, name);
  const text = `${lines.map((l) => (typeof l === "string" ? l : JSON.stringify(l))).join("\n")}\n`;
  await writeFile(file, name.endsWith(".gz") ? gzipSync(text) : text);
  return file;
}
