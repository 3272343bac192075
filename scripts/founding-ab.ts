/**
 * Runs the founding A/B as the README and docs/calibration.md quote it — both arms under the optimistic, nominal and
 * pessimistic step-time bounds, the sensitivity reruns and the attribution arms — and writes the figures to
 * docs/founding-ab.md, which docs/calibration.md includes. Then regenerates docs/calibration.md.
 *
 *   node --import tsx scripts/founding-ab.ts [--out DIR]
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { PERF_BOUNDS } from "../src/engine/perf/bounds.ts";
import { armFigures } from "../src/report/bounds-report.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const FOUNDING_AB_DOC = join(ROOT, "docs/founding-ab.md");
const RECIPE = "recipes/dsv32-wideep-routing.yaml";
const ARMS = ["agg-round-robin", "disagg-kv"] as const;
const ARGS = ["--perf-bounds", PERF_BOUNDS.join(","), "--sensitivity", "--attribution"];

const outArg = process.argv.indexOf("--out");
const out =
  outArg >= 0 ? resolve(process.argv[outArg + 1]!) : await mkdtemp(join(tmpdir(), "servelab-founding-"));
const command = ["servelab", "ab", RECIPE, ...ARGS].join(" ");
const run = spawnSync(
  process.execPath,
  [join(ROOT, "bin/servelab.js"), "ab", RECIPE, ...ARGS, "--out", out],
  {
    cwd: ROOT,
    stdio: ["ignore", "inherit", "inherit"],
  },
);
if (run.status !== 0) throw new Error(`${command} failed with exit code ${run.status}`);

const dirOf = (bound: string, arm: string) =>
  bound === "nominal" ? join(out, "arms", arm) : join(out, "bounds", bound, arm);
const fmt = (v: number, digits: number) =>
  v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });

const rows: string[] = [];
for (const bound of PERF_BOUNDS)
  for (const arm of ARMS) {
    const s = JSON.parse(await readFile(join(dirOf(bound, arm), "profile_export_aiperf.json"), "utf8"));
    const f = armFigures(s);
    const stat = (tag: string, key: string) => s[tag][key] as number;
    rows.push(
      `| ${bound} | ${arm} | ${fmt(f.throughput, 2)} | ${fmt(f.ttftAvg, 0)} / ${fmt(stat("time_to_first_token", "p50"), 0)} / ${fmt(f.ttftP99, 0)} | ${fmt(f.itlAvg, 1)} / ${fmt(stat("inter_token_latency", "p99"), 1)} | ${fmt(f.latencyAvg, 0)} | ${fmt(f.goodput, 2)} | ${fmt(100 * f.sloAttainment, 1)} % |`,
    );
  }

/** A `## title` section of the report, up to the next one. */
const report = await readFile(join(out, "report.md"), "utf8");
const section = (title: string) => {
  const at = report.indexOf(`## ${title}`);
  if (at < 0) throw new Error(`the report has no section "${title}"`);
  const end = report.indexOf("\n## ", at + 3);
  return report
    .slice(at, end < 0 ? undefined : end)
    .trim()
    .replace(/^## /, "### ");
};

const doc = [
  "## The founding A/B under the step-time bounds",
  "",
  `Produced by \`scripts/founding-ab.ts\`, which runs \`${command}\` (trace seed 1, the measured GB200 profile) and`,
  "copies the figures here. Offered load: the synthesized trace's 10,000 requests over its ~85 minutes (≈ 1.96 req/s).",
  "",
  "| bounds | arm | throughput (req/s) | TTFT avg / p50 / p99 (ms) | ITL avg / p99 (ms) | latency avg (ms) | goodput (req/s) | SLO attainment |",
  "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ...rows,
  "",
  section("How sure: the verdict across the step-time bounds"),
  "",
  section("Sensitivity: which parameters move the verdict"),
  "",
  section("Attribution"),
  "",
].join("\n");
await writeFile(FOUNDING_AB_DOC, doc);
// The repository's formatter lays the tables out, so docs/calibration.md, which includes this file, passes `biome check`.
const format = spawnSync(join(ROOT, "node_modules/.bin/biome"), ["format", "--write", FOUNDING_AB_DOC], {
  cwd: ROOT,
});
if (format.status !== 0) throw new Error(`biome format ${FOUNDING_AB_DOC} failed`);
process.stdout.write(`wrote ${FOUNDING_AB_DOC} (from ${out})\n`);
const cal = spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "scripts/calibration.ts")], {
  cwd: ROOT,
  stdio: "inherit",
});
if (cal.status !== 0) throw new Error("scripts/calibration.ts failed");
