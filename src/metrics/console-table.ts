import Table from "cli-table3";
import {
  type AiperfSummary,
  CONSOLE_METRIC_TAGS,
  type DistributionResult,
  type ErrorSummaryEntry,
  METRICS,
  type ScalarResult,
} from "./aiperf-metrics.ts";
import { formatFixed2 } from "./format.ts";

/** Plain borders, no ANSI colours (piped or logged output stays clean) and no rules between body rows. */
const TABLE_STYLE = {
  style: { head: [], border: [] },
  chars: { mid: "", "left-mid": "", "mid-mid": "", "right-mid": "" },
};

/** The statistic columns of AIPerf's console table, in its order. */
const COLUMNS = ["avg", "min", "max", "p99", "p90", "p50", "std"] as const;

/** Labels longer than this break before the unit, as AIPerf's console does, to keep the table narrow. */
const LABEL_WRAP = 30;

export interface ConsoleTableOptions {
  /** Prefix of the table titles (`"<title> | LLM Metrics"`). */
  title?: string;
}

const DEFAULT_TITLE = "servelab";

function label(header: string, unit: string): string {
  return header.length > LABEL_WRAP ? `${header}\n(${unit})` : `${header} (${unit})`;
}

/** A title centred over the table, like rich's table titles. */
function withTitle(title: string, table: string): string {
  const width = table.indexOf("\n") === -1 ? table.length : table.indexOf("\n");
  const padLeft = Math.max(0, Math.floor((width - title.length) / 2));
  return `${" ".repeat(padLeft)}${title}\n${table}\n`;
}

function cell(r: DistributionResult | ScalarResult, key: (typeof COLUMNS)[number]): string {
  if (key === "avg") return formatFixed2(r.avg, true);
  if (!("p50" in r)) return "N/A";
  return formatFixed2(r[key], true);
}

/**
 * AIPerf's "LLM Metrics" console table: its display rows (latencies, per-user throughput, lengths, throughputs,
 * goodput, request count) that have a value, columns `Metric | avg | min | max | p99 | p90 | p50 | std`, numbers as
 * `1,234.56`, and N/A for the statistics a single-valued metric lacks.
 */
export function renderMetricsTable(summary: AiperfSummary, options: ConsoleTableOptions = {}): string {
  const table = new Table({
    head: ["Metric", ...COLUMNS],
    colAligns: ["right", ...COLUMNS.map(() => "right" as const)],
    ...TABLE_STYLE,
  });
  for (const tag of CONSOLE_METRIC_TAGS) {
    const r = summary[tag];
    if (!r) continue;
    table.push([label(METRICS[tag].header, r.unit), ...COLUMNS.map((k) => cell(r, k))]);
  }
  return withTitle(`${options.title ?? DEFAULT_TITLE} | LLM Metrics`, table.toString());
}

/** Error bodies can be whole HTML pages; past this width the message column wraps. */
const MESSAGE_WIDTH = 60;

/** One line of text: server messages may carry newlines or control characters that would break the table. */
function oneLine(s: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
  return s.replace(/[\s\u0000-\u001f\u007f]+/g, " ").trim();
}

/** AIPerf's "Error Summary" table (`Code | Type | Message | Count`), or "" when nothing failed. */
export function renderErrorSummaryTable(
  errors: readonly ErrorSummaryEntry[],
  options: ConsoleTableOptions = {},
): string {
  if (errors.length === 0) return "";
  const messages = errors.map((e) => oneLine(e.error_details.message));
  const messageWidth = Math.min(MESSAGE_WIDTH, Math.max("Message".length, ...messages.map((m) => m.length)));
  const table = new Table({
    head: ["Code", "Type", "Message", "Count"],
    colAligns: ["right", "left", "left", "right"],
    // +2 for the cell padding.
    colWidths: [null, null, messageWidth + 2, null],
    wordWrap: true,
    ...TABLE_STYLE,
  });
  errors.forEach((e, i) => {
    const d = e.error_details;
    table.push([
      d.code === null ? "N/A" : String(d.code),
      oneLine(d.type),
      messages[i]!,
      e.count.toLocaleString("en-US"),
    ]);
  });
  return withTitle(`${options.title ?? DEFAULT_TITLE} | Error Summary`, table.toString());
}

export interface ConsoleReportOptions extends ConsoleTableOptions {
  cliCommand?: string;
  csvPath?: string;
  jsonPath?: string;
  logPath?: string;
}

/**
 * What AIPerf prints at the end of a run: the error table (if any), the metrics table, then the command, the
 * benchmark duration and the export paths that are given.
 */
export function renderConsoleReport(
  summary: AiperfSummary,
  errors: readonly ErrorSummaryEntry[],
  options: ConsoleReportOptions = {},
): string {
  const parts = [renderErrorSummaryTable(errors, options), renderMetricsTable(summary, options)].filter(
    (p) => p !== "",
  );
  const lines: string[] = [];
  if (options.cliCommand !== undefined) lines.push(`CLI Command: ${options.cliCommand}`);
  const duration = summary.benchmark_duration;
  lines.push(`Benchmark Duration: ${duration ? `${formatFixed2(duration.avg)} sec` : "N/A"}`);
  if (options.csvPath !== undefined) lines.push(`CSV Export: ${options.csvPath}`);
  if (options.jsonPath !== undefined) lines.push(`JSON Export: ${options.jsonPath}`);
  if (options.logPath !== undefined) lines.push(`Log File: ${options.logPath}`);
  return `${parts.join("\n")}${lines.join("\n")}\n`;
}
