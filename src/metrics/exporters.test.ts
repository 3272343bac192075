import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ServelabError } from "../errors.ts";
import { createRng } from "../random.ts";
import { REPO_ROOT, withTempDir } from "../testing/fixtures.ts";
import { AIPERF_METRIC_TAGS, RECORD_METRIC_TAGS } from "./aiperf-metrics.ts";
import { MetricsCollector } from "./collector.ts";
import {
  type AiperfJsonContext,
  formatRecordLine,
  JsonlRecordWriter,
  naiveLocalIsoTimestamp,
  PROFILE_EXPORT_CSV,
  PROFILE_EXPORT_JSON,
  PROFILE_EXPORT_JSONL,
  renderAiperfCsv,
  renderAiperfJson,
  writeAiperfSummaryFiles,
} from "./exporters.ts";
import { parseGoodput } from "./goodput.ts";
import { makeRecord, smallRun } from "./record-fixtures.ts";

function collect(goodput = ""): MetricsCollector {
  const c = new MetricsCollector({ goodput: parseGoodput(goodput) });
  for (const r of smallRun()) c.add(r);
  return c;
}

function context(c: MetricsCollector): AiperfJsonContext {
  return {
    inputConfig: { endpoint: { model_names: ["m"], streaming: true }, cli_command: "servelab run" },
    wasCancelled: false,
    errorSummary: c.errorSummary(),
    startTime: "2026-11-25T20:23:11.482000",
    endTime: "2026-11-25T20:23:12",
  };
}

const METADATA_KEYS = [
  "session_num",
  "x_request_id",
  "x_correlation_id",
  "conversation_id",
  "turn_index",
  "request_start_ns",
  "request_ack_ns",
  "request_end_ns",
  "worker_id",
  "record_processor_id",
  "benchmark_phase",
  "was_cancelled",
  "cancellation_time_ns",
];

describe("profile_export_aiperf.json", () => {
  it("lists every metric in declared order, null where absent, then the run context", () => {
    const c = collect();
    const text = renderAiperfJson(c.finish(), context(c));
    const doc = JSON.parse(text);
    assert.deepEqual(Object.keys(doc), [
      ...AIPERF_METRIC_TAGS,
      "input_config",
      "was_cancelled",
      "error_summary",
      "start_time",
      "end_time",
    ]);
    assert.equal(doc.goodput, null);
    assert.equal(doc.good_request_count, null);
    assert.equal(doc.reasoning_token_count, null);
    assert.deepEqual(Object.keys(doc.time_to_first_token), [
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
    assert.deepEqual(doc.request_count, { unit: "requests", avg: 2 });
    assert.deepEqual(doc.benchmark_duration, { unit: "sec", avg: 0.19 });
    assert.deepEqual(doc.error_summary, [
      { error_details: { code: 500, type: "Internal Server Error", message: "boom" }, count: 1 },
    ]);
    assert.deepEqual(doc.input_config, context(c).inputConfig);
    assert.equal(doc.was_cancelled, false);
    assert.equal(doc.start_time, "2026-11-25T20:23:11.482000");
    // Pretty-printed with indent 2.
    assert.ok(
      text.startsWith('{\n  "request_throughput": {\n    "unit": "requests/sec",\n'),
      text.slice(0, 80),
    );
  });

  it("fills goodput when SLOs were given", () => {
    const c = collect("time_to_first_token:80");
    const doc = JSON.parse(renderAiperfJson(c.finish(), context(c)));
    assert.deepEqual(doc.good_request_count, { unit: "requests", avg: 1 });
    assert.equal(doc.goodput.unit, "requests/sec");
  });
});

describe("profile_export_aiperf.csv", () => {
  it("has AIPerf's two-section layout, exactly", () => {
    // Generated independently with numpy and Python's "%.2f" from the same hand-made values.
    const expected = [
      "Metric,avg,min,max,p1,p5,p10,p25,p50,p75,p90,p95,p99,std",
      "Error Input Sequence Length (tokens),30.00,30.00,30.00,30.00,30.00,30.00,30.00,30.00,30.00,30.00,30.00,30.00,0.00",
      "Input Sequence Length (tokens),15.00,10.00,20.00,10.10,10.50,11.00,12.50,15.00,17.50,19.00,19.50,19.90,5.00",
      "Inter Chunk Latency (ms),30.00,20.00,50.00,20.00,20.00,20.00,20.00,20.00,40.00,46.00,48.00,49.60,12.65",
      "Inter Token Latency (ms),30.00,15.00,45.00,15.30,16.50,18.00,22.50,30.00,37.50,42.00,43.50,44.70,15.00",
      "Output Sequence Length (tokens),4.00,3.00,5.00,3.02,3.10,3.20,3.50,4.00,4.50,4.80,4.90,4.98,1.00",
      "Output Token Count (tokens),4.00,3.00,5.00,3.02,3.10,3.20,3.50,4.00,4.50,4.80,4.90,4.98,1.00",
      "Output Token Throughput Per User (tokens/sec/user),44.44,22.22,66.67,22.67,24.44,26.67,33.33,44.44,55.56,62.22,64.44,66.22,22.22",
      "Request Latency (ms),155.00,120.00,190.00,120.70,123.50,127.00,137.50,155.00,172.50,183.00,186.50,189.30,35.00",
      "Time to First Token (ms),80.00,60.00,100.00,60.40,62.00,64.00,70.00,80.00,90.00,96.00,98.00,99.60,20.00",
      "Time to Second Token (ms),35.00,20.00,50.00,20.30,21.50,23.00,27.50,35.00,42.50,47.00,48.50,49.70,15.00",
      "",
      "Metric,Value",
      "Benchmark Duration (sec),0.19",
      "Error Request Count,1.00",
      "Maximum Response Timestamp (ns),190000000.00",
      "Minimum Request Timestamp (ns),0.00",
      "Output Token Throughput (tokens/sec),42.11",
      "Request Count,2.00",
      "Request Throughput (requests/sec),10.53",
      "Total Error Input Sequence Length (tokens),30.00",
      "Total Input Sequence Length (tokens),30.00",
      "Total Output Sequence Length (tokens),8.00",
      "Total Output Tokens (tokens),8.00",
      "Total Token Throughput (tokens/sec),200.00",
      "",
    ].join("\r\n");
    assert.equal(renderAiperfCsv(collect().finish()), expected);
  });

  it("names goodput rows as AIPerf does", () => {
    const csv = renderAiperfCsv(collect("time_to_first_token:80").finish());
    assert.match(csv, /\r\nGoodRequestCount,1\.00\r\n/);
    assert.match(csv, /\r\nGoodput \(requests\/sec\),5\.26\r\n/);
  });

  it("writes no section for an empty run", () => {
    assert.equal(renderAiperfCsv(new MetricsCollector().finish()), "");
  });
});

describe("profile_export.jsonl lines", () => {
  it("carry AIPerf's metadata and per-request metrics in display units", () => {
    const [ok] = smallRun();
    const line = formatRecordLine(ok!);
    assert.ok(!line.includes("\n"));
    const doc = JSON.parse(line);
    assert.deepEqual(Object.keys(doc), ["metadata", "metrics", "error"]);
    assert.deepEqual(Object.keys(doc.metadata), METADATA_KEYS);
    assert.equal(doc.metadata.session_num, 0);
    assert.equal(doc.metadata.x_request_id, "req-0");
    assert.equal(doc.metadata.conversation_id, "conv-0");
    assert.equal(doc.metadata.request_start_ns, 0);
    assert.equal(doc.metadata.request_ack_ns, 20e6);
    assert.equal(doc.metadata.request_end_ns, 190e6);
    assert.equal(doc.metadata.benchmark_phase, "profiling");
    assert.equal(doc.metadata.was_cancelled, false);
    assert.deepEqual(Object.keys(doc.metrics), [
      "request_latency",
      "output_sequence_length",
      "time_to_first_token",
      "output_token_count",
      "input_sequence_length",
      "inter_chunk_latency",
      "time_to_second_token",
      "inter_token_latency",
      "output_token_throughput_per_user",
    ]);
    assert.deepEqual(doc.metrics.time_to_first_token, { value: 100, unit: "ms" });
    assert.deepEqual(doc.metrics.inter_chunk_latency, { value: [50, 40], unit: "ms" });
    assert.deepEqual(doc.metrics.inter_token_latency, { value: 45, unit: "ms" });
    assert.deepEqual(doc.metrics.output_sequence_length, { value: 3, unit: "tokens" });
    assert.equal(doc.metrics.output_token_throughput_per_user.unit, "tokens/sec/user");
    assert.equal(doc.error, null);
    for (const tag of Object.keys(doc.metrics))
      assert.ok((RECORD_METRIC_TAGS as readonly string[]).includes(tag));
  });

  it("are laid out exactly as JSON.stringify lays out the same document", () => {
    // Chunk gaps that repeat, back to back and apart (cached number text), and that do not, fractional ns included.
    const rng = createRng(5);
    let t = 100;
    const chunksMs = Array.from({ length: 5000 }, (_, i) => {
      t += i % 7 < 3 ? 6.088352523146 : rng.next() * 40;
      return t;
    });
    for (const record of [
      makeRecord({ startMs: 0.123456789, chunksMs, input: 77 }),
      makeRecord({ session: 9, startMs: 3, chunksMs: [3.5], ackMs: 1e-7 }),
      ...smallRun(),
    ]) {
      const line = formatRecordLine(record);
      assert.equal(line, JSON.stringify(JSON.parse(line)));
    }
  });

  it("give a failed request only error_isl and its error", () => {
    const doc = JSON.parse(formatRecordLine(smallRun()[2]!));
    assert.deepEqual(doc.metrics, { error_isl: { value: 30, unit: "tokens" } });
    assert.deepEqual(doc.error, { code: 500, type: "Internal Server Error", message: "boom" });
    const cancelled = JSON.parse(formatRecordLine(makeRecord({ startMs: 0, chunksMs: [], cancelled: true })));
    assert.equal(cancelled.metadata.was_cancelled, true);
    // AIPerf's request_end_ns is required: for a request with no content, when it ended (here: at its start).
    assert.equal(cancelled.metadata.request_end_ns, 0);
    const ended = JSON.parse(formatRecordLine({ ...makeRecord({ startMs: 1, chunksMs: [] }), endNs: 2.6e6 }));
    assert.equal(ended.metadata.request_end_ns, 2_600_000);
    assert.equal(cancelled.metadata.request_ack_ns, null);
    assert.equal(cancelled.error.code, 499);
  });
});

describe("JsonlRecordWriter", () => {
  it("streams one line per record in batches, before it is closed", async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, "out", PROFILE_EXPORT_JSONL);
      // Batches by count only here: the time-based flush has its own test.
      const writer = await JsonlRecordWriter.open(file, { batchSize: 2, flushMs: 1e9 });
      const records = Array.from({ length: 5 }, (_, i) =>
        makeRecord({ session: i, startMs: i, chunksMs: [i + 10, i + 12], output: 4 }),
      );
      const lines = async () => (await readFile(file, "utf8")).split("\n").filter((l) => l !== "");
      writer.write(records[0]!);
      await writer.drain();
      assert.equal((await lines()).length, 0, "a partial batch stays buffered");
      writer.write(records[1]!);
      writer.write(records[2]!);
      writer.write(records[3]!);
      await writer.drain();
      assert.equal((await lines()).length, 4, "full batches reach the file before close");
      writer.write(records[4]!);
      await writer.close();
      await writer.close();
      const done = await lines();
      assert.equal(writer.recordsWritten, 5);
      assert.deepEqual(
        done.map((l) => JSON.parse(l).metadata.session_num),
        [0, 1, 2, 3, 4],
      );
      assert.deepEqual(
        done,
        records.map((r) => formatRecordLine(r)),
      );
      assert.throws(() => writer.write(records[0]!), /after close/);
    });
  });

  it("hands a lone record to the file soon after it finishes, without waiting for its batch or close", async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, PROFILE_EXPORT_JSONL);
      const writer = await JsonlRecordWriter.open(file, { flushMs: 5 });
      writer.write(makeRecord({ session: 7, startMs: 0, chunksMs: [5], output: 1 }));
      // Whatever the machine's load, the line arrives without another write, a drain or a close.
      for (let i = 0; i < 500 && (await readFile(file, "utf8")) === ""; i++)
        await new Promise((r) => setTimeout(r, 10));
      const text = await readFile(file, "utf8");
      assert.equal(JSON.parse(text).metadata.session_num, 7);
      assert.ok(text.endsWith("\n"));
      await writer.close();
    });
  });

  it("reuses the metrics the collector computed", async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, PROFILE_EXPORT_JSONL);
      const writer = await JsonlRecordWriter.open(file);
      const c = new MetricsCollector();
      for (const r of smallRun()) writer.write(r, c.add(r));
      await writer.close();
      const text = await readFile(file, "utf8");
      assert.equal(
        text,
        `${smallRun()
          .map((r) => formatRecordLine(r))
          .join("\n")}\n`,
      );
    });
  });

  it("replaces an old file", async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, PROFILE_EXPORT_JSONL);
      await writeFile(file, "stale line from an earlier run\n");
      const writer = await JsonlRecordWriter.open(file);
      writer.write(smallRun()[0]!);
      await writer.close();
      assert.equal(await readFile(file, "utf8"), `${formatRecordLine(smallRun()[0]!)}\n`);
    });
  });

  it("in blocking mode, has each full batch in the file when write returns", async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, PROFILE_EXPORT_JSONL);
      const writer = await JsonlRecordWriter.open(file, { batchSize: 2, blocking: true });
      const records = smallRun();
      for (const r of records) writer.write(r);
      assert.equal(
        readFileSync(file, "utf8"),
        `${records
          .slice(0, 2)
          .map((r) => formatRecordLine(r))
          .join("\n")}\n`,
      );
      await writer.close();
      assert.equal(await readFile(file, "utf8"), `${records.map((r) => formatRecordLine(r)).join("\n")}\n`);
    });
  });

  for (const blocking of [false, true]) {
    it(`reports a failed write on the next call${blocking ? " (blocking)" : ""}`, {
      skip: !existsSync("/dev/full"),
    }, async () => {
      // Every write to /dev/full fails with ENOSPC.
      const writer = await JsonlRecordWriter.open("/dev/full", { batchSize: 1, blocking });
      writer.write(smallRun()[0]!);
      const isFileWrite = (e: unknown) => e instanceof ServelabError && e.code === "FILE_WRITE";
      await assert.rejects(writer.drain(), isFileWrite);
      assert.throws(() => writer.write(smallRun()[1]!), isFileWrite);
      await assert.rejects(writer.close(), isFileWrite);
    });
  }

  for (const blocking of [false, true]) {
    it(`on a full disk, fails with FILE_WRITE and leaves only whole lines${blocking ? " (blocking)" : ""}`, async () => {
      await withTempDir(async (dir) => {
        // A 4 KiB file-size limit (SIGXFSZ ignored, so writes past it fail with EFBIG, as a full disk fails them).
        const file = join(dir, PROFILE_EXPORT_JSONL);
        const script = `
          import { JsonlRecordWriter } from "./src/metrics/exporters.ts";
          import { makeRecord } from "./src/metrics/record-fixtures.ts";
          const w = await JsonlRecordWriter.open(${JSON.stringify(file)}, { batchSize: 3, blocking: ${blocking} });
          try {
            for (let i = 0; i < 200; i++) {
              w.write(makeRecord({ session: i, startMs: i, chunksMs: [i + 1, i + 2, i + 3], output: 3 }));
              await w.drain();
            }
            await w.close();
            console.log("no failure");
          } catch (e) { console.log(e.code); }`;
        const r = spawnSync(
          "bash",
          ["-c", 'ulimit -f 4; trap "" XFSZ; exec node --import tsx --input-type=module -e "$0"', script],
          {
            cwd: REPO_ROOT,
            encoding: "utf8",
          },
        );
        assert.equal(r.stdout.trim(), "FILE_WRITE", r.stderr);
        const text = await readFile(file, "utf8");
        assert.ok(text.length > 0 && text.length <= 4096, `${text.length} bytes`);
        assert.ok(text.endsWith("\n"), "a truncated last line");
        for (const line of text.split("\n").slice(0, -1)) JSON.parse(line);
      });
    });
  }

  it("reports a file it cannot create", async () => {
    await withTempDir(async (dir) => {
      const blocker = join(dir, "not-a-dir");
      await writeFile(blocker, "");
      await assert.rejects(
        JsonlRecordWriter.open(join(blocker, PROFILE_EXPORT_JSONL)),
        (e: unknown) =>
          e instanceof ServelabError && e.code === "FILE_WRITE" && e.message.includes("not-a-dir"),
      );
    });
  });
});

describe("summary files", () => {
  async function writeAll(dir: string): Promise<Buffer[]> {
    const c = new MetricsCollector({ goodput: parseGoodput("time_to_first_token:80") });
    const writer = await JsonlRecordWriter.open(join(dir, PROFILE_EXPORT_JSONL));
    for (const r of smallRun()) writer.write(r, c.add(r));
    await writer.close();
    const paths = await writeAiperfSummaryFiles(dir, c.finish(), context(c));
    assert.deepEqual(paths, { json: join(dir, PROFILE_EXPORT_JSON), csv: join(dir, PROFILE_EXPORT_CSV) });
    return Promise.all(
      [PROFILE_EXPORT_JSON, PROFILE_EXPORT_CSV, PROFILE_EXPORT_JSONL].map((f) => readFile(join(dir, f))),
    );
  }

  it("are byte-identical for the same records, and leave no temp files", async () => {
    await withTempDir(async (dir) => {
      const a = await writeAll(join(dir, "a"));
      const b = await writeAll(join(dir, "b"));
      for (let i = 0; i < a.length; i++) assert.ok(a[i]!.equals(b[i]!), `file ${i} differs`);
      assert.deepEqual(
        (await readdir(join(dir, "a"))).sort(),
        [PROFILE_EXPORT_JSONL, PROFILE_EXPORT_JSON, PROFILE_EXPORT_CSV].sort(),
      );
      assert.equal(JSON.parse(a[0]!.toString()).good_request_count.avg, 1);
    });
  });
});

describe("naiveLocalIsoTimestamp", () => {
  it("prints like Python's datetime.isoformat()", () => {
    assert.equal(
      naiveLocalIsoTimestamp(new Date(2026, 10, 25, 20, 23, 11, 482)),
      "2026-11-25T20:23:11.482000",
    );
    assert.equal(naiveLocalIsoTimestamp(new Date(2026, 0, 2, 3, 4, 5, 0)), "2026-01-02T03:04:05");
    assert.throws(() => naiveLocalIsoTimestamp(new Date(Number.NaN)), RangeError);
  });
});
