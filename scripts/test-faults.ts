/**
 * Fault test: real, bounded runs of `servelab bench` (against a loopback `servelab worker`), `servelab sim` and
 * `servelab ab`, each stopped with SIGINT, SIGTERM or SIGKILL at a seeded random point, then checked:
 * - bench: every request the server finished before the signal is on disk (lost = 0), every line is whole, a
 *   graceful stop writes the summary and clears the incomplete marker, a killed run keeps the marker, no temporary
 *   inputs.json is left by a graceful stop, and the next run into the directory takes over the stale lock;
 * - sim and ab: the output directory holds the earlier complete run or the new complete one, never a partial
 *   `profile_export.jsonl` beside old summary files;
 * - a second run into a directory that is being written refuses with error[OUTPUT_LOCKED].
 * Prints a JSON summary; exits 1 when an invariant fails.
 *
 *   node --import tsx scripts/test-faults.ts [--seed N]
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRng } from "../src/random.ts";
import { TINY_RECIPE } from "../src/testing/recipes.ts";
import { lines, sleep, start } from "./fault-procs.ts";
import { runLiveFaults } from "./faults-live.ts";

const seedArg = process.argv.indexOf("--seed");
const rng = createRng(seedArg >= 0 ? Number(process.argv[seedArg + 1]) : 1, "faults");
const SIGNALS = ["SIGINT", "SIGTERM", "SIGKILL"] as const;
/** A record must reach the file within this long of its request finishing at the server (the README's promise). */
const SLACK_MS = 50;

const failures: string[] = [];
const check = (ok: boolean, what: string) => {
  if (!ok) failures.push(what);
};

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );
const work = await mkdtemp(join(tmpdir(), "servelab-faults-"));
const summary: Record<string, unknown>[] = [];

// A loopback worker: 300 requests a few tens of ms apart, each streaming a few dozen tokens.
const trace = join(work, "trace.jsonl");
await writeFile(
  trace,
  Array.from({ length: 300 }, (_, i) =>
    JSON.stringify({ timestamp: i * 25, input_length: 300, output_length: 40, hash_ids: [1000 + i] }),
  ).join("\n"),
);
const worker = start(["worker", "--port", "0", "--speedup-ratio", "20", "--model", "mock"]);
let url = "";
for (let i = 0; i < 200 && !url; i++) {
  url = /serving \S+ at (http:\/\/[^/\s]+)\/v1/.exec(worker.out())?.[1] ?? "";
  if (!url) await sleep(50);
}
if (!url) throw new Error(`servelab worker did not start: ${worker.out()}`);

/** The server's finished requests since `sinceMs`, by the X-Request-ID the client sent, with their end in Unix ms. */
async function serverFinished(sinceMs: number): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/servelab/requests`)).text();
  const done = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const e = JSON.parse(line) as Record<string, unknown>;
    if (e.outcome !== "completed" || typeof e.client_request_id !== "string") continue;
    if ((e.arrival_unix_ms as number) < sinceMs) continue;
    const endMs = (e.arrival_unix_ms as number) + (Number(e.end_ns) - Number(e.arrival_ns)) / 1e6;
    done.set(e.client_request_id, endMs);
  }
  return done;
}

/** A streaming fixed-schedule replay of `input` against the loopback worker, into `dir`. */
const benchArgs = (input: string, dir: string) => [
  "bench",
  "--url",
  url,
  "--model",
  "mock",
  "--streaming",
  "--input-file",
  input,
  "--custom-dataset-type",
  "mooncake_trace",
  "--fixed-schedule",
  "--artifact-dir",
  dir,
];

for (const signal of SIGNALS) {
  const dir = join(work, `bench-${signal}`);
  const startedAt = Date.now();
  const run = start(benchArgs(trace, dir));
  // Somewhere in the sending phase (the schedule lasts 7.5 s), once the first records are out.
  for (let i = 0; i < 600 && (await lines(join(dir, "profile_export.jsonl"))).length === 0; i++)
    await sleep(20);
  await sleep(rng.int(3000));
  const killedAt = Date.now();
  run.child.kill(signal);
  const code = await run.exit;
  const jsonl = await lines(join(dir, "profile_export.jsonl"));
  const whole = jsonl.every((l) => {
    try {
      JSON.parse(l);
      return true;
    } catch {
      return false;
    }
  });
  const onDisk = new Set(jsonl.map((l) => JSON.parse(l).metadata.x_request_id as string));
  const graceful = signal !== "SIGKILL";
  // A graceful stop lets requests in flight finish, and keeps them too; a killed run keeps what finished before.
  const finished = [...(await serverFinished(startedAt))].filter(
    ([, end]) => graceful || end < killedAt - SLACK_MS,
  );
  const lost = finished.filter(([id]) => !onDisk.has(id)).length;
  const marked = await exists(join(dir, "servelab_incomplete"));
  const temps = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith(".tmp"));
  check(lost === 0, `bench ${signal}: ${lost} finished requests missing from profile_export.jsonl`);
  check(whole, `bench ${signal}: a truncated line in profile_export.jsonl`);
  check(jsonl.length > 0, `bench ${signal}: no records at all (signal too early?)`);
  if (graceful) {
    check(code === 0, `bench ${signal}: exit ${code}: ${run.out().slice(-400)}`);
    check(!marked, `bench ${signal}: stopped gracefully but still marked incomplete`);
    check(await exists(join(dir, "profile_export_aiperf.json")), `bench ${signal}: no summary written`);
    check(temps.length === 0, `bench ${signal}: temporary files left: ${temps.join(", ")}`);
  } else {
    check(marked, "bench SIGKILL: the killed run is not marked incomplete");
  }
  summary.push({
    command: "bench",
    signal,
    after_ms: killedAt - startedAt,
    exit: code,
    finished_at_server: finished.length,
    on_disk: jsonl.length,
    lost,
    marked_incomplete: marked,
  });
}

// The killed bench left a stale lock and temporary files behind: the next run takes the directory over.
{
  const dir = join(work, "bench-SIGKILL");
  const short = join(work, "short.jsonl");
  await writeFile(short, (await readFile(trace, "utf8")).split("\n").slice(0, 5).join("\n"));
  const again = start(benchArgs(short, dir));
  const code = await again.exit;
  check(code === 0, `bench after SIGKILL: exit ${code}: ${again.out().slice(-400)}`);
  check(
    (await lines(join(dir, "profile_export.jsonl"))).length === 5,
    "bench after SIGKILL: wrong record count",
  );
  check(!(await exists(join(dir, "servelab_incomplete"))), "bench after SIGKILL: still marked incomplete");
  const temps = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith(".tmp"));
  check(temps.length === 0, `bench after SIGKILL: stale temporary files kept: ${temps.join(", ")}`);
  summary.push({
    command: "bench (after SIGKILL, same directory)",
    exit: code,
    stale_lock_taken_over: code === 0,
  });
}
worker.child.kill("SIGTERM");
await worker.exit;

// sim and ab on a small recipe with a trace long enough to be stopped mid-run.
const recipeDir = join(work, "recipe");
/** A request of `isl` tokens whose first block is shared by one in 11 requests: one hash id per 512 tokens. */
const row = (i: number, isl: number) => {
  const blocks = Math.ceil(isl / 512);
  const hashIds = [i % 11, ...Array.from({ length: blocks - 1 }, (_, b) => 100 + i * 8 + b)];
  return JSON.stringify({ timestamp: i * 40, input_length: isl, output_length: 60, hash_ids: hashIds });
};
const simTrace = Array.from({ length: 20_000 }, (_, i) => row(i, 800 + (i % 5) * 300)).join("\n");
await rm(recipeDir, { recursive: true, force: true });
await import("node:fs/promises").then((fs) => fs.mkdir(recipeDir, { recursive: true }));
await writeFile(join(recipeDir, "trace.jsonl"), simTrace);
const simRecipe = join(recipeDir, "tiny.yaml");
await writeFile(simRecipe, TINY_RECIPE.replace("  source: mooncake/conversation", "  source: trace.jsonl"));
const abRecipe = join(recipeDir, "ab.yaml");
await writeFile(
  abRecipe,
  TINY_RECIPE.replace("  source: mooncake/conversation", "  source: trace.jsonl").replace(
    "arms:\n  only:\n    workers:\n      replicas: 2\n",
    "arms:\n  rr:\n    workers:\n      replicas: 2\n  kv:\n    router: { mode: kv }\n    workers:\n      replicas: 2\n      publish_events_and_metrics: true\n",
  ),
);

/** A run of `args` that completes, then one into the same directory stopped by `signal`. */
async function interrupted(
  command: string,
  args: string[],
  out: string,
  files: string[],
  signal: (typeof SIGNALS)[number],
): Promise<void> {
  const first = start(args);
  const firstCode = await first.exit;
  check(firstCode === 0, `${command}: the complete run failed: ${first.out().slice(-400)}`);
  const before = await Promise.all(files.map((f) => readFile(join(out, f), "utf8").catch(() => null)));
  const second = start(args);
  await sleep(700 + rng.int(1500));
  second.child.kill(signal);
  const code = await second.exit;
  const after = await Promise.all(files.map((f) => readFile(join(out, f), "utf8").catch(() => null)));
  // Three honest outcomes: the second run completed before the signal (all files new, no marker), the first run's
  // files are untouched, or (ab stopped by Ctrl-C / SIGTERM) what completed was kept and marked as stopped.
  const same = after.every((a, i) => a === before[i]);
  const marked = await exists(join(out, "servelab_incomplete"));
  const complete = after.every((a) => a !== null) && !marked;
  const stopped = marked && code === 2 && /error\[INTERRUPTED\]/.test(second.out());
  const intact = (complete && (same || code === 0)) || stopped;
  check(
    intact,
    `${command} ${signal}: ${out} is neither the earlier run, a complete new one, nor marked as stopped (exit ${code})`,
  );
  summary.push({
    command,
    signal,
    exit: code,
    outcome: stopped ? "stopped, marked" : same ? "earlier run intact" : "completed",
    partial_outputs_left: intact ? 0 : 1,
  });
}

for (const signal of SIGNALS) {
  const out = join(work, `sim-${signal}`);
  await interrupted(
    "sim",
    ["sim", simRecipe, "--arm", "only", "--perf-model", "polynomial", "--out", out],
    out,
    ["profile_export.jsonl", "profile_export_aiperf.json", "servelab_sim.json"],
    signal,
  );
}
for (const signal of SIGNALS) {
  const out = join(work, `ab-${signal}`);
  await interrupted(
    "ab",
    ["ab", abRecipe, "--perf-model", "polynomial", "--force", "--out", out],
    out,
    ["arms/rr/profile_export.jsonl", "arms/kv/profile_export.jsonl", "report.md"],
    signal,
  );
}

// A directory another live run holds is refused; once that run is gone its lock is stale and taken over.
{
  const out = join(work, "sim-locked");
  const args = ["sim", simRecipe, "--arm", "only", "--perf-model", "polynomial", "--out", out];
  const holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" });
  await writeFile(
    join(work, ".sim-locked.lock"),
    JSON.stringify({ pid: holder.pid, started: new Date().toISOString(), command: "servelab sim (holder)" }),
  );
  const refused = start(args);
  const refusedCode = await refused.exit;
  check(
    refusedCode === 2 && /error\[OUTPUT_LOCKED\]/.test(refused.out()),
    `sim into a directory a live run holds: exit ${refusedCode}: ${refused.out().slice(-300)}`,
  );
  check(!(await exists(out)), "the refused sim wrote output");
  holder.kill("SIGKILL");
  await once(holder, "exit");
  const after = start(args);
  const afterCode = await after.exit;
  check(afterCode === 0, `sim after the holder died: exit ${afterCode}: ${after.out().slice(-300)}`);
  summary.push({
    command: "sim into a locked directory, then after its owner died",
    refused_exit: refusedCode,
    takeover_exit: afterCode,
  });
}

summary.push(...(await runLiveFaults(work, rng, check)));

await rm(work, { recursive: true, force: true });
const runs = summary.length;
process.stdout.write(`${JSON.stringify({ runs, signals: SIGNALS, results: summary, failures }, null, 2)}\n`);
if (failures.length > 0) process.exitCode = 1;
