#!/usr/bin/env node
/**
 * Runs every `*.test.ts` under src/ and bench/ with node:test, two processes at a time.
 *
 * A test process costs ~0.4 s of CPU before its first test (Node, the TypeScript loader, the shared modules), which
 * over a hundred-odd files is a large part of the suite on a 2-core machine. So the test files of one directory
 * share a process: each directory gets one entry module importing its files, and node:test reports their tests as
 * usual. Files under src/cli/ and src/serve/stack/ still get a process each: they start servelab processes, handle
 * signals and change the working directory, and are the slowest, so they also balance the two lanes.
 *
 * Arguments are passed to `node --test` (a `--test-name-pattern`, say). `SERVELAB_TEST_ISOLATION=file` runs every
 * file in its own process, as plain `node --test` would.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const OWN_PROCESS = ["src/cli/", "src/serve/stack/"];

function testFiles(dir) {
  return readdirSync(join(root, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(".test.ts"))
    .map((e) =>
      relative(root, join(e.parentPath ?? e.path, e.name))
        .split(sep)
        .join("/"),
    )
    .sort();
}

const files = [...testFiles("src"), ...testFiles("bench")];
const alone = [];
const groups = new Map();
for (const f of files) {
  if (process.env.SERVELAB_TEST_ISOLATION === "file" || OWN_PROCESS.some((p) => f.startsWith(p)))
    alone.push(f);
  else {
    const d = dirname(f);
    groups.set(d, [...(groups.get(d) ?? []), f]);
  }
}

const shardDir = mkdtempSync(join(tmpdir(), "servelab-tests-"));
const shards = [...groups].map(([dir, members]) => {
  const file = join(shardDir, `${dir.replaceAll("/", "_")}.test.mjs`);
  writeFileSync(
    file,
    members.map((m) => `import ${JSON.stringify(pathToFileURL(join(root, m)).href)};\n`).join(""),
  );
  return file;
});

// The files that start processes (the slowest) first, then the directories, largest first by the bytes of their
// test files (a rough measure of their work), so that the two lanes end together instead of one finishing a long
// process alone.
const bytes = (files) => files.reduce((n, f) => n + statSync(join(root, f)).size, 0);
const bySize = (list) => list.sort((a, b) => b.size - a.size).map((e) => e.path);
const entries = [
  ...bySize(alone.map((f) => ({ path: join(root, f), size: bytes([f]) }))),
  ...bySize(shards.map((s, i) => ({ path: s, size: bytes([...groups.values()][i]) }))),
];

const child = spawn(
  process.execPath,
  ["--import", "tsx", "--test", "--test-concurrency=2", ...process.argv.slice(2), ...entries],
  { cwd: root, stdio: "inherit" },
);
const forward = (signal) => child.kill(signal);
for (const s of ["SIGINT", "SIGTERM"]) process.on(s, forward);
child.on("exit", (code, signal) => {
  rmSync(shardDir, { recursive: true, force: true });
  process.exitCode = code ?? (signal ? 1 : 0);
});
