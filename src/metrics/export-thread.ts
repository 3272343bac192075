import { open } from "node:fs/promises";
import { dirname } from "node:path";
import type { Worker } from "node:worker_threads";
import { type ErrorCode, ServelabError } from "../errors.ts";
import { makeDir } from "../io/make-dir.ts";
import { startThread } from "../threads.ts";
import type { AiperfSummary, ErrorSummaryEntry } from "./aiperf-metrics.ts";
import { MetricsCollector } from "./collector.ts";
import { JsonlRecordWriter, type RecordProcessIds } from "./exporters.ts";
import type { GoodputSlo } from "./goodput.ts";
import type { RequestRecord } from "./record.ts";
import { type RecordBatch, RecordPacker } from "./record-batch.ts";

export interface ExportSetup {
  jsonlPath: string;
  goodput: readonly GoodputSlo[];
  /** The worker and record processor the lines name. */
  ids?: RecordProcessIds;
}

export type ExportRequest = { type: "records"; batch: RecordBatch } | { type: "finish" };

export type ExportReply =
  | { type: "done"; summary: AiperfSummary; errorSummary: ErrorSummaryEntry[] }
  | { type: "error"; code: ErrorCode | undefined; message: string; details: string[] };

/** What a run does with its finished requests: their metrics, their lines in the file, the run's summary. */
export interface RecordExport {
  add(record: RequestRecord): void;
  /** Waits for every record's line to be in the file; returns the run's summary and error table. */
  finish(): Promise<{ summary: AiperfSummary; errorSummary: ErrorSummaryEntry[] }>;
}

/**
 * Requests below which a run exports on its own thread: starting a worker thread takes a few hundred milliseconds,
 * more than a short run spends on its records.
 */
const THREAD_MIN_RECORDS = 2000;

/** An export for a run of about `expectedRecords` requests: in a worker thread when the run is long enough. */
export async function startRecordExport(setup: ExportSetup, expectedRecords: number): Promise<RecordExport> {
  if (expectedRecords >= THREAD_MIN_RECORDS) return ExportThread.start(setup);
  const collector = new MetricsCollector({ goodput: setup.goodput });
  const jsonl = await JsonlRecordWriter.open(setup.jsonlPath, setup.ids ? { ids: setup.ids } : {});
  return {
    add: (record) => jsonl.write(record, collector.add(record)),
    finish: async () => {
      await jsonl.close();
      return { summary: collector.finish(), errorSummary: collector.errorSummary() };
    },
  };
}

/** Records handed over per message: few enough to keep the file current, enough to make messages cheap. */
const BATCH = 64;

/**
 * The metrics and `profile_export.jsonl` of a run, kept in a worker thread: the simulator produces records on one
 * core while their metrics, lines and statistics are computed on another, and the lines reach the file while the
 * simulation is still running instead of after it. Same results as a MetricsCollector plus a JsonlRecordWriter fed
 * in the same order.
 */
export class ExportThread implements RecordExport {
  private readonly worker: Worker;
  private readonly outcome: Promise<Extract<ExportReply, { type: "done" }>>;
  private readonly packer = new RecordPacker();

  private constructor(worker: Worker, outcome: Promise<Extract<ExportReply, { type: "done" }>>) {
    this.worker = worker;
    this.outcome = outcome;
  }

  /**
   * Starts the thread. The file is created here first, so a bad path fails at once; records added while the thread
   * boots wait in its message queue.
   */
  static async start(setup: ExportSetup): Promise<ExportThread> {
    try {
      await makeDir(dirname(setup.jsonlPath));
      await (await open(setup.jsonlPath, "w")).close();
    } catch (e) {
      throw new ServelabError("FILE_WRITE", `cannot write ${setup.jsonlPath}: ${(e as Error).message}`);
    }
    const worker = startThread(new URL("./export-worker.ts", import.meta.url), setup);
    const outcome = new Promise<Extract<ExportReply, { type: "done" }>>((resolve, reject) => {
      worker.on("message", (m: ExportReply) => {
        if (m.type === "done") resolve(m);
        else {
          reject(
            m.code
              ? new ServelabError(m.code, m.message, m.details)
              : new Error(`exporting records: ${m.message}`),
          );
        }
      });
      worker.on("error", reject);
      worker.on("exit", (code) => reject(new Error(`the record export thread exited with code ${code}`)));
    });
    // A failure is reported by `finish`; until then it must not count as unhandled.
    outcome.catch(() => {});
    return new ExportThread(worker, outcome);
  }

  /** Queues a finished request (copied: the caller may reuse it). */
  add(record: RequestRecord): void {
    this.packer.add(record);
    if (this.packer.count >= BATCH) this.flush();
  }

  private flush(): void {
    if (this.packer.count === 0) return;
    const batch = this.packer.take();
    this.worker.postMessage({ type: "records", batch } satisfies ExportRequest, [
      batch.numbers.buffer as ArrayBuffer,
    ]);
  }

  /** Waits for every record's line to be in the file; returns the run's summary and error table. */
  async finish(): Promise<{ summary: AiperfSummary; errorSummary: ErrorSummaryEntry[] }> {
    this.flush();
    this.worker.postMessage({ type: "finish" } satisfies ExportRequest);
    try {
      const { summary, errorSummary } = await this.outcome;
      return { summary, errorSummary };
    } finally {
      await this.worker.terminate();
    }
  }
}
