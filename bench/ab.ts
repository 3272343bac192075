/**
 * A/B benchmark: `servelab ab` on the founding recipe, as a user runs it, twice — with an empty trace cache (the
 * trace is synthesized) and again with the trace cached. `--json` prints
 * `{arms, wall_s, trace_cached, runs: [{trace_cached, wall_s}]}` (top-level figures are the cached run's).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const json = process.argv.includes("--json");
const root = join(import.meta.dirname, "..");
const scratch = mkdtempSync(join(tmpdir(), "servelab-bench-ab-"));

function run(out: string): { wall_s: number; trace_cached: boolean; arms: number } {
  const t0 = performance.now();
  const r = spawnSync(
    process.execPath,
    [
      join(root, "bin/servelab.js"),
      "ab",
      join(root, "recipes/dsv32-wideep-routing.yaml"),
      "--out",
      join(scratch, out),
    ],
    { env: { ...process.env, XDG_CACHE_HOME: join(scratch, "cache") }, encoding: "utf8" },
  );
  const wall = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`servelab ab failed (${r.status}): ${r.stderr}`);
  const m = /Simulated (\d+) arms in .* \(trace (from cache|synthesized)\)/.exec(r.stdout);
  if (!m) throw new Error(`unexpected output:\n${r.stdout}`);
  return { wall_s: Math.round(wall * 100) / 100, trace_cached: m[2] === "from cache", arms: Number(m[1]) };
}

try {
  const cold = run("cold");
  const cached = run("cached");
  const result = {
    arms: cached.arms,
    wall_s: cached.wall_s,
    trace_cached: cached.trace_cached,
    runs: [cold, cached].map(({ wall_s, trace_cached }) => ({ trace_cached, wall_s })),
  };
  process.stdout.write(`${json ? JSON.stringify(result) : JSON.stringify(result, null, 2)}\n`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
