/**
 * The discrete-event kernel's agenda: callbacks ordered by virtual time (ms), ties broken by insertion order, so
 * simultaneous events always run in the same order and runs are reproducible.
 */
export class EventQueue {
  private times: number[] = [];
  private seqs: number[] = [];
  private fns: (() => void)[] = [];
  private nextSeq = 0;
  /** Virtual time of the event being run (or last run). */
  now = 0;

  get size(): number {
    return this.fns.length;
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
    while (this.fns.length > 0) {
      const fn = this.pop();
      fn();
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
