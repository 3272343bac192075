/**
 * What the frontend itself costs. A zero-think-time SSE worker (bench/sse-server.ts), a plain undici proxy in front
 * of it (bench/plain-proxy.ts) and `servelab frontend` in front of it (KV router, approximate mode: prompts are
 * tokenized, block-hashed and routed), each its own process; the client runs here. Measured:
 * - TTFT at 200 requests/s sent straight to the worker, through the plain proxy and through the frontend, in
 *   alternating phases of the same run: the frontend's added TTFT (p50/p99) over direct, and the proxy's;
 * - SSE chunks relayed per second (32 streams of 25,000 tokens) through each path;
 * - 2,000 concurrent streams held through the frontend: how many completed, and its memory per in-flight stream;
 * - the route decision time inside the live path (the frontend's own `dynamo_router_overhead_*` histograms);
 * - KV events ingested from ZMQ into the router's index (bench/kv-events.ts).
 * `--json` prints one JSON object.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Pool } from "undici";
import { sleepUntil } from "../src/loadgen/precise-sleep.ts";
import { percentileOfSorted } from "../src/metrics/summary.ts";
import { SseEventCounter } from "../src/serve/frontend/sse-count.ts";
import { benchKvIngestion } from "./kv-events.ts";

const json = process.argv.includes("--json");
const log = (m: string) => {
  if (!json) process.stderr.write(`${m}\n`);
};
const RATE = 200;
const PHASE_S = 4;
const ROUNDS = 2;
const THROUGHPUT_STREAMS = 32;
const THROUGHPUT_TOKENS = 25_000;
const HELD_STREAMS = 2000;
const REPO = join(import.meta.dirname, "..");
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

async function start(args: string[], ready: RegExp): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"], cwd: REPO });
  children.push(child);
  for await (const line of createInterface({ input: child.stdout! })) {
    const m = ready.exec(line);
    if (m) return { child, url: m[1]!.startsWith("http") ? m[1]! : `http://127.0.0.1:${m[1]}` };
  }
  throw new Error(`${args.join(" ")} exited before it was ready`);
}

const children: ChildProcess[] = [];
// A failed run must not leave its servers behind.
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});
const worker = await start(["--import", "tsx", join(REPO, "bench/sse-server.ts")], /^listening (\d+)/);
const proxy = await start(
  ["--import", "tsx", join(REPO, "bench/plain-proxy.ts"), worker.url],
  /^listening (\d+)/,
);
const frontend = await start(
  [
    join(REPO, "bin/servelab.js"),
    "frontend",
    "--worker",
    worker.url,
    "--model",
    "bench",
    "--router-mode",
    "kv",
    "--no-kv-events",
    "--kv-block-size",
    "16",
    "--http-port",
    "0",
  ],
  /at (http:\/\/\S+)\/v1,/,
);
const targets = { direct: worker.url, proxy: proxy.url, frontend: frontend.url } as const;
type Target = keyof typeof targets;
const pools = Object.fromEntries(
  Object.entries(targets).map(([k, url]) => [k, new Pool(url, { connections: 10_000, pipelining: 1 })]),
) as Record<Target, Pool>;

/** A prompt of about 200 tokens, different per request so the router hashes real, distinct blocks. */
const prompt = (i: number) =>
  `request ${i}: ${"refactor the module so that the router and the engine share one clock-agnostic core. ".repeat(12)}`;

const body = (i: number, tokens: number, holdMs = 0) =>
  JSON.stringify({
    model: "bench",
    messages: [{ role: "user", content: prompt(i) }],
    max_completion_tokens: tokens,
    stream: true,
    ...(holdMs > 0 ? { hold_ms: holdMs } : {}),
  });

interface Outcome {
  ttftMs: number;
  chunks: number;
  ok: boolean;
}

let nextId = 0;
async function stream(target: Target, payload: string): Promise<Outcome> {
  const id = `b${++nextId}`;
  const t0 = nowMs();
  let ttft = Number.NaN;
  let chunks = 0;
  // Token events, however the bytes were cut (the worker sends one `data:` per token, then a usage chunk).
  const counter = new SseEventCounter();
  try {
    const res = await pools[target].request({
      path: "/v1/chat/completions",
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": id },
      body: payload,
    });
    for await (const c of res.body) {
      if (Number.isNaN(ttft)) ttft = nowMs() - t0;
      chunks += counter.feed(c as Buffer);
    }
    return { ttftMs: ttft, chunks, ok: res.statusCode === 200 };
  } catch {
    return { ttftMs: ttft, chunks, ok: false };
  }
}

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const pct = (xs: number[], p: number) => percentileOfSorted(sorted(xs), p);
const round = (x: number, d = 3) => Number(x.toFixed(d));

async function ratePhase(target: Target): Promise<number[]> {
  const n = RATE * PHASE_S;
  const t0 = nowMs() + 50;
  const runs: Promise<Outcome>[] = [];
  for (let i = 0; i < n; i++) {
    await sleepUntil(t0 + (i * 1000) / RATE, nowMs);
    runs.push(stream(target, body(nextId, 8)));
  }
  const out = await Promise.all(runs);
  const bad = out.filter((o) => !o.ok).length;
  if (bad > 0) throw new Error(`${bad} of ${n} requests to ${target} failed`);
  return out.map((o) => o.ttftMs);
}

// Warm every path (connections, the frontend's tokenizer thread, JIT).
for (const t of Object.keys(targets) as Target[])
  await Promise.all(Array.from({ length: 50 }, (_, i) => stream(t, body(i, 4))));

const ttft: Record<Target, number[]> = { direct: [], proxy: [], frontend: [] };
for (let r = 0; r < ROUNDS; r++) {
  for (const t of ["direct", "proxy", "frontend"] as const) {
    log(`TTFT at ${RATE} req/s, ${t} (round ${r + 1}/${ROUNDS})`);
    ttft[t].push(...(await ratePhase(t)));
  }
}
const ttftSummary = Object.fromEntries(
  (Object.keys(ttft) as Target[]).map((t) => [
    t,
    { p50_ms: round(pct(ttft[t], 50)), p99_ms: round(pct(ttft[t], 99)) },
  ]),
) as Record<Target, { p50_ms: number; p99_ms: number }>;

async function throughput(target: Target): Promise<number> {
  const t0 = nowMs();
  const out = await Promise.all(
    Array.from({ length: THROUGHPUT_STREAMS }, (_, i) => stream(target, body(i, THROUGHPUT_TOKENS))),
  );
  const s = (nowMs() - t0) / 1000;
  const chunks = out.reduce((a, o) => a + o.chunks, 0);
  if (chunks !== THROUGHPUT_STREAMS * THROUGHPUT_TOKENS)
    throw new Error(`${target}: ${chunks} chunks arrived`);
  return Math.round(chunks / s);
}
const chunksPerS: Record<Target, number> = { direct: 0, proxy: 0, frontend: 0 };
for (const t of ["direct", "proxy", "frontend"] as const) {
  log(`chunks/s relayed, ${t}`);
  chunksPerS[t] = await throughput(t);
}

const rssKiB = (pid: number) =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);
log(`${HELD_STREAMS} concurrent streams through the frontend`);
const idleRss = rssKiB(frontend.child.pid!);
let peakRss = idleRss;
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, rssKiB(frontend.child.pid!));
}, 200);
const held = await Promise.all(
  Array.from({ length: HELD_STREAMS }, (_, i) => stream("frontend", body(i, 20, 6000))),
);
clearInterval(sampler);
const heldOk = held.filter((o) => o.ok && o.chunks === 20).length;

const metrics = await (await fetch(`${frontend.url}/metrics`)).text();
const histogram = (name: string) => {
  const sum = Number(new RegExp(`^${name}_sum\\{[^}]*\\} (\\S+)`, "m").exec(metrics)?.[1] ?? Number.NaN);
  const count = Number(new RegExp(`^${name}_count\\{[^}]*\\} (\\S+)`, "m").exec(metrics)?.[1] ?? Number.NaN);
  const buckets = [
    ...metrics.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"[^}]*\\} (\\S+)`, "gm")),
  ].map((m) => [m[1] === "+Inf" ? Number.POSITIVE_INFINITY : Number(m[1]), Number(m[2])] as const);
  const p99 = buckets.find(([, c]) => c >= 0.99 * count)?.[0] ?? Number.NaN;
  return { avg_ms: round(sum / count, 4), p99_bucket_ms: p99, count };
};

log("KV events ingested from ZMQ");
const kv = await benchKvIngestion();

for (const p of Object.values(pools)) await p.close();
for (const c of [frontend.child, proxy.child, worker.child]) {
  c.kill("SIGTERM");
  await once(c, "exit");
}

const result = {
  rate_req_per_s: RATE,
  requests_per_path: RATE * PHASE_S * ROUNDS,
  ttft: ttftSummary,
  frontend_added_ttft_ms: {
    p50: round(ttftSummary.frontend.p50_ms - ttftSummary.direct.p50_ms),
    p99: round(ttftSummary.frontend.p99_ms - ttftSummary.direct.p99_ms),
  },
  proxy_added_ttft_ms: {
    p50: round(ttftSummary.proxy.p50_ms - ttftSummary.direct.p50_ms),
    p99: round(ttftSummary.proxy.p99_ms - ttftSummary.direct.p99_ms),
  },
  chunks_per_s: chunksPerS,
  concurrent_streams: { held: HELD_STREAMS, completed: heldOk },
  frontend_memory: {
    idle_mib: round(idleRss / 1024, 1),
    peak_mib: round(peakRss / 1024, 1),
    per_stream_kib: round((peakRss - idleRss) / HELD_STREAMS, 1),
  },
  route_decision: {
    scheduling: histogram("dynamo_router_overhead_scheduling_ms"),
    block_hashing: histogram("dynamo_router_overhead_block_hashing_ms"),
    tokenizer: histogram("dynamo_frontend_tokenizer_latency_ms"),
  },
  kv_event_ingestion: kv,
  targets: {
    added_ttft_p99_ms: 2,
    chunks_per_s: 100_000,
    concurrent_streams: 2000,
    kv_blocks_per_s: 1_000_000,
  },
};
process.stdout.write(`${JSON.stringify(result, null, json ? 0 : 2)}\n`);
