import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { type FileHandle, open, rename, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import cliProgress from "cli-progress";
import { ServelabError } from "../errors.ts";
import { makeDir } from "../io/make-dir.ts";
import {
  DATASETS,
  type DatasetEntry,
  type DatasetRegistry,
  datasetEntryProblems,
  datasetNames,
} from "./datasets.ts";

/** Environment variable naming a data dir, used when no `--data-dir` is given. */
export const DATA_DIR_ENV = "SERVELAB_DATA_DIR";

/** A download that receives nothing for this long is abandoned rather than left hanging forever. */
const DOWNLOAD_IDLE_TIMEOUT_MS = 60_000;

export type DatasetSource = "data-dir" | "env" | "cache" | "download";

export interface ResolvedDataset {
  /** The verified file. */
  path: string;
  /** Which location it was found in, or `download` when it was fetched into the cache by this call. */
  source: DatasetSource;
}

export interface DownloadProgress {
  name: string;
  url: string;
  receivedBytes: number;
  totalBytes: number;
}

export interface ResolveDatasetOptions {
  /** An explicit data dir (`--data-dir`); replaces `SERVELAB_DATA_DIR` rather than adding to it. */
  dataDir?: string;
  /** Environment to read `SERVELAB_DATA_DIR`, `XDG_CACHE_HOME` and `HOME` from; defaults to `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** The dataset cache dir itself (files go to `<cacheDir>/<relative path>`), replacing the per-user default. */
  cacheDir?: string;
  fetchImpl?: typeof fetch;
  /** Called as download bytes arrive. When absent, a progress bar is drawn if stderr is a terminal. */
  onProgress?: (progress: DownloadProgress) => void;
  /** Datasets to resolve names against; defaults to `DATASETS`. */
  registry?: DatasetRegistry;
}

interface Digest {
  sha256: string;
  bytes: number;
}

type Inspection = { kind: "ok" } | { kind: "missing" } | { kind: "mismatch"; actual: Digest };

function errnoCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** `$XDG_CACHE_HOME/servelab/datasets`, else `~/.cache/servelab/datasets`. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  // The XDG base directory spec says relative values are invalid and must be ignored.
  if (xdg && path.isAbsolute(xdg)) return path.join(xdg, "servelab", "datasets");
  const home = env.HOME && path.isAbsolute(env.HOME) ? env.HOME : os.homedir();
  return path.join(home, ".cache", "servelab", "datasets");
}

function locate(dir: string, entry: DatasetEntry): string {
  return path.join(dir, ...entry.relativePath.split("/"));
}

/** Streams the file through sha256 so that multi-GiB datasets never have to fit in memory. */
async function digestFile(file: string): Promise<Digest> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of createReadStream(file)) {
    const buf = chunk as Buffer;
    hash.update(buf);
    bytes += buf.length;
  }
  return { sha256: hash.digest("hex"), bytes };
}

async function inspect(file: string, entry: DatasetEntry): Promise<Inspection> {
  try {
    const st = await stat(file);
    if (!st.isFile()) throw new ServelabError("FILE_READ", `dataset file ${file} is not a regular file`);
  } catch (e) {
    if (e instanceof ServelabError) throw e;
    const code = errnoCode(e);
    if (code === "ENOENT" || code === "ENOTDIR") return { kind: "missing" };
    throw new ServelabError("FILE_READ", `cannot read dataset file ${file}: ${errorMessage(e)}`);
  }
  let actual: Digest;
  try {
    actual = await digestFile(file);
  } catch (e) {
    throw new ServelabError("FILE_READ", `cannot read dataset file ${file}: ${errorMessage(e)}`);
  }
  return actual.sha256 === entry.sha256 && actual.bytes === entry.bytes
    ? { kind: "ok" }
    : { kind: "mismatch", actual };
}

function describeMismatch(entry: DatasetEntry, actual: Digest): string {
  return (
    `expected sha256 ${entry.sha256} (${entry.bytes} bytes), ` +
    `actual sha256 ${actual.sha256} (${actual.bytes} bytes)`
  );
}

function manualPlacementHint(entry: DatasetEntry): string {
  return (
    `to use a copy obtained another way, save it as <dir>/${entry.relativePath} ` +
    `(sha256 ${entry.sha256}, ${entry.bytes} bytes) and pass --data-dir <dir> or set ${DATA_DIR_ENV}=<dir>`
  );
}

interface ExplicitDataDir {
  dir: string;
  source: "data-dir" | "env";
  label: string;
}

function explicitDataDir(opts: ResolveDatasetOptions, env: NodeJS.ProcessEnv): ExplicitDataDir | undefined {
  if (opts.dataDir !== undefined) {
    if (typeof opts.dataDir !== "string" || opts.dataDir.trim() === "") {
      throw new ServelabError("USAGE", `--data-dir must be a non-empty directory path`);
    }
    return { dir: path.resolve(opts.dataDir), source: "data-dir", label: "--data-dir" };
  }
  const fromEnv = env[DATA_DIR_ENV];
  // An empty value is how shells usually unset a variable for one command, so it means "not set".
  if (fromEnv !== undefined && fromEnv.trim() !== "") {
    return { dir: path.resolve(fromEnv), source: "env", label: DATA_DIR_ENV };
  }
  return undefined;
}

async function describeMissing(dir: string, file: string, label: string): Promise<string> {
  try {
    const st = await stat(dir);
    if (!st.isDirectory()) return `looked in ${dir} (${label}): not a directory`;
  } catch {
    return `looked in ${dir} (${label}): the directory does not exist`;
  }
  return `looked for ${file} (${label}): not found`;
}

function lookupEntry(name: string, registry: DatasetRegistry): DatasetEntry {
  if (typeof name !== "string" || !Object.hasOwn(registry, name)) {
    const known = datasetNames(registry);
    throw new ServelabError(
      "DATASET_UNKNOWN",
      `unknown dataset ${JSON.stringify(name)}; known datasets: ${known.length > 0 ? known.join(", ") : "(none)"}`,
    );
  }
  const entry = registry[name]!;
  const problems = datasetEntryProblems(name, entry);
  // A malformed entry is a bug in the registry, not in the user's input, so it is not a ServelabError.
  if (problems.length > 0) throw new TypeError(`invalid dataset registry entry: ${problems.join("; ")}`);
  return entry;
}

/**
 * Finds the verified file for a registered dataset: in the explicit data dir (`dataDir`, else
 * `SERVELAB_DATA_DIR`), then in the user cache, else downloads it into the cache. A local copy whose size or sha256
 * differs is reported as DATASET_CHECKSUM instead of being skipped, since silently using another copy would hide a
 * corrupted or outdated file; only a mismatching cache copy is replaced, because the cache is servelab's own.
 */
export async function resolveDataset(
  name: string,
  opts: ResolveDatasetOptions = {},
): Promise<ResolvedDataset> {
  const entry = lookupEntry(name, opts.registry ?? DATASETS);
  const env = opts.env ?? process.env;
  const looked: string[] = [];

  const explicit = explicitDataDir(opts, env);
  if (explicit) {
    const file = locate(explicit.dir, entry);
    const found = await inspect(file, entry);
    if (found.kind === "ok") return { path: file, source: explicit.source };
    if (found.kind === "mismatch") {
      throw new ServelabError(
        "DATASET_CHECKSUM",
        `${file} (dataset "${name}", from ${explicit.label}) does not match: ${describeMismatch(entry, found.actual)}`,
        [
          "the file is damaged or a different version; replace it with the registered one, " +
            "or remove it to have servelab download the dataset into its cache",
        ],
      );
    }
    looked.push(await describeMissing(explicit.dir, file, explicit.label));
  }

  if (opts.cacheDir !== undefined && (typeof opts.cacheDir !== "string" || opts.cacheDir.trim() === "")) {
    throw new TypeError("resolveDataset: cacheDir must be a non-empty directory path");
  }
  const cacheDir = opts.cacheDir !== undefined ? path.resolve(opts.cacheDir) : defaultCacheDir(env);
  const cached = locate(cacheDir, entry);
  const inCache = await inspect(cached, entry);
  if (inCache.kind === "ok") return { path: cached, source: "cache" };
  looked.push(
    inCache.kind === "missing"
      ? await describeMissing(cacheDir, cached, "cache")
      : `cached copy ${cached} does not match (${describeMismatch(entry, inCache.actual)}); tried to download it again`,
  );

  await download(name, entry, cached, opts, looked);
  return { path: cached, source: "download" };
}

interface ProgressSink {
  update(received: number): void;
  stop(): void;
}

function progressSink(
  name: string,
  entry: DatasetEntry,
  onProgress: ResolveDatasetOptions["onProgress"],
): ProgressSink {
  if (onProgress) {
    return {
      update: (receivedBytes) => onProgress({ name, url: entry.url, receivedBytes, totalBytes: entry.bytes }),
      stop: () => {},
    };
  }
  // A bar drawn into a pipe or CI log only leaves control characters behind.
  if (!process.stderr.isTTY) return { update: () => {}, stop: () => {} };
  const mib = (n: number) => (n / 2 ** 20).toFixed(1);
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `downloading ${name} [{bar}] {percentage}% | {received}/{size} MiB | ETA {eta_formatted}`,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(received) {
      if (!started) {
        bar.start(entry.bytes, 0, { received: mib(0), size: mib(entry.bytes) });
        started = true;
      }
      bar.update(received, { received: mib(received) });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

function describeFetchError(e: unknown): string {
  const msg = errorMessage(e);
  // undici reports every network failure as "fetch failed" and keeps the useful part (ECONNREFUSED, ENOTFOUND...)
  // in `cause`.
  const cause = (e as { cause?: unknown } | undefined)?.cause;
  if (cause === undefined) return msg;
  const causeCode = errnoCode(cause);
  const causeMsg = errorMessage(cause);
  return `${msg} (${causeCode && !causeMsg.includes(causeCode) ? `${causeCode}: ` : ""}${causeMsg})`;
}

async function writeAll(fh: FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < chunk.byteLength) {
    const { bytesWritten } = await fh.write(chunk, offset, chunk.byteLength - offset);
    offset += bytesWritten;
  }
}

/**
 * Downloads into a temp file beside `dest` and renames it into place only after size and sha256 match, so `dest`
 * never holds a partial or wrong file, even if the process dies mid-transfer or several processes race.
 */
async function download(
  name: string,
  entry: DatasetEntry,
  dest: string,
  opts: ResolveDatasetOptions,
  looked: readonly string[],
): Promise<void> {
  const hint = [...looked, manualPlacementHint(entry)];
  const fail = (reason: string) =>
    new ServelabError(
      "DATASET_DOWNLOAD",
      `cannot download dataset "${name}" from ${entry.url}: ${reason}`,
      hint,
    );
  const writeError = (what: string, e: unknown) =>
    new ServelabError(
      "FILE_WRITE",
      `cannot ${what} while downloading dataset "${name}": ${errorMessage(e)}`,
      hint,
    );

  const dir = path.dirname(dest);
  try {
    await makeDir(dir);
  } catch (e) {
    throw writeError(`create cache directory ${dir}`, e);
  }

  const fetchImpl = opts.fetchImpl ?? globalThis.fetch;
  const tmp = `${dest}.${process.pid}-${randomBytes(6).toString("hex")}.tmp`;
  const progress = progressSink(name, entry, opts.onProgress);
  const abort = new AbortController();
  let idleTimer: NodeJS.Timeout | undefined;
  const armIdleTimer = () => {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(
      () => abort.abort(new Error(`no data received for ${DOWNLOAD_IDLE_TIMEOUT_MS / 1000} s`)),
      DOWNLOAD_IDLE_TIMEOUT_MS,
    );
    idleTimer.unref();
  };
  let fh: FileHandle | undefined;
  let body: ReadableStream<Uint8Array> | null = null;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;

  try {
    armIdleTimer();
    let res: Response;
    try {
      res = await fetchImpl(entry.url, { signal: abort.signal, redirect: "follow" });
    } catch (e) {
      throw fail(`request failed: ${describeFetchError(e)}`);
    }
    body = res.body;
    if (res.status !== 200) throw fail(`HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""}`);
    if (body === null) throw fail("the response has no body");
    // With a content encoding, Content-Length counts compressed bytes, so it only says something about the file's
    // size when the body is sent as is.
    const encoding = res.headers.get("content-encoding");
    const announced = res.headers.get("content-length");
    if (
      announced !== null &&
      (encoding === null || encoding === "identity") &&
      Number(announced) !== entry.bytes
    ) {
      throw fail(`the server announces ${announced} bytes, expected ${entry.bytes}`);
    }

    try {
      fh = await open(tmp, "wx");
    } catch (e) {
      throw writeError(`create ${tmp}`, e);
    }
    const hash = createHash("sha256");
    let received = 0;
    const bodyReader = body.getReader();
    reader = bodyReader;
    for (;;) {
      let chunk: Awaited<ReturnType<typeof bodyReader.read>>;
      try {
        chunk = await bodyReader.read();
      } catch (e) {
        throw fail(`transfer interrupted after ${received} bytes: ${describeFetchError(e)}`);
      }
      if (chunk.done) break;
      armIdleTimer();
      received += chunk.value.byteLength;
      // Stop early instead of filling the disk when the server sends something much larger than the dataset.
      if (received > entry.bytes) throw fail(`received more than the expected ${entry.bytes} bytes`);
      hash.update(chunk.value);
      try {
        await writeAll(fh, chunk.value);
      } catch (e) {
        throw writeError(`write ${tmp}`, e);
      }
      progress.update(received);
    }
    if (received !== entry.bytes) throw fail(`received ${received} bytes, expected ${entry.bytes}`);
    const actual = hash.digest("hex");
    if (actual !== entry.sha256) throw fail(`received bytes have sha256 ${actual}, expected ${entry.sha256}`);

    try {
      // Flush before the rename so that a crash cannot leave a complete-looking name over incomplete data.
      await fh.sync();
      await fh.close();
      fh = undefined;
      await rename(tmp, dest);
    } catch (e) {
      throw writeError(`move ${tmp} to ${dest}`, e);
    }
  } catch (e) {
    // Release the connection of an abandoned response instead of leaving it to the garbage collector.
    await (reader ?? body)?.cancel().catch(() => {});
    await fh?.close().catch(() => {});
    await rm(tmp, { force: true }).catch(() => {});
    throw e;
  } finally {
    clearTimeout(idleTimer);
    progress.stop();
  }
}

/**
 * Turns a trace argument into a file path: an existing file is used as given (so a local file always wins over a
 * dataset of the same name), otherwise a registered dataset name is resolved with `resolveDataset`.
 */
export async function resolveTraceInput(input: string, opts: ResolveDatasetOptions = {}): Promise<string> {
  const registry = opts.registry ?? DATASETS;
  if (typeof input !== "string" || input === "") {
    throw new ServelabError(
      "FILE_NOT_FOUND",
      `no trace given; pass a trace file or one of the datasets: ${datasetNames(registry).join(", ")}`,
    );
  }
  let exists = false;
  try {
    const st = await stat(input);
    if (st.isFile()) return input;
    exists = true;
  } catch (e) {
    const code = errnoCode(e);
    if (code !== "ENOENT" && code !== "ENOTDIR") {
      throw new ServelabError("FILE_READ", `cannot read trace file ${input}: ${errorMessage(e)}`);
    }
  }
  if (Object.hasOwn(registry, input)) return (await resolveDataset(input, opts)).path;
  const known = datasetNames(registry);
  const names = known.length > 0 ? known.join(", ") : "(none)";
  if (exists) {
    throw new ServelabError(
      "FILE_READ",
      `trace ${input} is not a regular file, nor a registered dataset name (known datasets: ${names})`,
    );
  }
  throw new ServelabError(
    "FILE_NOT_FOUND",
    `trace file ${input} does not exist, and it is not a registered dataset name either (known datasets: ${names})`,
  );
}
