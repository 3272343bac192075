import { KV_RELEASE_PATH, type RemotePrefill } from "./kv-handover.ts";

interface Lease {
  release: () => void;
  timer: NodeJS.Timeout;
}

/**
 * The blocks a prefill worker holds for decode workers, each until its decode worker says it has read them
 * (`release`) or its lease runs out. Timers do not keep the process alive.
 */
export class KvLeases {
  readonly engineId: string;
  private readonly leaseWallMs: number;
  private readonly leases = new Map<string, Lease>();
  released = 0;
  expired = 0;

  constructor(engineId: string, leaseWallMs: number) {
    this.engineId = engineId;
    this.leaseWallMs = leaseWallMs;
  }

  get held(): number {
    return this.leases.size;
  }

  hold(requestId: string, release: () => void): void {
    const timer = setTimeout(() => {
      if (this.leases.get(requestId)?.timer !== timer) return;
      this.leases.delete(requestId);
      this.expired++;
      release();
    }, this.leaseWallMs);
    timer.unref();
    this.leases.set(requestId, { release, timer });
  }

  /** Gives a request's blocks back; false when this worker holds none for it (never did, released, expired). */
  release(engineId: string, requestId: string): boolean {
    if (engineId !== this.engineId) return false;
    const lease = this.leases.get(requestId);
    if (!lease) return false;
    clearTimeout(lease.timer);
    this.leases.delete(requestId);
    this.released++;
    lease.release();
    return true;
  }

  /** Drops every lease without giving blocks back (the engine is going away). */
  clear(): void {
    for (const l of this.leases.values()) clearTimeout(l.timer);
    this.leases.clear();
  }
}

/**
 * Tells a servelab prefill worker that its blocks for `remote` have been read. Best effort: a notice that fails
 * or times out is dropped, and the prefill worker's lease frees the blocks later instead.
 */
export function notifyKvRead(remote: RemotePrefill, timeoutMs = 2000): void {
  const host = remote.host.includes(":") && !remote.host.startsWith("[") ? `[${remote.host}]` : remote.host;
  fetch(`http://${host}:${remote.port}${KV_RELEASE_PATH}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ remote_engine_id: remote.engineId, remote_request_id: remote.requestId }),
    signal: AbortSignal.timeout(timeoutMs),
  })
    .then((res) => res.body?.cancel())
    .catch(() => {});
}
