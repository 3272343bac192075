/**
 * The simulator against the live stack: one small recipe (round-robin and KV-routed aggregated arms, and a
 * disaggregated KV arm, on the mocker's polynomial step-time model) and one trace with shared prefixes, run by
 * `servelab ab` on the simulator and by `servelab ab --live` on the loopback stack (real worker and frontend
 * processes, the same engine model and router code, no speed-up). Per arm: TTFT, ITL and request latency
 * p50/p90/p99 on both sides and their difference, the prefix hit rate of the prefilling ranks, and requests per
 * target. Targets: p50 within 5 %, p99 within 10 %, hit rate within 1 point. `--json` prints one JSON object.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createRng } from "../src/random.ts";
import { TINY_RECIPE } from "../src/testing/recipes.ts";

const json = process.argv.includes("--json");
const log = (m: string) => {
  if (!json) process.stderr.write(`${m}\n`);
};
const REPO = join(import.meta.dirname, "..");
const REQUESTS = 150;
const GAP_MS = 80;
const ARMS = ["rr", "kv", "pd"] as const;

const recipe = TINY_RECIPE.replace("  source: mooncake/conversation", "  source: trace.jsonl")
  .replace("hardware:", "benchmark: { auto_offset: true }\nhardware:")
  .replace(
    "arms:\n  only:\n    workers:\n      replicas: 2\n",
    [
      "arms:",
      "  rr:",
      "    router: { mode: round-robin }",
      "    workers: { replicas: 2, publish_events_and_metrics: true }",
      "  kv:",
      "    router: { mode: kv }",
      "    workers: { replicas: 2, publish_events_and_metrics: true }",
      "  pd:",
      "    router: { mode: kv }",
      "    prefill: { replicas: 1, publish_events_and_metrics: true }",
      "    decode: { replicas: 1 }",
      "",
    ].join("\n"),
  );

const work = await mkdtemp(join(tmpdir(), "servelab-fidelity-"));
await writeFile(join(work, "r.yaml"), recipe);
// Eight conversations: each request shares its conversation's first blocks and adds a block of its own.
const rng = createRng(11, "fidelity");
await writeFile(
  join(work, "trace.jsonl"),
  `${Array.from({ length: REQUESTS }, (_, i) => {
    const conv = rng.int(8);
    const shared = Array.from({ length: 3 }, (_, b) => 100 * (conv + 1) + b);
    return JSON.stringify({
      timestamp: i * GAP_MS,
      input_length: 512 * 4,
      output_length: 32,
      hash_ids: [...shared, 10_000 + i],
    });
  }).join("\n")}\n`,
);

const run = promisify(execFile);
const ab = async (extra: string[], out: string) => {
  await run(
    process.execPath,
    [
      join(REPO, "bin/servelab.js"),
      "ab",
      join(work, "r.yaml"),
      "--perf-model",
      "polynomial",
      "--out",
      out,
      ...extra,
    ],
    { cwd: REPO, maxBuffer: 64 * 1024 * 1024 },
  );
};
log("simulating the three arms");
await ab([], join(work, "sim"));
log("running the three arms live on the loopback stack");
await ab(["--live"], join(work, "live"));

type Summary = Record<string, { p50: number; p90: number; p99: number }>;
const read = async (dir: string) => ({
  summary: JSON.parse(await readFile(join(dir, "profile_export_aiperf.json"), "utf8")) as Summary,
});
const pct = (live: number, sim: number) => Number((((live - sim) / sim) * 100).toFixed(1));
const round = (x: number) => Number(x.toFixed(2));

const arms: Record<string, unknown> = {};
let within = true;
for (const arm of ARMS) {
  const sim = await read(join(work, "sim", "arms", arm));
  const live = await read(join(work, "live", "arms", arm));
  const simExtra = JSON.parse(await readFile(join(work, "sim", "arms", arm, "servelab_sim.json"), "utf8"));
  const liveExtra = JSON.parse(await readFile(join(work, "live", "arms", arm, "servelab_live.json"), "utf8"));
  const metrics: Record<string, unknown> = {};
  for (const m of ["time_to_first_token", "inter_token_latency", "request_latency"]) {
    const s = sim.summary[m]!;
    const l = live.summary[m]!;
    const d = { p50: pct(l.p50, s.p50), p90: pct(l.p90, s.p90), p99: pct(l.p99, s.p99) };
    if (Math.abs(d.p50) > 5 || Math.abs(d.p99) > 10) within = false;
    metrics[m] = {
      sim_ms: { p50: round(s.p50), p90: round(s.p90), p99: round(s.p99) },
      live_ms: { p50: round(l.p50), p90: round(l.p90), p99: round(l.p99) },
      diff_pct: d,
    };
  }
  // TTFT net of what the live path measurably spends and the simulator does not model: the frontend's tokenizing,
  // and each worker's tokenizing and hashing on the way to its queue (a disaggregated request crosses two workers).
  const o = liveExtra.overheads_ms as {
    frontend_tokenize_mean: number | null;
    worker_admit_mean: Record<string, number>;
  };
  const admit = Object.values(o.worker_admit_mean);
  const overhead =
    (o.frontend_tokenize_mean ?? 0) +
    (admit.reduce((a, b) => a + b, 0) / Math.max(admit.length, 1)) * (arm === "pd" ? 2 : 1);
  const ttft = metrics.time_to_first_token as { sim_ms: { p50: number }; live_ms: { p50: number } };
  metrics.time_to_first_token_net = {
    overhead_ms: round(overhead),
    live_p50_net_ms: round(ttft.live_ms.p50 - overhead),
    diff_pct_p50: pct(ttft.live_ms.p50 - overhead, ttft.sim_ms.p50),
  };
  const hitPoints = Number(
    ((liveExtra.prefix_cache_hit_rate - simExtra.prefix_cache_hit_rate) * 100).toFixed(2),
  );
  if (Math.abs(hitPoints) > 1) within = false;
  const perTarget = (ts: { target: string; requests: number }[]) =>
    Object.fromEntries(ts.map((t) => [t.target, t.requests]));
  arms[arm] = {
    ...metrics,
    prefix_hit_rate: {
      sim: round(simExtra.prefix_cache_hit_rate * 100),
      live: round(liveExtra.prefix_cache_hit_rate * 100),
      diff_points: hitPoints,
    },
    requests_per_target: { sim: perTarget(simExtra.targets), live: perTarget(liveExtra.targets) },
  };
}
await rm(work, { recursive: true, force: true });
process.stdout.write(
  `${JSON.stringify(
    {
      requests: REQUESTS,
      gap_ms: GAP_MS,
      step_time_model: "polynomial",
      speedup_ratio: 1,
      arms,
      targets: { p50_pct: 5, p99_pct: 10, hit_rate_points: 1 },
      within_targets: within,
    },
    null,
    json ? 0 : 2,
  )}\n`,
);
