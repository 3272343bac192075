import { Worker } from "node:worker_threads";

/**
 * Starts a worker thread running the TypeScript module at `entry` (a URL, usually `new URL("./x.ts",
 * import.meta.url)`), which reads `workerData.data`.
 */
export function startThread(entry: URL, data: unknown): Worker {
  return new Worker(new URL("./thread-boot.mjs", import.meta.url), {
    workerData: { entry: entry.href, data },
  });
}
