import type { EventQueue } from "./event-queue.ts";

/** One direction of one GPU's interconnect port (its NVLink egress, say), with its bandwidth in bytes per ms. */
export interface Link {
  readonly name: string;
  readonly bytesPerMs: number;
}

interface Flow {
  remaining: number;
  links: readonly Link[];
  rate: number;
  done: () => void;
}

/** A link of `gigabytesPerSecond` (GB/s = 1e6 bytes per ms). */
export function link(name: string, gigabytesPerSecond: number): Link {
  if (!(gigabytesPerSecond > 0 && Number.isFinite(gigabytesPerSecond)))
    throw new RangeError(`link ${name}: bandwidth must be a positive number, got ${gigabytesPerSecond}`);
  return { name, bytesPerMs: gigabytesPerSecond * 1e6 };
}

/**
 * Transfers over shared links, each crossing every link on its path (a KV hand-over leaves the prefill rank's GPU
 * and enters the decode rank's). Bandwidth is shared max-min fairly: every transfer gets an equal share of its
 * tightest link, and what a transfer held back elsewhere cannot use is shared by the others (progressive
 * filling). One link alone is processor sharing: two overlapping transfers each get half.
 */
export class LinkNetwork {
  private readonly queue: EventQueue;
  private flows: Flow[] = [];
  private lastUpdate = 0;
  private generation = 0;
  /** Total bytes moved, for reporting. */
  bytes = 0;

  constructor(queue: EventQueue) {
    this.queue = queue;
  }

  /** Starts moving `bytes` over `links`; `done` runs when the last byte arrives. */
  send(bytes: number, links: readonly Link[], done: () => void): void {
    if (links.length === 0) throw new RangeError("a transfer needs at least one link");
    this.advance();
    this.bytes += bytes;
    this.flows.push({ remaining: bytes, links, rate: 0, done });
    this.reschedule();
  }

  /** Transfers in flight. */
  get active(): number {
    return this.flows.length;
  }

  private advance(): void {
    const elapsed = this.queue.now - this.lastUpdate;
    if (elapsed > 0) for (const f of this.flows) f.remaining -= elapsed * f.rate;
    this.lastUpdate = this.queue.now;
  }

  /** Max-min fair rates by progressive filling: the tightest link fixes its flows' rates, then the next. */
  private assignRates(): void {
    const residual = new Map<Link, number>();
    const unfixed = new Map<Link, number>();
    for (const f of this.flows)
      for (const l of f.links) {
        residual.set(l, l.bytesPerMs);
        unfixed.set(l, (unfixed.get(l) ?? 0) + 1);
      }
    let open = this.flows.slice();
    while (open.length > 0) {
      let tightest: Link | undefined;
      let share = Number.POSITIVE_INFINITY;
      for (const [l, n] of unfixed) {
        if (n === 0) continue;
        const s = residual.get(l)! / n;
        if (s < share) {
          share = s;
          tightest = l;
        }
      }
      const fixed = open.filter((f) => f.links.includes(tightest!));
      for (const f of fixed) {
        f.rate = share;
        for (const l of f.links) {
          residual.set(l, residual.get(l)! - share);
          unfixed.set(l, unfixed.get(l)! - 1);
        }
      }
      open = open.filter((f) => !fixed.includes(f));
    }
  }

  private reschedule(): void {
    if (this.flows.length === 0) return;
    this.assignRates();
    const generation = ++this.generation;
    let ms = Number.POSITIVE_INFINITY;
    for (const f of this.flows) ms = Math.min(ms, Math.max(0, f.remaining) / f.rate);
    this.queue.after(ms, () => {
      // A later send re-planned the network; this wake-up is stale.
      if (generation !== this.generation) return;
      this.advance();
      // Within a nanosecond's worth of bytes of the end counts as arrived (floating-point residue).
      const finished = this.flows.filter((f) => f.remaining <= 1e-6 * f.rate);
      this.flows = this.flows.filter((f) => !finished.includes(f));
      this.reschedule();
      for (const f of finished) f.done();
    });
  }
}
