import { setImmediate as nextTurn, setTimeout as sleep } from "node:timers/promises";

/**
 * Resolves when `now()` reaches `targetMs`. Timers fire late by a millisecond or more, so this sleeps on a timer
 * only until shortly before the target and covers the rest by yielding to the event loop turn by turn, which
 * keeps sends within a fraction of a millisecond of their schedule while other requests' I/O still runs.
 */
export async function sleepUntil(targetMs: number, now: () => number, spinMs = 2): Promise<void> {
  const coarse = targetMs - now() - spinMs;
  if (coarse > 1) await sleep(coarse);
  while (now() < targetMs) await nextTurn();
}
