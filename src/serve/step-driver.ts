import type { EngineRequest, EngineWorker, StepSink } from "../engine/engine-worker.ts";

/**
 * How late a timer may fire and the engine still keep its own timeline. Timers fire up to about a millisecond
 * late; starting each step at the previous step's planned end stops that error from adding up over thousands of
 * steps. A larger lag means the process itself stalled (GC, a busy loop), and the engine stalls with it.
 */
const TIMER_SLACK_MS = 2;
/** A timer that fires this much early is re-armed for the rest. */
const EARLY_MS = 0.25;

/**
 * Runs an EngineWorker on the wall clock: plans a step, sleeps its modelled duration divided by the speed-up ratio,
 * then applies it, so the sink hears of each step's tokens when the step ends. Idle while the engine has nothing
 * to do; `wake` after each arrival.
 *
 * An exception from the engine, the step-time model or the sink leaves the engine mid-step with no safe way back,
 * so the driver stops for good and reports it through `onFailure` instead of letting it escape a timer callback
 * and end the process.
 */
export class WallClockDriver {
  private readonly worker: EngineWorker;
  private readonly sink: StepSink;
  private readonly speedupRatio: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private active = false;
  private stopped = false;
  private deadline = 0;
  private readonly removals: EngineRequest[] = [];
  private readonly onFailure: (e: unknown) => void;
  /** Steps applied so far. */
  steps = 0;
  /** What stopped the engine, once something has. */
  failure: unknown;

  constructor(
    worker: EngineWorker,
    sink: StepSink,
    speedupRatio: number,
    onFailure: (e: unknown) => void,
    now = () => performance.now(),
  ) {
    if (!(speedupRatio > 0 && Number.isFinite(speedupRatio)))
      throw new RangeError(`speed-up ratio must be a positive number, got ${speedupRatio}`);
    this.worker = worker;
    this.sink = sink;
    this.speedupRatio = speedupRatio;
    this.onFailure = onFailure;
    this.now = now;
  }

  /** Starts stepping if idle. Deferred a tick so requests arriving together share the first step. */
  wake(): void {
    if (this.active || this.stopped) return;
    this.active = true;
    this.timer = setImmediate(() => this.guard(() => this.begin(this.now())));
  }

  /** Takes a request out of the engine now, or right after the step in flight (whose tokens for it still arrive). */
  remove(req: EngineRequest): void {
    if (this.worker.isStepping) this.removals.push(req);
    else this.worker.cancel(req);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) {
      clearTimeout(this.timer as NodeJS.Timeout);
      clearImmediate(this.timer as NodeJS.Immediate);
    }
    this.timer = undefined;
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.failure = e;
      this.stop();
      this.onFailure(e);
    }
  }

  private begin(startMs: number): void {
    this.timer = undefined;
    if (this.stopped) return;
    const ms = this.worker.beginStep();
    if (ms === null) {
      this.active = false;
      return;
    }
    if (!(ms >= 0 && Number.isFinite(ms)))
      throw new RangeError(`step-time model returned ${ms} ms for a step; expected a finite duration >= 0`);
    this.deadline = startMs + ms / this.speedupRatio;
    this.arm();
  }

  private arm(): void {
    const wait = this.deadline - this.now();
    // A zero-length wait still yields to I/O, so arrivals and disconnects are seen between back-to-back steps.
    const fire = () => this.guard(() => this.fire());
    this.timer = wait > 0 ? setTimeout(fire, wait) : setImmediate(fire);
  }

  private fire(): void {
    this.timer = undefined;
    if (this.stopped) return;
    const now = this.now();
    if (now < this.deadline - EARLY_MS) {
      this.arm();
      return;
    }
    this.worker.endStep(this.sink);
    this.steps++;
    for (const req of this.removals.splice(0)) this.worker.cancel(req);
    this.begin(now - this.deadline > TIMER_SLACK_MS ? now : this.deadline);
  }
}
