/**
 * Polls `cond` every `intervalMs` until it holds; rejects naming `what` after about `boundMs` of polls. A bound on
 * hangs, counted in polls rather than read from a clock: on a loaded machine it only waits longer, never asserts
 * on how long anything took.
 */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  what: string,
  boundMs = 5000,
  intervalMs = 10,
): Promise<void> {
  for (let polls = Math.ceil(boundMs / intervalMs); !(await cond()); polls--) {
    if (polls <= 0) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
