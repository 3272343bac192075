/**
 * Upstream data that servelab refers to by name. The files themselves are never committed: they are looked up in a
 * data dir or the user cache, or downloaded, and always checked against the size and sha256 recorded here, so a
 * name means exactly one sequence of bytes wherever it is resolved.
 */
export interface DatasetEntry {
  /** Where the file lives below a data dir or the cache, `/`-separated, e.g. `mooncake/conversation_trace.jsonl`. */
  relativePath: string;
  /** Lowercase hex sha256 of the file's bytes. */
  sha256: string;
  /** Exact size in bytes. */
  bytes: number;
  /** Public upstream URL the file is downloaded from when no local copy exists. */
  url: string;
  /** SPDX identifier of the license the upstream data is published under. */
  license: string;
  description: string;
}

export type DatasetRegistry = Readonly<Record<string, DatasetEntry>>;

export const DATASETS = {
  "mooncake/conversation": {
    relativePath: "mooncake/conversation_trace.jsonl",
    sha256: "b8cbb061a85206d729d91cdc2981f43c9e0d99209dce588d3af5f7934408b9df",
    bytes: 3_029_533,
    url: "https://raw.githubusercontent.com/kvcache-ai/Mooncake/3cca71daccf2a7afb8fe3f0295358f70e3a69fdb/FAST25-release/traces/conversation_trace.jsonl",
    license: "Apache-2.0",
    description:
      "Mooncake FAST'25 conversation trace: 12,031 requests from 1 h of real Kimi chat traffic with real arrival " +
      "timestamps (3,537 s, 3.4 req/s), mean input 12,035 / output 343 tokens, prefix block hashes of 512 tokens " +
      "(36.6% of blocks seen in an earlier request).",
  },
} as const satisfies DatasetRegistry;

export type DatasetName = keyof typeof DATASETS;

/** True only for names registered in `DATASETS`; inherited object keys such as `toString` are not names. */
export function isDatasetName(s: string): s is DatasetName {
  return Object.hasOwn(DATASETS, s);
}

/** Registered names, sorted so that listings and error messages are stable. */
export function datasetNames(registry: DatasetRegistry = DATASETS): string[] {
  return Object.keys(registry).sort();
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * Problems with one registry entry, empty when it is usable. Entries can come from callers (tests, future
 * registries), and a bad relative path could otherwise make the resolver read or write outside its directories.
 */
export function datasetEntryProblems(name: string, entry: DatasetEntry): string[] {
  const problems: string[] = [];
  const where = `dataset "${name}"`;
  if (name.trim() === "") problems.push("dataset name is empty");
  const rel = entry.relativePath;
  if (typeof rel !== "string" || rel === "") {
    problems.push(`${where}: relativePath must be a non-empty string`);
  } else if (rel.startsWith("/") || rel.includes("\\") || /^[A-Za-z]:/.test(rel)) {
    problems.push(`${where}: relativePath "${rel}" must be relative and use "/" separators`);
  } else if (rel.split("/").some((seg) => seg === "" || seg === "." || seg === "..")) {
    problems.push(`${where}: relativePath "${rel}" must not contain empty, "." or ".." segments`);
  }
  if (typeof entry.sha256 !== "string" || !SHA256_HEX.test(entry.sha256)) {
    problems.push(`${where}: sha256 must be 64 lowercase hex digits, got ${JSON.stringify(entry.sha256)}`);
  }
  if (!Number.isSafeInteger(entry.bytes) || entry.bytes < 0) {
    problems.push(`${where}: bytes must be a non-negative integer, got ${JSON.stringify(entry.bytes)}`);
  }
  let url: URL | undefined;
  try {
    url = new URL(entry.url);
  } catch {
    problems.push(`${where}: url ${JSON.stringify(entry.url)} is not a valid URL`);
  }
  if (url && url.protocol !== "https:" && url.protocol !== "http:") {
    problems.push(`${where}: url ${entry.url} must use http or https`);
  }
  return problems;
}
