/**
 * A/B benchmark: `servelab ab` on the founding recipe, as a user runs it, twice — with an empty trace cache (the
 * trace is synthesized) and again with the trace cached. `--load L1,L2,…` and `--seeds N` are passed on (a capacity
 * sweep: five load points, one seed, both arms is the case to time). `--json` prints
 * `{arm_runs, load, seeds, wall_s, trace_cached, runs: [{trace_cached, wall_s}]}` (top-level figures are the
 * cached run's).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const json = process.argv.includes("--json");
const flag = (name: string) =>
  process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined;
const load = flag("--load");
const seeds = flag("--seeds");
const passed = [...(load ? ["--load", load] : []), ...(seeds ? ["--seeds", seeds] : [])];
const root = join(import.meta.dirname, "..");
const scratch = mkdtempSync(join(tmpdir(), "servelab-bench-ab-"));

function run(out: string): { wall_s: number; trace_cached: boolean; arm_runs: number } {
  const t0 = performance.now();
  const r = spawnSync(
    process.execPath,
    [
      join(root, "bin/servelab.js"),
      "ab",
      join(root, "recipes/dsv32-wideep-routing.yaml"),
      "--out",
      join(scratch, out),
      ...passed,
    ],
    { env: { ...process.env, XDG_CACHE_HOME: join(scratch, "cache") }, encoding: "utf8" },
  );
  const wall = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`servelab ab failed (${r.status}): ${r.stderr}`);
  const m = /Simulated (\d+) arm runs.* in .* \((?:trace (from cache|synthesized)|\d+ traces)\)/.exec(
    r.stdout,
  );
  if (!m) throw new Error(`unexpected output:\n${r.stdout}`);
  return {
    wall_s: Math.round(wall * 100) / 100,
    trace_cached: m[2] === "from cache",
    arm_runs: Number(m[1]),
  };
}

try {
  const cold = run("cold");
  const cached = run("cached");
  const result = {
    arm_runs: cached.arm_runs,
    load: load ?? "1",
    seeds: seeds === undefined ? null : Number(seeds),
    wall_s: cached.wall_s,
    trace_cached: cached.trace_cached,
    runs: [cold, cached].map(({ wall_s, trace_cached }) => ({ trace_cached, wall_s })),
  };
  process.stdout.write(`${json ? JSON.stringify(result) : JSON.stringify(result, null, 2)}\n`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
