import { type ChildProcess, spawn } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { request } from "undici";
import { ServelabError } from "../../errors.ts";
import { type DiscoveryInput, writeDiscovery } from "../frontend/discovery.ts";
import { EXIT_WITH_PARENT_ENV } from "./lifeline.ts";
import type { StackPlan } from "./stack-plan.ts";

const CLI = fileURLToPath(new URL("../../../bin/servelab.js", import.meta.url));

export interface StackOptions {
  plan: StackPlan;
  recipePath: string;
  speedupRatio?: number;
  /** The frontend's port (0: any free one). Default 8000. */
  port?: number;
  perfModel?: string;
  /** Default: a file in the system's temporary directory named after the arm and this process. */
  discoveryFile?: string;
  /** Extra `servelab frontend` flags (migration, timeouts). */
  frontendArgs?: readonly string[];
  /** How long a process may take to become healthy. Default 120 s (a loaded 2-core machine starts slowly). */
  startTimeoutMs?: number;
  /** Each line a process prints, prefixed by nothing: the caller decides whether to show it. */
  onOutput?: (proc: StackProcess, line: string, stream: "stdout" | "stderr") => void;
  /** A process exited while the stack was up (not during `stop`). */
  onExit?: (proc: StackProcess, code: number | null, signal: NodeJS.Signals | null) => void;
}

export interface StackProcess {
  id: string;
  kind: "frontend" | "aggregated" | "prefill" | "decode";
  pid: number;
  url: string;
  dpSize: number;
  /** KV-event endpoints the worker bound, one per rank. */
  kvEvents: { dp_rank: number | null; endpoint: string; replay_endpoint: string | null; topic: string }[];
  child: ChildProcess;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface RunningStack {
  /** The frontend's base URL (`…/v1` is the OpenAI API). */
  endpoint: string;
  frontend: StackProcess;
  workers: StackProcess[];
  discoveryFile: string;
  plan: StackPlan;
  /** Stops the frontend, then the workers (SIGTERM, SIGKILL after a grace period). Idempotent. */
  stop(): Promise<void>;
}

/** The worker's startup line: `servelab worker: serving MODEL at URL/v1 (...)`. */
const SERVING = /^servelab worker: serving .+ at (http:\/\/\S+)\/v1 /;
/** `servelab worker: KV events[ of dp rank R] on ENDPOINT[, replay on ENDPOINT], topic "T"`. */
const KV_EVENTS =
  /^servelab worker: KV events(?: of dp rank (\d+))? on (\S+?)(?:, replay on (\S+?))?, topic (".*")$/;
const FRONTEND = /^servelab frontend: .+ at (http:\/\/\S+)\/v1,/;

const KV_EVENTS_CONFIG = JSON.stringify({
  enable_kv_cache_events: true,
  endpoint: "tcp://127.0.0.1:0",
  replay_endpoint: "tcp://127.0.0.1:0",
  topic: "kv-events",
});

interface Started {
  proc: StackProcess;
  ready: Promise<void>;
}

function launch(
  id: string,
  kind: StackProcess["kind"],
  dpSize: number,
  args: string[],
  ready: RegExp,
  opts: StackOptions,
  stopping: () => boolean,
  expectedKvSources = 0,
): Started {
  // stdin stays open as the child's lifeline: it exits when this process does, however this process ends.
  const child = spawn(process.execPath, [CLI, ...args], {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, [EXIT_WITH_PARENT_ENV]: "1" },
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
  });
  const proc: StackProcess = { id, kind, pid: child.pid ?? 0, url: "", dpSize, kvEvents: [], child, exited };
  const tail: string[] = [];
  const remember = (line: string) => {
    tail.push(line);
    if (tail.length > 20) tail.shift();
  };
  const readyPromise = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new ServelabError(
            "STACK_START",
            `${id} did not start within ${(opts.startTimeoutMs ?? 120_000) / 1000} s`,
            tail,
          ),
        ),
      opts.startTimeoutMs ?? 120_000,
    );
    createInterface({ input: child.stdout! }).on("line", (line) => {
      remember(line);
      opts.onOutput?.(proc, line, "stdout");
      const kv = KV_EVENTS.exec(line);
      if (kv) {
        proc.kvEvents.push({
          dp_rank: kv[1] === undefined ? null : Number(kv[1]),
          endpoint: kv[2]!,
          replay_endpoint: kv[3] ?? null,
          topic: JSON.parse(kv[4]!) as string,
        });
      }
      const m = ready.exec(line);
      if (m && proc.url === "") proc.url = m[1]!;
    });
    createInterface({ input: child.stderr! }).on("line", (line) => {
      remember(line);
      opts.onOutput?.(proc, line, "stderr");
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      if (!stopping()) opts.onExit?.(proc, code, signal);
      reject(
        new ServelabError(
          "STACK_START",
          `${id} exited (${signal ?? `code ${code}`}) before it was healthy`,
          tail,
        ),
      );
    });
    const poll = async () => {
      while (!stopping()) {
        // The startup line precedes the KV-event lines: wait for every rank's endpoint as well.
        if (proc.url !== "" && proc.kvEvents.length >= expectedKvSources) {
          try {
            const res = await request(`${proc.url}/health`, { headersTimeout: 2000, bodyTimeout: 2000 });
            const body = (await res.body.json()) as { status?: string };
            if (res.statusCode === 200 && (kind !== "frontend" || body.status === "healthy")) {
              clearTimeout(timer);
              resolve();
              return;
            }
          } catch {
            // Not listening yet.
          }
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    void poll();
  });
  readyPromise.catch(() => {});
  return { proc, ready: readyPromise };
}

async function terminate(procs: readonly StackProcess[], graceMs: number): Promise<void> {
  await Promise.all(
    procs.map(async (p) => {
      if (p.child.exitCode !== null || p.child.signalCode !== null) return;
      p.child.kill("SIGTERM");
      const timer = setTimeout(() => p.child.kill("SIGKILL"), graceMs);
      await p.exited;
      clearTimeout(timer);
    }),
  );
}

/**
 * Starts an arm as real processes on loopback: every worker (`servelab worker` with its recipe group, scaled DP
 * ranks, KV events on OS-chosen loopback ports where the arm's router listens), waits until each is healthy,
 * writes the discovery file, then starts `servelab frontend` over it and waits for it too. Any failure stops
 * everything already started.
 */
export async function startStack(opts: StackOptions): Promise<RunningStack> {
  const { plan } = opts;
  let stopping = false;
  const isStopping = () => stopping;
  const started: StackProcess[] = [];
  const discoveryFile = opts.discoveryFile ?? join(tmpdir(), `servelab-up-${plan.arm}-${process.pid}.json`);
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    const fe = started.filter((p) => p.kind === "frontend");
    await terminate(fe, 5000);
    await terminate(
      started.filter((p) => p.kind !== "frontend"),
      5000,
    );
  };
  try {
    const workers = plan.workers.map((w) => {
      const args = [
        "worker",
        "--recipe",
        opts.recipePath,
        "--arm",
        plan.arm,
        "--group",
        w.group,
        "--dp-size",
        String(w.dpSize),
        "--port",
        "0",
        "--speedup-ratio",
        String(opts.speedupRatio ?? 1),
      ];
      if (opts.perfModel !== undefined) args.push("--perf-model", opts.perfModel);
      if (w.role !== "aggregated") args.push("--disaggregation-mode", w.role);
      if (w.kvEvents) args.push("--kv-events-config", KV_EVENTS_CONFIG);
      const s = launch(w.id, w.role, w.dpSize, args, SERVING, opts, isStopping, w.kvEvents ? w.dpSize : 0);
      started.push(s.proc);
      return s;
    });
    await Promise.all(workers.map((w) => w.ready));
    const discovery: DiscoveryInput = {
      servelab_discovery: 1,
      recipe: plan.recipe,
      arm: plan.arm,
      model: plan.model,
      block_size: plan.blockSize,
      workers: workers.map(({ proc }) => ({
        id: proc.id,
        url: proc.url,
        role: proc.kind as "aggregated" | "prefill" | "decode",
        dp_size: proc.dpSize,
        kv_events: proc.kvEvents,
        pid: proc.pid,
      })),
    };
    await writeDiscovery(discoveryFile, discovery);
    const fe = launch(
      "frontend",
      "frontend",
      0,
      [
        "frontend",
        "--discovery",
        discoveryFile,
        "--recipe",
        opts.recipePath,
        "--arm",
        plan.arm,
        "--http-host",
        "127.0.0.1",
        "--http-port",
        String(opts.port ?? 8000),
        ...(opts.frontendArgs ?? []),
      ],
      FRONTEND,
      opts,
      isStopping,
    );
    started.push(fe.proc);
    await fe.ready;
    await writeDiscovery(discoveryFile, { ...discovery, frontend: fe.proc.url });
    return {
      endpoint: fe.proc.url,
      frontend: fe.proc,
      workers: workers.map((w) => w.proc),
      discoveryFile,
      plan,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
