/**
 * Worker-thread side of ExportThread: computes each record's metrics, appends its line to `profile_export.jsonl`
 * and keeps the run's statistics, off the thread that produces the records.
 */
import { parentPort, receiveMessageOnPort, workerData } from "node:worker_threads";
import { isServelabError } from "../errors.ts";
import { MetricsCollector } from "./collector.ts";
import type { ExportReply, ExportRequest, ExportSetup } from "./export-thread.ts";
import { JsonlRecordWriter } from "./exporters.ts";
import { unpackRecords } from "./record-batch.ts";

const setup = (workerData as { data: ExportSetup }).data;
const port = parentPort!;
const reply = (m: ExportReply) => port.postMessage(m);
const fail = (e: unknown) =>
  reply({
    type: "error",
    code: isServelabError(e) ? e.code : undefined,
    message: e instanceof Error ? e.message : String(e),
    details: isServelabError(e) ? [...e.details] : [],
  });

try {
  const collector = new MetricsCollector({ goodput: setup.goodput });
  const jsonl = await JsonlRecordWriter.open(setup.jsonlPath, {
    blocking: true,
    ...(setup.ids ? { ids: setup.ids } : {}),
  });
  let failed = false;
  port.on("message", async (m: ExportRequest) => {
    if (failed) return;
    try {
      let next: ExportRequest | undefined = m;
      while (next?.type === "records") {
        for (const rec of unpackRecords(next.batch)) jsonl.write(rec, collector.add(rec));
        next = receiveMessageOnPort(port)?.message as ExportRequest | undefined;
      }
      if (next === undefined) {
        // Caught up with the simulation: sort in the spare time what `finish` would sort at the end. A thread
        // that is behind skips this, since sorting in pieces and merging them costs more than one sort at the end.
        collector.presort();
        return;
      }
      await jsonl.close();
      reply({ type: "done", summary: collector.finish(), errorSummary: collector.errorSummary() });
      port.close();
    } catch (e) {
      failed = true;
      fail(e);
      await jsonl.close().catch(() => {});
      port.close();
    }
  });
} catch (e) {
  fail(e);
  port.close();
}
