import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { REPO_ROOT } from "../testing/fixtures.ts";
import { MetricsCollector } from "./collector.ts";
import { parseGoodput } from "./goodput.ts";
import type { RequestRecord } from "./record.ts";
import { makeRecord, smallRun } from "./record-fixtures.ts";
import {
  PROFILE_EXPORT_TIMESLICES_CSV,
  PROFILE_EXPORT_TIMESLICES_JSON,
  renderTimeslicesCsv,
  renderTimeslicesJson,
  sliceDurationNs,
  TimesliceCollector,
  timesliceFileNames,
  timeslicesCsvChunks,
  timeslicesJsonChunks,
} from "./timeslices.ts";

const FIXTURES = join(REPO_ROOT, "src", "metrics", "fixtures");
const S = 1000; // ms per second, for readable record times

/**
 * The records of `fixtures/timeslices-small.{json,csv}` (worked out by hand there): 1 s slices on the wall clock;
 * two requests start in [1000 s, 1001 s) (one ends in the next window), none in [1001 s, 1002 s), a request at
 * exactly 1002 s and a failure at 1002.5 s.
 */
function fixtureRecords(): RequestRecord[] {
  return [
    makeRecord({ session: 0, startMs: 1000.2 * S, chunksMs: [1000.3 * S], input: 1000, output: 100 }),
    makeRecord({ session: 1, startMs: 1000.9 * S, chunksMs: [1001.1 * S], input: 1100, output: 200 }),
    makeRecord({ session: 2, startMs: 1002 * S, chunksMs: [1002.25 * S], input: 500, output: 50 }),
    makeRecord({
      session: 3,
      startMs: 1002.5 * S,
      chunksMs: [],
      input: 7,
      error: { code: 500, type: "Internal Server Error", message: "boom" },
    }),
  ].map((r) => ({ ...r, streaming: false }));
}

const INPUT_CONFIG = {
  endpoint: { type: "chat", streaming: false, url: null },
  loadgen: { benchmark_duration: 3 },
  output: { slice_duration: 1 },
  cli_command: "servelab bench --slice-duration 1",
};

function collect(records: readonly RequestRecord[], sliceDurationS = 1, originNs?: number) {
  const c = new TimesliceCollector({ sliceDurationS, originNs });
  for (const r of records) c.add(r);
  return c;
}

describe("timeslice exports match AIPerf's layout", () => {
  it("renders the hand-written fixture exactly, whatever order the records finish in", () => {
    const json = readFileSync(join(FIXTURES, "timeslices-small.json"), "utf8");
    const csv = readFileSync(join(FIXTURES, "timeslices-small.csv"), "utf8");
    const records = fixtureRecords();
    for (const order of [
      records,
      [...records].reverse(),
      [records[2]!, records[0]!, records[3]!, records[1]!],
    ]) {
      const out = collect(order).render(INPUT_CONFIG);
      assert.ok(out);
      assert.equal(out.json, json);
      assert.equal(out.csv, csv);
    }
  });

  it("puts timeslice_index first, then only the metrics a slice has, in declared order", () => {
    const doc = JSON.parse(collect(fixtureRecords()).render(INPUT_CONFIG)!.json);
    assert.deepEqual(Object.keys(doc), ["timeslices", "input_config"]);
    const [first, second] = doc.timeslices;
    assert.equal(Object.keys(first)[0], "timeslice_index");
    assert.deepEqual([first.timeslice_index, second.timeslice_index], [0, 1]);
    assert.equal(first.error_request_count, undefined);
    assert.equal(first.time_to_first_token, undefined);
    assert.deepEqual(second.error_request_count, { unit: "requests", avg: 1 });
    assert.deepEqual(Object.keys(first.request_latency), [
      "unit",
      "avg",
      "p1",
      "p5",
      "p10",
      "p25",
      "p50",
      "p75",
      "p90",
      "p95",
      "p99",
      "min",
      "max",
      "std",
    ]);
    // exclude_none: the null url goes, the rest of input_config stays as given.
    assert.deepEqual(doc.input_config.endpoint, { type: "chat", streaming: false });
    assert.equal(doc.input_config.cli_command, INPUT_CONFIG.cli_command);
  });

  it("prints, a slice per chunk, exactly what JSON.stringify prints for the whole document", () => {
    const slices = collect([...fixtureRecords(), ...smallRun()]).results();
    const config = { endpoint: { model_names: ["a", "b"], streaming: true }, extra: [{ k: 1 }], empty: {} };
    for (const [some, cfg] of [
      [slices, config],
      [slices.slice(0, 1), null],
      [[], config],
      [[], null],
    ] as const) {
      const doc = JSON.parse(renderTimeslicesJson(some, cfg));
      const expected = `${JSON.stringify(doc, null, 2)}\n`;
      assert.equal(renderTimeslicesJson(some, cfg), expected);
      assert.equal([...timeslicesJsonChunks(some, cfg)].length, some.length === 0 ? 1 : some.length + 1);
    }
    assert.equal([...timeslicesCsvChunks(slices)].join(""), renderTimeslicesCsv(slices));
    assert.equal([...timeslicesCsvChunks(slices)].length, slices.length + 1);
  });

  it("leaves out a null input_config", () => {
    const doc = JSON.parse(collect(fixtureRecords()).render(null)!.json);
    assert.deepEqual(Object.keys(doc), ["timeslices"]);
  });

  it("writes the CSV tidy: header, CRLF, one row per statistic, metrics sorted by tag, %.2f", () => {
    const csv = collect(fixtureRecords()).render(null)!.csv;
    assert.ok(csv.endsWith("\r\n"));
    const rows = csv.split("\r\n").slice(0, -1);
    assert.equal(rows[0], "Timeslice,Metric,Unit,Stat,Value");
    assert.equal(rows[1], "0,Benchmark Duration,sec,avg,0.90");
    const latency = rows.filter((r) => r.startsWith("0,Request Latency,ms,")).map((r) => r.split(",")[3]);
    assert.deepEqual(latency, [
      "avg",
      "min",
      "max",
      "p1",
      "p5",
      "p10",
      "p25",
      "p50",
      "p75",
      "p90",
      "p95",
      "p99",
      "std",
    ]);
    assert.ok(rows.includes("1,Request Throughput,requests/sec,avg,4.00"));
    assert.ok(rows.every((r, i) => i === 0 || /^\d+,[^,]+,[^,]+,[a-z0-9]+,-?\d+\.\d\d$/.test(r)));
  });

  it("names the files after AIPerf's, with --profile-export-prefix stripped of one known suffix", () => {
    assert.deepEqual(timesliceFileNames(), {
      json: PROFILE_EXPORT_TIMESLICES_JSON,
      csv: PROFILE_EXPORT_TIMESLICES_CSV,
    });
    assert.equal(PROFILE_EXPORT_TIMESLICES_JSON, "profile_export_aiperf_timeslices.json");
    assert.equal(PROFILE_EXPORT_TIMESLICES_CSV, "profile_export_aiperf_timeslices.csv");
    assert.deepEqual(timesliceFileNames("run1"), {
      json: "run1_timeslices.json",
      csv: "run1_timeslices.csv",
    });
    assert.deepEqual(timesliceFileNames("run1.json"), timesliceFileNames("run1"));
    assert.deepEqual(timesliceFileNames("run1_timeslices.csv"), timesliceFileNames("run1"));
    assert.deepEqual(timesliceFileNames("run1_raw.jsonl"), timesliceFileNames("run1"));
    assert.deepEqual(timesliceFileNames("a.b"), { json: "a.b_timeslices.json", csv: "a.b_timeslices.csv" });
  });
});

describe("slice assignment", () => {
  it("assigns by start time on a grid from 0: a start on a boundary opens the next window", () => {
    const c = new TimesliceCollector({ sliceDurationS: 10 });
    assert.equal(c.sliceDurationNs, 10e9);
    assert.equal(c.windowOf(0), 0);
    assert.equal(c.windowOf(10e9 - 1), 0);
    assert.equal(c.windowOf(10e9), 1);
    assert.equal(c.windowOf(25e9), 2);
    // Unix nanoseconds: windows are multiples of S since the epoch, as AIPerf's int(start_ns / S_ns).
    assert.equal(c.windowOf(1_764_000_005e9), 176_400_000);
  });

  it("moves the grid with originNs", () => {
    const c = new TimesliceCollector({ sliceDurationS: 1, originNs: 0.5e9 });
    assert.equal(c.windowOf(0.5e9), 0);
    assert.equal(c.windowOf(1.499e9), 0);
    assert.equal(c.windowOf(1.5e9), 1);
    assert.equal(c.windowOf(0.4e9), -1);
  });

  it("counts a request in the slice it started in, even when it ends in a later one", () => {
    const records = [
      makeRecord({ session: 0, startMs: 999, chunksMs: [2500] }),
      makeRecord({ session: 1, startMs: 1000, chunksMs: [1100] }),
    ];
    const slices = collect(records).results();
    assert.equal(slices.length, 2);
    assert.equal(slices[0]!.summary.request_count?.avg, 1);
    assert.equal(slices[0]!.summary.max_response_timestamp?.avg, 2500e6);
    assert.equal(slices[1]!.summary.min_request_timestamp?.avg, 1000e6);
  });

  it("has partial first and last slices: windows lie on the grid, not at the first request", () => {
    const records = [
      makeRecord({ session: 0, startMs: 10_500, chunksMs: [10_600] }),
      makeRecord({ session: 1, startMs: 11_200, chunksMs: [11_900] }),
      makeRecord({ session: 2, startMs: 12_300, chunksMs: [12_400] }),
    ];
    const slices = collect(records).results();
    assert.deepEqual(
      slices.map((s) => [s.index, s.startNs / 1e9, s.endNs / 1e9]),
      [
        [0, 10, 11],
        [1, 11, 12],
        [2, 12, 13],
      ],
    );
    // The first slice's requests only began half-way through its window; its duration is theirs.
    assert.equal(slices[0]!.summary.benchmark_duration?.avg, 0.1);
  });

  it("skips windows no request started in and numbers the rest densely", () => {
    const records = [
      makeRecord({ session: 0, startMs: 5_100, chunksMs: [5_200] }),
      makeRecord({ session: 1, startMs: 8_100, chunksMs: [8_200] }),
      makeRecord({ session: 2, startMs: 8_300, chunksMs: [8_400] }),
    ];
    const c = collect(records);
    assert.equal(c.sliceCount, 2);
    assert.equal(c.recordCount, 3);
    const slices = c.results();
    assert.deepEqual(
      slices.map((s) => [s.index, s.startNs / 1e9]),
      [
        [0, 5],
        [1, 8],
      ],
    );
    const doc = JSON.parse(renderTimeslicesJson(slices, null));
    assert.deepEqual(
      doc.timeslices.map((t: { timeslice_index: number }) => t.timeslice_index),
      [0, 1],
    );
    assert.deepEqual(
      [
        ...new Set(
          renderTimeslicesCsv(slices)
            .split("\r\n")
            .slice(1, -1)
            .map((r) => r.split(",")[0]),
        ),
      ],
      ["0", "1"],
    );
  });
});

describe("metrics per slice", () => {
  it("divides throughputs by the slice's own duration (its requests' span), not by the slice length", () => {
    const records = [
      makeRecord({ session: 0, startMs: 1_000, chunksMs: [1_500], output: 10, input: 5 }),
      makeRecord({ session: 1, startMs: 2_000, chunksMs: [3_000], output: 30, input: 15 }),
    ];
    const [slice] = collect(records, 10).results();
    const s = slice!.summary;
    assert.equal(s.benchmark_duration?.avg, 2);
    assert.equal(s.request_throughput?.avg, 1);
    assert.equal(s.output_token_throughput?.avg, 20);
    assert.equal(s.total_token_throughput?.avg, 30);
  });

  it("gives each slice what a MetricsCollector gives its requests, goodput included", () => {
    const goodput = parseGoodput("time_to_first_token:80");
    const early = smallRun(); // 0–300 ms
    const late = smallRun().map((r, i) => ({
      ...r,
      sessionNum: 10 + i,
      startNs: r.startNs + 6e9,
      chunkNs: Float64Array.from(r.chunkNs, (t) => t + 6e9),
    }));
    const c = new TimesliceCollector({ sliceDurationS: 2, originNs: -1e9, goodput });
    for (const r of [...late, ...early]) c.add(r);
    const slices = c.results();
    assert.equal(slices.length, 2);
    for (const [slice, records] of [
      [slices[0]!, early],
      [slices[1]!, late],
    ] as const) {
      const whole = new MetricsCollector({ goodput });
      for (const r of records) whole.add(r);
      assert.deepEqual(slice.summary, whole.finish());
    }
    assert.equal(slices[0]!.summary.good_request_count?.avg, 1);
    assert.ok(slices[0]!.summary.time_to_first_token);
    assert.ok(slices[0]!.summary.inter_chunk_latency);
  });

  it("keeps a slice of failures only, with just the error metrics", () => {
    const failed = makeRecord({
      session: 0,
      startMs: 100,
      chunksMs: [],
      input: 9,
      error: { code: 503, type: "Service Unavailable", message: "busy" },
    });
    const [slice] = collect([failed]).results();
    const present = Object.entries(slice!.summary)
      .filter(([, v]) => v !== null)
      .map(([k]) => k);
    assert.deepEqual(present, ["error_request_count", "error_isl", "total_error_isl"]);
    const doc = JSON.parse(renderTimeslicesJson([slice!], null));
    assert.deepEqual(Object.keys(doc.timeslices[0]), ["timeslice_index", ...present]);
  });

  it("writes nothing for a run without records", () => {
    const c = new TimesliceCollector({ sliceDurationS: 1 });
    assert.deepEqual(c.results(), []);
    assert.equal(c.render({ cli_command: "x" }), null);
  });

  it("rejects a malformed record without counting it or opening a slice for it", () => {
    const c = new TimesliceCollector({ sliceDurationS: 1 });
    const bad = makeRecord({ session: 0, startMs: 100, chunksMs: [50] }); // a chunk before the start
    assert.throws(() => c.add(bad), RangeError);
    assert.throws(() => c.add({ ...bad, startNs: Number.NaN }), RangeError);
    assert.equal(c.recordCount, 0);
    assert.equal(c.sliceCount, 0);
    assert.equal(c.render(null), null);
  });
});

describe("slice duration", () => {
  it("is whole nanoseconds, truncated as AIPerf's int(S * 1e9)", () => {
    assert.equal(sliceDurationNs(1), 1e9);
    assert.equal(sliceDurationNs(0.3), 300_000_000);
    assert.equal(sliceDurationNs(2.5), 2_500_000_000);
    assert.equal(sliceDurationNs(1e-9), 1);
  });

  it("rejects what is not a positive number of seconds of at least 1 ns, with a RangeError", () => {
    for (const bad of [
      0,
      -1,
      -0.5,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      1e-10,
      1e300,
      "1" as unknown as number,
    ]) {
      assert.throws(() => sliceDurationNs(bad), RangeError, String(bad));
      assert.throws(() => new TimesliceCollector({ sliceDurationS: bad }), RangeError, String(bad));
    }
    assert.throws(() => new TimesliceCollector({ sliceDurationS: 1, originNs: Number.NaN }), RangeError);
  });
});
