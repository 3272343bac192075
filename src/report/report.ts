import { createRequire } from "node:module";
import { join } from "node:path";
import Table from "cli-table3";
import { TABLE_STYLE } from "../cli/table-style.ts";
import { PERF_BOUNDS } from "../engine/perf/bounds.ts";
import { writeFileAtomic } from "../io/atomic-write.ts";
import { errorLines, errorSummaryOf } from "../metrics/error-rate.ts";
import { type GoodputSlo, parseGoodput } from "../metrics/goodput.ts";
import { recordedGoodput } from "../metrics/input-config.ts";
import { resolvedRecipeYaml } from "../recipe/load.ts";
import type { Recipe } from "../recipe/schema.ts";
import type { TraceAnalysis } from "../trace/analyze.ts";
import type { ArmArtifacts } from "./artifacts.ts";
import {
  BOUNDS_HEAD,
  boundsRows,
  SENSITIVITY_HEAD,
  type SettingRun,
  sensitivityRows,
  settingVerdicts,
} from "./bounds-report.ts";
import { type CapacityRun, capacityCurves } from "./capacity.ts";
import { capacityChartSpecs, capacityTables } from "./capacity-report.ts";
import { type ArmComparison, type ArmInput, compareArms, formatNumber, METRIC_LABELS } from "./compare.ts";
import { headlineLines } from "./headline.ts";
import { chartData, echartsBrowserScript, renderReportCharts } from "./report-charts.ts";
import type { Estimate } from "./stats.ts";

export interface ReportContext {
  title: string;
  recipe?: Recipe | undefined;
  traceFile?: string | undefined;
  command: string;
  seed: number;
  /** Statistics of the replayed trace, shown with the recipe. */
  trace?: TraceAnalysis | undefined;
  /** Goodput SLOs; by default the recipe's. */
  slos?: readonly GoodputSlo[] | undefined;
  /**
   * Judge each arm by the SLOs its own run recorded (`input_config`), where it recorded any, instead of one set for
   * all: for artifacts measured elsewhere, each against its own service levels. The report says so.
   */
  ownSlos?: boolean | undefined;
  /** [factor, from arm, to arm] comparisons that isolate each factor (see withAttributionArms). */
  attribution?: [string, string, string][] | undefined;
  /**
   * The A/B rerun with the step-time profile's parameters at their bounds, and each moved alone (sensitivity):
   * summaries of arm `baseline` and arm `candidate` under each setting.
   */
  bounds?: { baseline: string; candidate: string; runs: SettingRun[] } | undefined;
  /** Every arm at every load (and trace seed) of a sweep, reduced to its capacity figures. */
  capacity?:
    | { runs: readonly CapacityRun[]; loads: readonly number[]; seeds: readonly number[] | null }
    | undefined;
}

export interface ReportFiles {
  md: string;
  html: string;
  /** The comparison table for the terminal. */
  console: string;
}

const version = (createRequire(import.meta.url)("../../package.json") as { version: string }).version;

function armInput(a: ArmArtifacts, ownSlos: boolean): ArmInput {
  const recorded = ownSlos ? recordedGoodput(a.summary.input_config) : undefined;
  return {
    name: a.name,
    records: a.records,
    queue: a.sim?.timeline?.map(({ t_s, waiting }) => ({ t_s, waiting })),
    ...(recorded ? { slos: parseGoodput(recorded) } : {}),
  };
}

const pct = (e: Estimate | null | undefined) =>
  e ? `${formatNumber(100 * e.estimate)} % [${formatNumber(100 * e.lo)}, ${formatNumber(100 * e.hi)}]` : "–";
const ratio = (e: Estimate | null | undefined) =>
  e ? `${formatNumber(e.estimate)}× [${formatNumber(e.lo)}, ${formatNumber(e.hi)}]` : "–";
const escapeHtml = (s: string) =>
  s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");

/** A markdown table. */
function mdTable(head: string[], rows: string[][]): string {
  return [
    `| ${head.join(" | ")} |`,
    `|${head.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

function htmlTable(head: string[], rows: string[][]): string {
  const th = head.map((h) => `<th>${escapeHtml(h)}</th>`).join("");
  const trs = rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join("")}</tr>`).join("\n");
  return `<table><thead><tr>${th}</tr></thead><tbody>\n${trs}\n</tbody></table>`;
}

/** Rows of a comparison: per metric and statistic, both arms, the ratio with its CI, and the rank test. */
function metricRows(c: ArmComparison): string[][] {
  const rows: string[][] = [];
  for (const m of c.metrics) {
    for (const stat of ["avg", "p50", "p90", "p99"] as const) {
      const s = m.statistics[stat];
      rows.push([
        `${METRIC_LABELS[m.metric]} (${m.unit})`,
        stat,
        formatNumber(s.baseline),
        formatNumber(s.candidate),
        `${formatNumber(s.difference.estimate)} [${formatNumber(s.difference.lo)}, ${formatNumber(s.difference.hi)}]`,
        ratio(s.ratio),
        stat === "avg" ? (m.shift.p < 1e-4 ? "< 0.0001" : m.shift.p.toFixed(4)) : "",
      ]);
    }
  }
  return rows;
}

function traceStatRows(t: TraceAnalysis): string[][] {
  const dist = (d: { mean: number; p50: number; p99: number; max: number }) =>
    `mean ${formatNumber(d.mean)}, p50 ${formatNumber(d.p50)}, p99 ${formatNumber(d.p99)}, max ${formatNumber(d.max)}`;
  return [
    ["requests", String(t.requests)],
    ["span", `${formatNumber(t.duration_s / 60)} min (${formatNumber(t.arrival_rate_per_s)} req/s)`],
    ["input tokens (ISL)", dist(t.isl)],
    ["output tokens (OSL)", dist(t.osl)],
    [`blocks (${t.block_size} tokens)`, `${t.total_blocks} total, ${t.unique_blocks} unique`],
    ["block-level hit rate (infinite cache)", `${formatNumber(100 * t.block_hit_rate)} %`],
    ["shared-prefix ratio", `${formatNumber(100 * t.shared_prefix_ratio)} %`],
  ];
}

const METRIC_HEAD = [
  "metric",
  "statistic",
  "baseline",
  "candidate",
  "difference [95 % CI]",
  "ratio [95 % CI]",
  "rank test p",
];

function armRows(c: ArmComparison, arms: readonly ArmArtifacts[]): string[][] {
  return [c.baseline, c.candidate].map((r) => {
    const sim = arms.find((a) => a.name === r.name)?.sim;
    return [
      r.name,
      // AIPerf's request_count counts the requests that succeeded; failures are counted apart.
      String(r.validCount),
      String(r.requestCount - r.validCount),
      r.goodput ? pct(r.goodput.attainment) : "–",
      r.goodput ? `${formatNumber(r.goodput.goodputPerS.estimate)}` : "–",
      sim
        ? `${formatNumber(100 * sim.prefix_cache_hit_rate)} %`
        : r.prefixCache
          ? pct(r.prefixCache.hitRate)
          : "–",
      r.overload.overloaded ? `yes: ${r.overload.reason}` : "no",
    ];
  });
}

const ARM_HEAD = [
  "arm",
  "requests (valid)",
  "errors",
  "SLO attainment [95 % CI]",
  "goodput (req/s)",
  "prefix-cache hits",
  "overloaded",
];

/**
 * Builds the A/B report from arms' artifacts: every arm after the first is compared with the first (the
 * baseline) — statistics with bootstrap intervals, rank tests, goodput, cache hits, overload — and written as
 * `report.md` and a self-contained `report.html`.
 */
export async function writeReport(
  outDir: string,
  arms: readonly ArmArtifacts[],
  ctx: ReportContext,
): Promise<ReportFiles> {
  if (arms.length < 2) throw new RangeError("a report compares at least two arms");
  const slos = ctx.slos ?? (ctx.recipe ? parseGoodput(ctx.recipe.benchmark.goodput) : []);
  // Arms compared more than once (attribution steps) are resampled once per role.
  const options = { seed: ctx.seed, slos, drawCache: new WeakMap() };
  const inputOf = new Map(arms.map((a) => [a.name, armInput(a, ctx.ownSlos === true)]));
  const [base, ...rest] = arms;
  const comparisons = rest.map((arm) =>
    compareArms(inputOf.get(base!.name)!, inputOf.get(arm.name)!, options),
  );
  const attribution = (ctx.attribution ?? [])
    .filter(([, from, to]) => inputOf.has(from) && inputOf.has(to))
    .map(([factor, from, to]) => ({
      factor,
      from,
      to,
      c: compareArms(inputOf.get(from)!, inputOf.get(to)!, options),
    }));

  const md: string[] = [`# ${ctx.title}`, ""];
  const html: string[] = [];
  const models = stepTimeModels(arms);
  const curves = ctx.capacity ? capacityCurves(ctx.capacity.runs) : undefined;
  // The decision first: B against A on the decision metric, the knees, overload, and the model's standing.
  const verdictLines = headlineLines(comparisons[0]!, { curves, models });
  md.push("## Verdict", "", `**${verdictLines[0]}**`, "", ...verdictLines.slice(1).map((l) => `- ${l}`), "");
  html.push(
    `<div class="verdict"><p><strong>${escapeHtml(verdictLines[0]!)}</strong></p><ul>${verdictLines
      .slice(1)
      .map((l) => `<li>${escapeHtml(l)}</li>`)
      .join("")}</ul></div>`,
  );
  const warnings = runWarnings(
    arms,
    ctx.ownSlos
      ? null
      : slos.length > 0
        ? slos.map((x) => `${x.tag} ${x.largerIsBetter ? "≥" : "≤"} ${x.threshold}`).join(", ")
        : "none",
  );
  if (warnings.length > 0) {
    md.push("## Before reading on", "", ...warnings.map((w) => `- **${w}**`), "");
    html.push(
      `<div class="banner"><p>Before reading on:</p><ul>${warnings.map((w) => `<li>${escapeHtml(w)}</li>`).join("")}</ul></div>`,
    );
  }
  if (models.uncalibrated) {
    const banner =
      "UNCALIBRATED: at least one arm ran a step-time model with no measured profile behind it (the polynomial mocker model), so the figures below are illustrative, not a prediction.";
    md.push(`> **${banner}**`, "");
    html.push(`<p class="banner">${escapeHtml(banner)}</p>`);
  }
  if (models.lines.length > 0) {
    md.push("Step-time models:", "", ...models.lines.map((l) => `- ${l}`), "");
    html.push(
      `<p>Step-time models:</p><ul>${models.lines.map((l) => `<li>${escapeHtml(l)}</li>`).join("")}</ul>`,
    );
  }
  if (attribution.length > 0) {
    const head = [
      "factor",
      "from",
      "to",
      "TTFT avg ratio [95 % CI]",
      "ITL avg ratio [95 % CI]",
      "goodput Δ (req/s)",
    ];
    const rows = attribution.map(({ factor, from, to, c }) => {
      const m = (tag: string) => c.metrics.find((x) => x.metric === tag)?.statistics.avg.ratio;
      const g = c.goodput?.goodputDifference;
      return [
        factor,
        from,
        to,
        ratio(m("time_to_first_token")),
        ratio(m("inter_token_latency")),
        g ? `${formatNumber(g.estimate)} [${formatNumber(g.lo)}, ${formatNumber(g.hi)}]` : "–",
      ];
    });
    md.push("## Attribution", "", mdTable(head, rows), "");
    html.push("<h2>Attribution</h2>", htmlTable(head, rows));
  }
  if (curves) {
    for (const t of capacityTables(curves, ctx.capacity!)) {
      md.push(`## ${t.title}`, "", t.note, "", mdTable(t.head, t.rows), "");
      html.push(`<h2>${escapeHtml(t.title)}</h2>`, `<p>${escapeHtml(t.note)}</p>`, htmlTable(t.head, t.rows));
    }
  }
  for (const c of comparisons) {
    const heading = `${c.candidate.name} vs ${c.baseline.name}`;
    const verdicts = c.verdicts.filter(
      (v) => v.statistic === "p50" || v.statistic === "p99" || v.statistic === "avg",
    );
    md.push(`## ${heading}`, "", ...verdicts.map((v) => `- ${v.text}`), "");
    md.push(mdTable(ARM_HEAD, armRows(c, arms)), "", mdTable(METRIC_HEAD, metricRows(c)), "");
    if (c.goodput)
      md.push(
        `Goodput difference: ${formatNumber(c.goodput.goodputDifference.estimate)} req/s [${formatNumber(c.goodput.goodputDifference.lo)}, ${formatNumber(c.goodput.goodputDifference.hi)}].`,
        "",
      );
    html.push(
      `<h2>${escapeHtml(heading)}</h2>`,
      `<ul>${verdicts.map((v) => `<li class="${v.direction}">${escapeHtml(v.text)}</li>`).join("")}</ul>`,
      htmlTable(ARM_HEAD, armRows(c, arms)),
      htmlTable(METRIC_HEAD, metricRows(c)),
    );
  }
  const boundsTables = ctx.bounds ? boundsSections(ctx.bounds) : [];
  for (const t of boundsTables) {
    md.push(`## ${t.title}`, "", t.note, "", mdTable(t.head, t.rows), "");
    html.push(`<h2>${escapeHtml(t.title)}</h2>`, `<p>${escapeHtml(t.note)}</p>`, htmlTable(t.head, t.rows));
  }
  const reports = [comparisons[0]!.baseline, ...comparisons.map((c) => c.candidate)];
  const charts = await renderReportCharts(
    outDir,
    arms.map((a, i) => chartData(a, reports[i])),
    curves ? capacityChartSpecs(curves, slos) : [],
    slos,
  );
  md.push("## Charts", "", ...charts.map((c) => `![${c.title}](${c.png})`), "");
  const chartDivs = charts.map(
    (c) =>
      `<h3>${escapeHtml(c.title)}</h3><div class="chart" id="chart-${c.name}" data-option="${escapeHtml(JSON.stringify(c.option))}">${c.svg}</div>`,
  );
  const repro = [
    `Command: \`${ctx.command}\``,
    `servelab ${version}, Node.js ${process.version}; statistics seed ${ctx.seed}, 2,000 bootstrap resamples per arm.`,
    ...(ctx.traceFile ? [`Trace: \`${ctx.traceFile}\``] : []),
    ...arms.map((a) => `Arm \`${a.name}\`: \`${a.dir}\``),
  ];
  const traceRows = ctx.trace ? traceStatRows(ctx.trace) : [];
  if (traceRows.length > 0) md.push("## Trace", "", mdTable(["statistic", "value"], traceRows), "");
  md.push("## Reproduction", "", ...repro.map((l) => `- ${l}`), "");
  const recipeYaml = ctx.recipe ? resolvedRecipeYaml(ctx.recipe) : "";
  const page = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(ctx.title)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;max-width:80rem;color:#222}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
td:first-child,th:first-child{text-align:left}li.improvement{color:#156e2e}li.regression{color:#a11}
.banner{background:#fde8e8;border:2px solid #a11;color:#a11;padding:.75rem;font-weight:bold}
.verdict{background:#eef4fb;border:2px solid #4e79a7;padding:.5rem 1rem;font-size:1.05rem}
pre{background:#f6f6f6;padding:1rem;overflow:auto;font-size:.8rem}.chart{width:960px;height:480px}
</style></head><body>
<h1>${escapeHtml(ctx.title)}</h1>
${html.join("\n")}
<h2>Charts</h2>
${chartDivs.join("\n")}
${traceRows.length > 0 ? `<h2>Trace</h2>${htmlTable(["statistic", "value"], traceRows)}` : ""}
<h2>Reproduction</h2><ul>${repro.map((l) => `<li>${escapeHtml(l.replaceAll("`", ""))}</li>`).join("")}</ul>
${recipeYaml ? `<h2>Recipe</h2><pre>${escapeHtml(recipeYaml)}</pre>` : ""}
<script>${(await echartsBrowserScript()).replaceAll("</script", "<\\/script")}</script>
<script>
// Each chart starts as its server-rendered SVG; ECharts replaces it with the interactive version of the same option.
for (const el of document.querySelectorAll(".chart")) {
  const option = JSON.parse(el.dataset.option);
  el.replaceChildren();
  const chart = echarts.init(el, null, { renderer: "svg" });
  chart.setOption(option);
  window.addEventListener("resize", () => chart.resize());
}
</script>
</body></html>
`;
  const mdPath = join(outDir, "report.md");
  const htmlPath = join(outDir, "report.html");
  await writeFileAtomic(mdPath, [md.join("\n")]);
  await writeFileAtomic(htmlPath, [page]);

  // One table for two arms; with more, one compact table per comparison, so that the terminal never has to wrap.
  let console = `${verdictLines.join("\n")}\n\n${comparisons.map((c) => `${consoleTable(c, comparisons.length > 1)}\n`).join("\n")}`;
  for (const t of boundsTables) {
    const bt = new Table({ head: t.head, ...TABLE_STYLE });
    for (const r of t.rows) bt.push(r);
    console += `\n${t.title}\n${bt.toString()}\n`;
  }
  if (models.lines.length > 0)
    console = `Step-time models:\n${models.lines.map((l) => `  ${l}\n`).join("")}${console}`;
  if (models.uncalibrated)
    console = `UNCALIBRATED step-time model: the figures are illustrative only.\n${console}`;
  if (warnings.length > 0) console = `${warnings.map((w) => `warning: ${w}\n`).join("")}${console}`;
  return { md: mdPath, html: htmlPath, console };
}

/** Shorter names where the report's own would widen the terminal table past 120 columns. */
const CONSOLE_LABELS: Partial<Record<string, string>> = {
  output_token_throughput_per_user: "output tokens/s per user",
};

/** Each metric's average in both arms and their ratio (of the averages, the row's statistic), then goodput. */
function consoleTable(c: ArmComparison, titled: boolean): string {
  const a = c.baseline.name;
  const b = c.candidate.name;
  const table = new Table({ head: ["metric (avg)", a, b, "ratio [95 % CI]"], ...TABLE_STYLE });
  for (const m of c.metrics)
    table.push([
      CONSOLE_LABELS[m.metric] ?? `${METRIC_LABELS[m.metric]} (${m.unit})`,
      formatNumber(m.statistics.avg.baseline),
      formatNumber(m.statistics.avg.candidate),
      ratio(m.statistics.avg.ratio),
    ]);
  const g = (r: typeof c.baseline) => (r.goodput ? formatNumber(r.goodput.goodputPerS.estimate) : "–");
  const d = c.goodput?.goodputDifference;
  table.push([
    "goodput (req/s)",
    g(c.baseline),
    g(c.candidate),
    d ? `Δ ${formatNumber(d.estimate)} [${formatNumber(d.lo)}, ${formatNumber(d.hi)}]` : "",
  ]);
  return `${titled ? `${b} vs ${a} (ratio: ${b} / ${a})` : `ratio: ${b} / ${a}`}\n${table.toString()}`;
}

/**
 * What makes a comparison untrustworthy, said first: failed requests (by type), empty or unfinished exports, and
 * arms that measured different numbers of requests.
 */
function runWarnings(arms: readonly ArmArtifacts[], slosText: string | null): string[] {
  const out: string[] = [];
  for (const a of arms) {
    if (a.requests === 0) out.push(`arm ${a.name} has no records (${a.dir})`);
    if (a.incomplete)
      out.push(`arm ${a.name} is an unfinished run: ${a.requests} records, cut where it stopped`);
    if (a.errors > 0) {
      const types = errorLines(errorSummaryOf(a.summary, a.records)).join("; ");
      out.push(`arm ${a.name}: ${a.errors} of ${a.requests} requests failed (${types})`);
    }
  }
  // Each run records the SLOs it was measured with; one report applies one set to every arm.
  const recorded = arms.map((a) => JSON.stringify(recordedGoodput(a.summary.input_config) ?? {}));
  if (new Set(recorded).size > 1)
    out.push(
      `the arms were measured with different goodput SLOs (${arms.map((a, i) => `${a.name} ${recorded[i]}`).join(", ")}); ${slosText === null ? "each arm is judged by its own, so their goodput and SLO attainment measure different things" : `this report applies one set to all: ${slosText}`}`,
    );
  for (const a of arms) {
    const live = liveRunOf(a);
    if (live)
      out.push(
        `arm ${a.name} ran live on the loopback stack at scale ${live.scale ?? 1} (replicas and DP ranks) and speed-up ${live.speedup_ratio ?? 1}× (engine steps and arrivals${live.speedup_ratio && live.speedup_ratio !== 1 ? `: its times are ${live.speedup_ratio}× shorter than the modelled engine's` : ""})${live.requests === undefined ? "" : `, the trace's first ${live.requests} requests`}`,
      );
  }
  const counts = new Set(arms.map((a) => a.requests));
  if (counts.size > 1)
    out.push(
      `the arms measured different numbers of requests: ${arms.map((a) => `${a.name} ${a.requests}`).join(", ")}`,
    );
  return out;
}

/** How a live loopback run was shrunk, from what it recorded in its `input_config`. */
function liveRunOf(a: ArmArtifacts): { scale?: number; speedup_ratio?: number; requests?: number } | null {
  const servelab = (a.summary.input_config as { servelab?: Record<string, unknown> } | undefined)?.servelab;
  if (servelab?.backend !== "loopback") return null;
  const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
  const out: { scale?: number; speedup_ratio?: number; requests?: number } = {};
  const scale = num(servelab.scale);
  const speedup = num(servelab.speedup_ratio);
  const requests = num(servelab.requests);
  if (scale !== undefined) out.scale = scale;
  if (speedup !== undefined) out.speedup_ratio = speedup;
  if (requests !== undefined) out.requests = requests;
  return out;
}

/** Which step-time model each simulated arm ran, and whether any ran one without a measured profile. */
function stepTimeModels(arms: readonly ArmArtifacts[]): {
  lines: string[];
  names: string[];
  uncalibrated: boolean;
} {
  let uncalibrated = false;
  const lines: string[] = [];
  const names = new Set<string>();
  for (const a of arms) {
    const m = a.sim?.step_time_model;
    if (!m) continue;
    if (!m.calibrated) uncalibrated = true;
    const roles = Object.entries(m.models).map(([role, name]) => `${role}: ${name}`);
    for (const name of Object.values(m.models)) names.add(name);
    lines.push(
      `${a.name}: ${roles.join("; ")} — ${m.calibrated ? "measured profile" : "uncalibrated"}, bounds ${m.bounds}`,
    );
  }
  return { lines, names: [...names], uncalibrated };
}

/** The verdict under each bound, and the sensitivity table when parameters were moved one at a time. */
function boundsSections(b: NonNullable<ReportContext["bounds"]>) {
  // Optimistic, nominal, pessimistic: the order a reader scans a range in.
  const whole = b.runs
    .filter((r) => !r.vary)
    .sort((x, y) => PERF_BOUNDS.indexOf(x.bound) - PERF_BOUNDS.indexOf(y.bound));
  const varied = b.runs.filter((r) => r.vary);
  const sections: { title: string; note: string; head: string[]; rows: string[][] }[] = [];
  const wholeVerdicts = settingVerdicts(whole, b.baseline, b.candidate);
  if (whole.length > 1 || varied.length === 0)
    sections.push({
      title: "How sure: the verdict across the step-time bounds",
      note: `A = ${b.baseline}, B = ${b.candidate}. Each row reruns both arms with every uncertain profile parameter at that bound (docs/calibration.md lists them, their sources and ranges).`,
      head: BOUNDS_HEAD,
      rows: boundsRows(wholeVerdicts),
    });
  const nominal = wholeVerdicts.find((v) => v.label === "nominal");
  if (varied.length > 0 && nominal)
    sections.push({
      title: "Sensitivity: which parameters move the verdict",
      note: `Each parameter moved alone to its ends, the others nominal; B/A goodput difference at nominal: ${formatNumber(nominal.goodputDelta)} req/s, TTFT ratio ${nominal.ttftRatio.toFixed(3)}×. Sorted by the swing in goodput difference.`,
      head: SENSITIVITY_HEAD,
      rows: sensitivityRows(nominal, varied, settingVerdicts(varied, b.baseline, b.candidate)),
    });
  return sections;
}
