/**
 * The discrete-event kernel's agenda: callbacks ordered by virtual time (ms), ties broken by insertion order, so
 * simultaneous events always run in the same order and runs are reproducible.
 */
export class EventQueue {
  private times: number[] = [];
  private seqs: number[] = [];
  private fns: (() => void)[] = [];
  private nextSeq = 0;
  /** Pre-sorted events (see `stream`): their times in run order, the callers' indices, the next one to run. */
  private streamTimes = new Float64Array(0);
  private streamOrder = new Int32Array(0);
  private streamFn: (i: number) => void = () => {};
  private streamNext = 0;
  /** Virtual time of the event being run (or last run). */
  now = 0;
  /** Events run so far. */
  ran = 0;

  /** Events still to run. */
  get size(): number {
    return this.fns.length + this.streamTimes.length - this.streamNext;
  }

  /**
   * Schedules a batch of events known up front (a trace's arrivals) as one stream: event i at `times[i]` runs
   * `fn(i)`, in time order, and before any event scheduled with `at` for the same time, as if they had all been
   * scheduled first. They stay off the heap, so it only holds the few events in flight and the hot ones (engine
   * steps) cost a few comparisons instead of a walk down a heap of every future arrival.
   */
  stream(times: readonly number[], fn: (i: number) => void): void {
    if (this.streamNext < this.streamTimes.length) throw new Error("the event queue already has a stream");
    for (const t of times) {
      if (!(t >= this.now)) throw new RangeError(`cannot schedule at ${t} ms, before now (${this.now} ms)`);
    }
    // Stable: equal times keep the callers' order.
    const order = Int32Array.from(times.keys()).sort((a, b) => times[a]! - times[b]! || a - b);
    this.streamOrder = order;
    this.streamTimes = Float64Array.from(order, (i) => times[i]!);
    this.streamFn = fn;
    this.streamNext = 0;
  }

  at(time: number, fn: () => void): void {
    if (!(time >= this.now))
      throw new RangeError(`cannot schedule at ${time} ms, before now (${this.now} ms)`);
    this.times.push(time);
    this.seqs.push(this.nextSeq++);
    this.fns.push(fn);
    this.up(this.fns.length - 1);
  }

  after(delayMs: number, fn: () => void): void {
    this.at(this.now + delayMs, fn);
  }

  /** Runs events in order until none is left (or `until` returns true after an event). */
  run(until?: () => boolean): void {
    for (;;) {
      const k = this.streamNext;
      const streamDue = k < this.streamTimes.length;
      if (streamDue && (this.fns.length === 0 || this.streamTimes[k]! <= this.times[0]!)) {
        this.streamNext = k + 1;
        this.now = this.streamTimes[k]!;
        this.streamFn(this.streamOrder[k]!);
      } else if (this.fns.length > 0) {
        this.pop()();
      } else {
        return;
      }
      this.ran++;
      if (until?.()) return;
    }
  }

  private less(i: number, j: number): boolean {
    const a = this.times[i]!;
    const b = this.times[j]!;
    return a < b || (a === b && this.seqs[i]! < this.seqs[j]!);
  }

  private swap(i: number, j: number): void {
    // Plain temporaries: destructuring swaps would allocate an array per swap on the hottest path.
    const t = this.times[i]!;
    this.times[i] = this.times[j]!;
    this.times[j] = t;
    const q = this.seqs[i]!;
    this.seqs[i] = this.seqs[j]!;
    this.seqs[j] = q;
    const f = this.fns[i]!;
    this.fns[i] = this.fns[j]!;
    this.fns[j] = f;
  }

  private up(i: number): void {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) return;
      this.swap(i, p);
      i = p;
    }
  }

  private pop(): () => void {
    const fn = this.fns[0]!;
    this.now = this.times[0]!;
    const last = this.fns.length - 1;
    this.swap(0, last);
    this.times.pop();
    this.seqs.pop();
    this.fns.pop();
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.fns.length && this.less(l, m)) m = l;
      if (r < this.fns.length && this.less(r, m)) m = r;
      if (m === i) return fn;
      this.swap(i, m);
      i = m;
    }
  }
}
