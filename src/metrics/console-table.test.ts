import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MetricsCollector } from "./collector.ts";
import { renderConsoleReport, renderErrorSummaryTable, renderMetricsTable } from "./console-table.ts";
import { parseGoodput } from "./goodput.ts";
import { makeRecord, smallRun } from "./record-fixtures.ts";

function collect(records = smallRun(), goodput = ""): MetricsCollector {
  const c = new MetricsCollector({ goodput: parseGoodput(goodput) });
  for (const r of records) c.add(r);
  return c;
}

const ANSI = String.fromCharCode(27);

describe("console metrics table", () => {
  it("shows AIPerf's display rows and columns", () => {
    const expected = [
      "                                        servelab | LLM Metrics",
      "┌──────────────────────────────────────┬────────┬────────┬────────┬────────┬────────┬────────┬───────┐",
      "│                               Metric │    avg │    min │    max │    p99 │    p90 │    p50 │   std │",
      "│             Time to First Token (ms) │  80.00 │  60.00 │ 100.00 │  99.60 │  96.00 │  80.00 │ 20.00 │",
      "│            Time to Second Token (ms) │  35.00 │  20.00 │  50.00 │  49.70 │  47.00 │  35.00 │ 15.00 │",
      "│                 Request Latency (ms) │ 155.00 │ 120.00 │ 190.00 │ 189.30 │ 183.00 │ 155.00 │ 35.00 │",
      "│             Inter Token Latency (ms) │  30.00 │  15.00 │  45.00 │  44.70 │  42.00 │  30.00 │ 15.00 │",
      "│     Output Token Throughput Per User │  44.44 │  22.22 │  66.67 │  66.22 │  62.22 │  44.44 │ 22.22 │",
      "│                    (tokens/sec/user) │        │        │        │        │        │        │       │",
      "│      Output Sequence Length (tokens) │   4.00 │   3.00 │   5.00 │   4.98 │   4.80 │   4.00 │  1.00 │",
      "│       Input Sequence Length (tokens) │  15.00 │  10.00 │  20.00 │  19.90 │  19.00 │  15.00 │  5.00 │",
      "│ Output Token Throughput (tokens/sec) │  42.11 │    N/A │    N/A │    N/A │    N/A │    N/A │   N/A │",
      "│    Request Throughput (requests/sec) │  10.53 │    N/A │    N/A │    N/A │    N/A │    N/A │   N/A │",
      "│               Goodput (requests/sec) │   5.26 │    N/A │    N/A │    N/A │    N/A │    N/A │   N/A │",
      "│             Request Count (requests) │   2.00 │    N/A │    N/A │    N/A │    N/A │    N/A │   N/A │",
      "└──────────────────────────────────────┴────────┴────────┴────────┴────────┴────────┴────────┴───────┘",
      "",
    ].join("\n");
    assert.equal(renderMetricsTable(collect(smallRun(), "time_to_first_token:80").finish()), expected);
  });

  it("groups thousands, skips metrics that do not apply and takes a title", () => {
    const text = renderMetricsTable(
      collect([
        makeRecord({ startMs: 0, chunksMs: [1500], output: 2000, input: 12345, streaming: false }),
      ]).finish(),
      { title: "arm A" },
    );
    assert.match(text, /arm A \| LLM Metrics/);
    assert.match(text, /Request Latency \(ms\) │ +1,500\.00 │/);
    assert.match(text, /Input Sequence Length \(tokens\) │ 12,345\.00 │/);
    for (const absent of ["Time to First Token", "Inter Token Latency", "Goodput"]) {
      assert.ok(!text.includes(absent), absent);
    }
    assert.ok(!text.includes(ANSI));
  });
});

describe("console error summary", () => {
  it("is empty without errors", () => {
    assert.equal(renderErrorSummaryTable([]), "");
  });

  it("comes before the metrics, and keeps long messages on one wrapped column", () => {
    const body = `<html>\n<body>${"gateway timeout ".repeat(10)}</body>\n</html>`;
    const c = collect([
      ...smallRun(),
      makeRecord({
        session: 3,
        startMs: 0,
        chunksMs: [],
        error: { code: 504, type: "Gateway Timeout", message: body },
      }),
    ]);
    const report = renderConsoleReport(c.finish(), c.errorSummary(), {
      cliCommand: "servelab replay",
      csvPath: "out/profile_export_aiperf.csv",
      jsonPath: "out/profile_export_aiperf.json",
    });
    assert.ok(report.indexOf("servelab | Error Summary") < report.indexOf("servelab | LLM Metrics"));
    assert.match(report, /│ Code │ Type +│ Message +│ Count │/);
    assert.match(report, /│ {2}500 │ Internal Server Error │ boom +│ +1 │/);
    const errorTable = report.slice(0, report.indexOf("\n\n"));
    const rows = errorTable.split("\n").slice(1);
    assert.equal(new Set(rows.map((l) => l.length)).size, 1, "every line of the error table is as wide");
    assert.ok(rows.length >= 8, "the long message wraps over several lines");
    assert.ok(rows[0]!.length < 110);
    assert.ok(!report.includes("<html>\n"));
    assert.ok(
      report.endsWith(
        [
          "CLI Command: servelab replay",
          "Benchmark Duration: 0.19 sec",
          "CSV Export: out/profile_export_aiperf.csv",
          "JSON Export: out/profile_export_aiperf.json",
          "",
        ].join("\n"),
      ),
    );
    assert.ok(!report.includes(ANSI));
  });
});
