import { request } from "undici";

export interface HealthTarget {
  id: string;
  url: string;
}

export interface HealthCheckerOptions {
  intervalMs: number;
  timeoutMs: number;
  /** Called when a worker's health changes (and once per worker at the first check). */
  onChange(id: string, healthy: boolean, reason: string): void;
}

/**
 * Polls each worker's `GET /health` (vLLM, SGLang, TRT-LLM and the mock all serve it: 200 = ready) and reports
 * changes. A worker also turns unhealthy at once when a forwarded request cannot reach it (`markDown`); the next
 * successful poll brings it back, so a restarted worker rejoins on its own.
 */
export class HealthChecker {
  private readonly state = new Map<string, boolean>();
  private readonly targets = new Map<string, HealthTarget>();
  private readonly inhibitedUntil = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(private readonly opts: HealthCheckerOptions) {}

  add(t: HealthTarget): void {
    this.targets.set(t.id, t);
  }

  remove(id: string): void {
    this.targets.delete(id);
    this.state.delete(id);
  }

  healthy(id: string): boolean {
    return this.state.get(id) === true;
  }

  /**
   * Takes a worker out for `ms` whatever its health checks say (Dynamo inhibits a worker that failed a request
   * for 5 s): a worker that hangs may still answer `/health`.
   */
  inhibit(id: string, ms: number, reason: string): void {
    this.inhibitedUntil.set(id, Date.now() + ms);
    this.markDown(id, reason);
  }

  markDown(id: string, reason: string): void {
    if (!this.targets.has(id) || this.state.get(id) === false) return;
    this.state.set(id, false);
    this.opts.onChange(id, false, reason);
  }

  /** One round of checks, all workers in parallel. */
  async checkAll(): Promise<void> {
    await Promise.all([...this.targets.values()].map((t) => this.check(t)));
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const tick = () => {
      this.checkAll().finally(() => {
        if (this.running) this.timer = setTimeout(tick, this.opts.intervalMs);
      });
    };
    this.timer = setTimeout(tick, this.opts.intervalMs);
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
  }

  private async check(t: HealthTarget): Promise<void> {
    let ok = false;
    let reason = "";
    try {
      const res = await request(`${t.url}/health`, {
        method: "GET",
        headersTimeout: this.opts.timeoutMs,
        bodyTimeout: this.opts.timeoutMs,
      });
      await res.body.dump();
      ok = res.statusCode === 200;
      reason = `GET /health answered ${res.statusCode}`;
    } catch (e) {
      reason = `GET /health failed: ${(e as Error).message}`;
    }
    if (!this.targets.has(t.id)) return;
    if (ok && (this.inhibitedUntil.get(t.id) ?? 0) > Date.now()) return;
    if (this.state.get(t.id) === ok) return;
    this.state.set(t.id, ok);
    this.opts.onChange(t.id, ok, reason);
  }
}
