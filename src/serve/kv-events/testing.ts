import type { RouterEvent } from "../../kv/events.ts";
import type { KvApplyStatus, KvEventSink } from "./subscriber.ts";

export { waitFor } from "../../testing/wait.ts";

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
