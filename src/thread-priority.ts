import { readlinkSync } from "node:fs";
import { setPriority } from "node:os";

/**
 * Lowers the calling thread's scheduling priority to `nice` (default 19, the lowest). For helper threads of a load generator
 * (building bodies, writing inputs.json): on a small machine they would otherwise take a core from the thread that
 * sends and stamps, or from the server under test, at the moments that make the tail of the measured latencies.
 * Linux keeps a nice value per thread, and `setpriority` given a thread id sets that thread's; elsewhere (no
 * `/proc/thread-self`) it does nothing.
 */
export function lowerThisThreadPriority(nice = 19): void {
  try {
    const tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
    if (Number.isSafeInteger(tid) && tid > 0) setPriority(tid, nice);
  } catch {
    // Not Linux, or not allowed: the thread keeps its priority.
  }
}
