import { randomBytes } from "node:crypto";
import { createRng } from "../random.ts";

/**
 * Identifiers a record carries as AIPerf's do: a UUID per request (AIPerf sends uuid4 as X-Request-ID), and the
 * ids of the worker and record processor that handled it (strings such as `worker_f6f2013f`). One process does
 * both jobs here, so a run has one of each. Seeded, a run's ids are the same every time (the simulator); unseeded
 * they come from the system's random source (a live run).
 */
export interface RecordIds {
  workerId: string;
  recordProcessorId: string;
  /** The request's UUID. */
  requestUuid(): string;
}

function uuidFromBytes(b: Uint8Array): string {
  // Version 4, variant 10xx (RFC 9562).
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = Buffer.from(b).toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function recordIds(seed?: { seed: number; label: string }): RecordIds {
  const bytes = seed
    ? (() => {
        const rng = createRng(seed.seed, `record-ids/${seed.label}`);
        return (n: number) => Uint8Array.from({ length: n }, () => rng.int(256));
      })()
    : (n: number) => new Uint8Array(randomBytes(n));
  const hex8 = () => Buffer.from(bytes(4)).toString("hex");
  return {
    workerId: `worker_${hex8()}`,
    recordProcessorId: `record_processor_${hex8()}`,
    requestUuid: () => uuidFromBytes(bytes(16)),
  };
}

export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/**
 * The UUID of request `index` of a seeded run: the same request gets the same id in every arm that replays the
 * trace, whatever order the arms finish their requests in.
 */
export function seededRequestUuid(seed: number, index: number): string {
  const rng = createRng(seed, `request/${index}`);
  return uuidFromBytes(Uint8Array.from({ length: 16 }, () => rng.int(256)));
}
