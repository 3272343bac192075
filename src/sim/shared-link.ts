import type { EventQueue } from "./event-queue.ts";

interface Transfer {
  remaining: number;
  done: () => void;
}

/**
 * A link whose bandwidth is shared equally by the transfers in flight (processor sharing): one transfer gets the
 * whole link, two overlapping transfers each get half, so overlapping KV hand-overs slow each other down.
 */
export class SharedLink {
  readonly bytesPerMs: number;
  private readonly queue: EventQueue;
  private active: Transfer[] = [];
  private lastUpdate = 0;
  private generation = 0;
  /** Total bytes moved, for reporting. */
  bytes = 0;

  constructor(queue: EventQueue, gigabytesPerSecond: number) {
    if (!(gigabytesPerSecond > 0))
      throw new RangeError(`link bandwidth must be positive, got ${gigabytesPerSecond}`);
    this.queue = queue;
    this.bytesPerMs = gigabytesPerSecond * 1e6;
  }

  /** Starts moving `bytes`; `done` runs when the last byte arrives. */
  send(bytes: number, done: () => void): void {
    this.advance();
    this.bytes += bytes;
    this.active.push({ remaining: bytes, done });
    this.reschedule();
  }

  private advance(): void {
    const now = this.queue.now;
    if (this.active.length > 0) {
      const each = ((now - this.lastUpdate) * this.bytesPerMs) / this.active.length;
      for (const t of this.active) t.remaining -= each;
    }
    this.lastUpdate = now;
  }

  private reschedule(): void {
    if (this.active.length === 0) return;
    const generation = ++this.generation;
    let first = this.active[0]!;
    for (const t of this.active) if (t.remaining < first.remaining) first = t;
    const ms = Math.max(0, (first.remaining * this.active.length) / this.bytesPerMs);
    this.queue.after(ms, () => {
      // A later send re-planned the link; this wake-up is stale.
      if (generation !== this.generation) return;
      this.advance();
      const finished = this.active.filter((t) => t.remaining <= 1e-6 * this.bytesPerMs);
      this.active = this.active.filter((t) => !finished.includes(t));
      this.reschedule();
      for (const t of finished) t.done();
    });
  }
}
