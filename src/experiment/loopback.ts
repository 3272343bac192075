import { ServelabError } from "../errors.ts";
import { startStack } from "../serve/stack/run-stack.ts";
import { planStack } from "../serve/stack/stack-plan.ts";
import type { Backend } from "./backend.ts";
import { replayArm, traceCache } from "./endpoint.ts";

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
        } finally {
          hooks.stop?.removeEventListener("abort", stopped);
          await stack.stop();
        }
        hooks.onDone?.(req);
      }
    },
  };
}
