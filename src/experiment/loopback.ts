import { join } from "node:path";
import { ServelabError } from "../errors.ts";
import { writeFileAtomic } from "../io/atomic-write.ts";
import type { RunningStack } from "../serve/stack/run-stack.ts";
import { startStack } from "../serve/stack/run-stack.ts";
import { planStack } from "../serve/stack/stack-plan.ts";
import type { Backend } from "./backend.ts";
import { replayArm, traceCache } from "./endpoint.ts";
import { type LiveTarget, liveHitRate, liveTargets } from "./live-targets.ts";

export interface LoopbackBackendOptions {
  recipePath: string;
  model: string;
  cliCommand: string;
  /** `servelab up --scale`: replicas and DP ranks multiplied by this. */
  scale: number;
  /**
   * Engine steps run this many times faster than modelled, and the trace is replayed as many times faster, so
   * the engines see the load the recipe describes on a compressed clock: measured times are this many times shorter.
   */
  speedupRatio: number;
  /** Replay only the first N requests of the trace (a quick run). */
  requests?: number | undefined;
  migrationLimit?: number;
  /** Each line a stack process prints (default: stderr lines only, prefixed). */
  onOutput?: (proc: string, line: string, stream: "stdout" | "stderr") => void;
}

/**
 * The loopback stack as a backend: for each arm run, `servelab up` of that arm (real worker and frontend
 * processes), the load generator replaying the run's trace through the frontend, then teardown, one run after
 * another so that arms never share the machine.
 */
export function loopbackBackend(opts: LoopbackBackendOptions): Backend {
  return {
    kind: "loopback",
    async run(requests, hooks) {
      const rowsOf = traceCache();
      for (const req of requests) {
        if (hooks.stop?.aborted)
          throw new ServelabError("INTERRUPTED", `stopped before ${req.label}`, [`stopped: ${req.label}`]);
        const plan = planStack(req.recipe, req.arm, opts.scale);
        const stack = await startStack({
          plan,
          recipePath: opts.recipePath,
          speedupRatio: opts.speedupRatio,
          port: 0,
          frontendArgs: ["--migration-limit", String(opts.migrationLimit ?? 0)],
          onOutput: (proc, line, stream) => {
            if (opts.onOutput) opts.onOutput(proc.id, line, stream);
            else if (stream === "stderr") process.stderr.write(`[${req.arm}/${proc.id}] ${line}\n`);
          },
        });
        const stopped = () => void stack.stop();
        hooks.stop?.addEventListener("abort", stopped, { once: true });
        try {
          await replayArm(
            stack.endpoint,
            req,
            await rowsOf(req),
            {
              model: opts.model,
              cliCommand: opts.cliCommand,
              timeFactor: opts.speedupRatio,
              ...(opts.requests === undefined ? {} : { limit: opts.requests }),
              info: {
                backend: "loopback",
                scale: opts.scale,
                speedup_ratio: opts.speedupRatio,
                ...(opts.requests === undefined ? {} : { requests: opts.requests }),
              },
            },
            hooks,
          );
          await writeLiveStats(req.dir, stack, opts);
        } finally {
          hooks.stop?.removeEventListener("abort", stopped);
          await stack.stop();
        }
        hooks.onDone?.(req);
      }
    },
  };
}

/** The file beside a live run's artifacts: how the stack was shrunk and what each rank served. */
export const LIVE_STATS_FILE = "servelab_live.json";

/**
 * What each worker rank served, from the workers' own metrics, read once the replay is over and before teardown:
 * the live counterpart of `servelab_sim.json`'s targets and prefix hit rate.
 */
async function writeLiveStats(dir: string, stack: RunningStack, opts: LoopbackBackendOptions): Promise<void> {
  const get = async (url: string) => (await fetch(url, { signal: AbortSignal.timeout(10_000) })).text();
  const targets: LiveTarget[] = [];
  const admitMs: Record<string, number> = {};
  for (const w of stack.workers) {
    targets.push(
      ...liveTargets(w.id, w.kind === "frontend" ? "aggregated" : w.kind, await get(`${w.url}/metrics`)),
    );
    admitMs[w.id] = meanAdmitMs(await get(`${w.url}/servelab/requests`));
  }
  const tokenize = histogramMean(
    await get(`${stack.endpoint}/metrics`),
    "dynamo_frontend_tokenizer_latency_ms",
  );
  const stats = {
    backend: "loopback",
    recipe: stack.plan.recipe,
    arm: stack.plan.arm,
    scale: opts.scale,
    speedup_ratio: opts.speedupRatio,
    scaling: stack.plan.scaling,
    prefix_cache_hit_rate: liveHitRate(targets),
    targets,
    // What the live path spends that the simulator does not model: the frontend tokenizing each prompt, and each
    // worker tokenizing and hashing it again between its arrival and the engine's queue.
    overheads_ms: { frontend_tokenize_mean: tokenize, worker_admit_mean: admitMs },
  };
  await writeFileAtomic(join(dir, LIVE_STATS_FILE), [`${JSON.stringify(stats, null, 2)}\n`]);
}

/** Mean of a histogram (sum / count over its series) in a Prometheus text page; null when it has no samples. */
function histogramMean(text: string, name: string): number | null {
  let sum = 0;
  let count = 0;
  for (const m of text.matchAll(new RegExp(`^${name}_(sum|count)(?:\\{[^}]*\\})? (\\S+)$`, "gm"))) {
    if (m[1] === "sum") sum += Number(m[2]);
    else count += Number(m[2]);
  }
  return count === 0 ? null : sum / count;
}

/** Mean time from a request's arrival at a worker to its engine queue (tokenizing, hashing), from the request log. */
function meanAdmitMs(log: string): number {
  let total = 0;
  let n = 0;
  for (const line of log.split("\n")) {
    if (line === "") continue;
    const e = JSON.parse(line) as { arrival_ns: string | number; enqueued_ns: string | number };
    total += (Number(e.enqueued_ns) - Number(e.arrival_ns)) / 1e6;
    n++;
  }
  return n === 0 ? 0 : total / n;
}
