import type { RouterEvent } from "../../kv/events.ts";
import type { KvApplyStatus, KvEventSink } from "./subscriber.ts";

/** Polls until `cond` holds; rejects naming `what` after `timeoutMs` (a bound on hangs, not a timing assertion). */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 4000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
export const fromHex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h.replace(/\s+/g, ""), "hex"));

/** A sink that records every event, answering "ok". */
export function recordingSink(): { sink: KvEventSink; events: RouterEvent[] } {
  const events: RouterEvent[] = [];
  return {
    events,
    sink: (ev): KvApplyStatus => {
      events.push(ev);
      return "ok";
    },
  };
}
