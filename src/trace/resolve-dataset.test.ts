import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { isServelabError, type ServelabError } from "../errors.ts";
import { skipWithoutData } from "../testing/data-dir.ts";
import {
  DATASETS,
  type DatasetEntry,
  type DatasetRegistry,
  datasetEntryProblems,
  datasetNames,
  isDatasetName,
} from "./datasets.ts";
import {
  type DownloadProgress,
  defaultCacheDir,
  resolveDataset,
  resolveTraceInput,
} from "./resolve-dataset.ts";

const REPO_ROOT = path.resolve(import.meta.dirname, "../..");
const SHARED_DATA_DIR = process.env.SERVELAB_DATA_DIR ?? path.resolve(REPO_ROOT, "../shared/data");
const MOONCAKE = DATASETS["mooncake/conversation"];
const SHARED_TRACE = path.join(SHARED_DATA_DIR, ...MOONCAKE.relativePath.split("/"));

const FIXTURE = Buffer.from(
  [
    '{"timestamp": 0, "input_length": 600, "output_length": 10, "hash_ids": [0, 1]}',
    '{"timestamp": 5, "input_length": 100, "output_length": 20, "hash_ids": [0]}',
    "",
  ].join("\n"),
);
const FIXTURE_SHA256 = createHash("sha256").update(FIXTURE).digest("hex");
const FIXTURE_REL = "fixture/small_trace.jsonl";

/** Stands in for the network everywhere a test expects no download. */
const noFetch: typeof fetch = async (input) => {
  throw new Error(`unexpected fetch of ${String(input)}`);
};

const tempDirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "servelab-datasets-"));
  tempDirs.push(dir);
  return dir;
}

async function place(dir: string, rel: string, content: Buffer | string): Promise<string> {
  const file = path.join(dir, ...rel.split("/"));
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, content);
  return file;
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

function fixtureRegistry(url: string, overrides: Partial<DatasetEntry> = {}): DatasetRegistry {
  return {
    "test/fixture": {
      relativePath: FIXTURE_REL,
      sha256: FIXTURE_SHA256,
      bytes: FIXTURE.length,
      url,
      license: "Apache-2.0",
      description: "two-line trace served by the test's loopback server",
      ...overrides,
    },
  };
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<ServelabError> {
  try {
    await promise;
  } catch (e) {
    assert.ok(isServelabError(e), `expected a ServelabError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected a ${code} error, but the call succeeded`);
}

let server: http.Server;
let baseUrl: string;
const requests: string[] = [];

before(async () => {
  server = http.createServer((req, res) => {
    requests.push(req.url ?? "");
    if (req.url === "/fixture.jsonl") {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      res.end(FIXTURE);
    } else if (req.url === "/wrong-bytes.jsonl") {
      // Same length as the fixture, different content: only the hash can tell.
      res.writeHead(200);
      res.end(Buffer.alloc(FIXTURE.length, 0x78));
    } else if (req.url === "/too-long.jsonl") {
      res.writeHead(200);
      res.end(Buffer.concat([FIXTURE, FIXTURE]));
    } else {
      res.writeHead(404, "Not Found");
      res.end("not here");
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe("dataset registry", () => {
  test("names the Mooncake conversation trace", () => {
    assert.deepEqual(datasetNames(), ["mooncake/conversation"]);
    assert.ok(isDatasetName("mooncake/conversation"));
    assert.ok(!isDatasetName("mooncake/toolagent"));
    assert.ok(!isDatasetName("toString"));
    assert.equal(MOONCAKE.relativePath, "mooncake/conversation_trace.jsonl");
    assert.equal(MOONCAKE.bytes, 3_029_533);
  });

  test("every entry is well formed", () => {
    for (const [name, entry] of Object.entries(DATASETS))
      assert.deepEqual(datasetEntryProblems(name, entry), []);
  });

  test("rejects paths that escape their directory and malformed hashes", () => {
    const good = fixtureRegistry("https://example.invalid/x")["test/fixture"]!;
    assert.equal(datasetEntryProblems("x", { ...good, relativePath: "../etc/passwd" }).length, 1);
    assert.equal(datasetEntryProblems("x", { ...good, relativePath: "/abs/file" }).length, 1);
    assert.equal(datasetEntryProblems("x", { ...good, sha256: "ABC" }).length, 1);
    assert.equal(datasetEntryProblems("x", { ...good, url: "ftp://host/file" }).length, 1);
  });
});

describe("resolveDataset", () => {
  test("resolves mooncake/conversation from SERVELAB_DATA_DIR", {
    skip: skipWithoutData(SHARED_TRACE),
  }, async () => {
    const cacheDir = await tempDir();
    const got = await resolveDataset("mooncake/conversation", {
      env: { SERVELAB_DATA_DIR: SHARED_DATA_DIR },
      cacheDir,
      fetchImpl: noFetch,
    });
    assert.deepEqual(got, { path: SHARED_TRACE, source: "env" });
    assert.deepEqual(await listFiles(cacheDir), []);
  });

  test("--data-dir beats SERVELAB_DATA_DIR", async () => {
    const optDir = await tempDir();
    const envDir = await tempDir();
    const optFile = await place(optDir, FIXTURE_REL, FIXTURE);
    const envFile = await place(envDir, FIXTURE_REL, FIXTURE);
    const base = {
      registry: fixtureRegistry(`${baseUrl}/fixture.jsonl`),
      cacheDir: await tempDir(),
      fetchImpl: noFetch,
    };
    const env = { SERVELAB_DATA_DIR: envDir };
    assert.deepEqual(await resolveDataset("test/fixture", { ...base, env, dataDir: optDir }), {
      path: optFile,
      source: "data-dir",
    });
    assert.deepEqual(await resolveDataset("test/fixture", { ...base, env }), {
      path: envFile,
      source: "env",
    });
  });

  test("a mismatching data-dir file is DATASET_CHECKSUM even when the cache holds a good copy", async () => {
    const dataDir = await tempDir();
    const cacheDir = await tempDir();
    const bad = Buffer.from(FIXTURE);
    bad[0] = 0x20;
    const badFile = await place(dataDir, FIXTURE_REL, bad);
    await place(cacheDir, FIXTURE_REL, FIXTURE);
    const err = await rejectsWith(
      resolveDataset("test/fixture", {
        registry: fixtureRegistry(`${baseUrl}/fixture.jsonl`),
        dataDir,
        cacheDir,
        env: {},
        fetchImpl: noFetch,
      }),
      "DATASET_CHECKSUM",
    );
    assert.match(err.message, new RegExp(badFile.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
    assert.ok(err.message.includes(FIXTURE_SHA256), "names the expected hash");
    assert.ok(err.message.includes(createHash("sha256").update(bad).digest("hex")), "names the actual hash");
  });

  test("a data dir without the file falls through to the cache", async () => {
    const dataDir = await tempDir();
    const cacheDir = await tempDir();
    const cached = await place(cacheDir, FIXTURE_REL, FIXTURE);
    const got = await resolveDataset("test/fixture", {
      registry: fixtureRegistry(`${baseUrl}/fixture.jsonl`),
      env: { SERVELAB_DATA_DIR: dataDir },
      cacheDir,
      fetchImpl: noFetch,
    });
    assert.deepEqual(got, { path: cached, source: "cache" });
  });

  test("the default cache is under XDG_CACHE_HOME", async () => {
    const xdg = await tempDir();
    assert.equal(defaultCacheDir({ XDG_CACHE_HOME: xdg }), path.join(xdg, "servelab", "datasets"));
    assert.equal(
      defaultCacheDir({ XDG_CACHE_HOME: "relative/dir", HOME: "/home/someone" }),
      path.join("/home/someone", ".cache", "servelab", "datasets"),
    );
    const cached = await place(path.join(xdg, "servelab", "datasets"), FIXTURE_REL, FIXTURE);
    const got = await resolveDataset("test/fixture", {
      registry: fixtureRegistry(`${baseUrl}/fixture.jsonl`),
      env: { XDG_CACHE_HOME: xdg },
      fetchImpl: noFetch,
    });
    assert.deepEqual(got, { path: cached, source: "cache" });
  });

  test("downloads, verifies and caches; the second call uses the cache", async () => {
    const cacheDir = await tempDir();
    const registry = fixtureRegistry(`${baseUrl}/fixture.jsonl`);
    const before = requests.length;
    const progress: DownloadProgress[] = [];
    const first = await resolveDataset("test/fixture", {
      registry,
      cacheDir,
      env: {},
      onProgress: (p) => progress.push(p),
    });
    const expectedPath = path.join(cacheDir, ...FIXTURE_REL.split("/"));
    assert.deepEqual(first, { path: expectedPath, source: "download" });
    assert.deepEqual(await readFile(expectedPath), FIXTURE);
    assert.deepEqual(await listFiles(cacheDir), [expectedPath], "no temp file is left behind");
    assert.equal(requests.length - before, 1);
    assert.ok(progress.length > 0);
    assert.equal(progress.at(-1)?.receivedBytes, FIXTURE.length);
    assert.equal(progress.at(-1)?.totalBytes, FIXTURE.length);

    const second = await resolveDataset("test/fixture", { registry, cacheDir, env: {} });
    assert.deepEqual(second, { path: expectedPath, source: "cache" });
    assert.equal(requests.length - before, 1, "the cached copy is used without contacting the server");
  });

  test("a mismatching cache copy is replaced by a fresh download", async () => {
    const cacheDir = await tempDir();
    const cached = await place(cacheDir, FIXTURE_REL, "stale content\n");
    const got = await resolveDataset("test/fixture", {
      registry: fixtureRegistry(`${baseUrl}/fixture.jsonl`),
      cacheDir,
      env: {},
      onProgress: () => {},
    });
    assert.deepEqual(got, { path: cached, source: "download" });
    assert.deepEqual(await readFile(cached), FIXTURE);
  });

  for (const [label, route] of [
    ["HTTP 404", "/missing.jsonl"],
    ["wrong bytes", "/wrong-bytes.jsonl"],
    ["too many bytes", "/too-long.jsonl"],
  ] as const) {
    test(`a download with ${label} is DATASET_DOWNLOAD and leaves nothing in the cache`, async () => {
      const cacheDir = await tempDir();
      const dataDir = await tempDir();
      const url = `${baseUrl}${route}`;
      const err = await rejectsWith(
        resolveDataset("test/fixture", {
          registry: fixtureRegistry(url),
          dataDir,
          cacheDir,
          env: {},
          onProgress: () => {},
        }),
        "DATASET_DOWNLOAD",
      );
      assert.ok(err.message.includes(url), "names the URL");
      const details = err.details.join("\n");
      assert.ok(details.includes(dataDir), "says where it looked");
      assert.ok(
        details.includes("--data-dir") && details.includes("SERVELAB_DATA_DIR"),
        "says how to place it",
      );
      assert.ok(details.includes(FIXTURE_REL), "names the relative path");
      assert.deepEqual(await listFiles(cacheDir), []);
    });
  }

  test("a network failure is DATASET_DOWNLOAD", async () => {
    const cacheDir = await tempDir();
    const failingFetch: typeof fetch = async () => {
      throw new TypeError("fetch failed", { cause: new Error("connect ECONNREFUSED") });
    };
    const err = await rejectsWith(
      resolveDataset("test/fixture", {
        registry: fixtureRegistry(`${baseUrl}/fixture.jsonl`),
        cacheDir,
        env: {},
        fetchImpl: failingFetch,
      }),
      "DATASET_DOWNLOAD",
    );
    assert.match(err.message, /ECONNREFUSED/);
    assert.deepEqual(await listFiles(cacheDir), []);
  });

  test("an unknown name is DATASET_UNKNOWN and lists the known names", async () => {
    const err = await rejectsWith(
      resolveDataset("mooncake/nope", { env: {}, cacheDir: await tempDir(), fetchImpl: noFetch }),
      "DATASET_UNKNOWN",
    );
    assert.match(err.message, /mooncake\/nope/);
    assert.match(err.message, /mooncake\/conversation/);
  });
});

describe("resolveTraceInput", () => {
  test("an existing file path passes through unchanged", async () => {
    const dir = await tempDir();
    const file = await place(dir, "local.jsonl", FIXTURE);
    assert.equal(await resolveTraceInput(file, { env: {}, cacheDir: dir, fetchImpl: noFetch }), file);
  });

  test("a dataset name resolves to its verified file", async () => {
    const dataDir = await tempDir();
    const file = await place(dataDir, FIXTURE_REL, FIXTURE);
    const got = await resolveTraceInput("test/fixture", {
      registry: fixtureRegistry(`${baseUrl}/fixture.jsonl`),
      dataDir,
      cacheDir: await tempDir(),
      env: {},
      fetchImpl: noFetch,
    });
    assert.equal(got, file);
  });

  test("neither a file nor a dataset name is FILE_NOT_FOUND naming the datasets", async () => {
    const missing = path.join(await tempDir(), "nope.jsonl");
    const err = await rejectsWith(
      resolveTraceInput(missing, { env: {}, cacheDir: await tempDir(), fetchImpl: noFetch }),
      "FILE_NOT_FOUND",
    );
    assert.ok(err.message.includes(missing));
    assert.match(err.message, /does not exist/);
    assert.match(err.message, /mooncake\/conversation/);
  });
});
