/**
 * Load-generator benchmark against a zero-think-time SSE server on loopback (bench/sse-server.ts, its own
 * process): schedule lag at 500 requests/s, peak concurrent streams held, streamed tokens/s received, and TTFT
 * measurement error against the server's own first-token send times; then what the full load generator adds to its
 * own measurements (bench/client-skew.ts). `--json` prints one JSON object; `--only skew` runs the last part alone,
 * `--repeats N` repeats each of its scenarios (default 3), `--scenario NAME` runs only that one.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { buildHeaders } from "../src/loadgen/openai-request.ts";
import { sleepUntil } from "../src/loadgen/precise-sleep.ts";
import { type Clock, createPool, sendRequest } from "../src/loadgen/stream-client.ts";
import type { RequestRecord } from "../src/metrics/record.ts";
import { percentileOfSorted } from "../src/metrics/summary.ts";
import { measureClientSkew } from "./client-skew.ts";

const json = process.argv.includes("--json");
/** `--only skew` runs just the client-skew scenarios. */
const only = process.argv.includes("--only") ? process.argv[process.argv.indexOf("--only") + 1] : undefined;
const log = (m: string) => {
  if (!json) process.stderr.write(`${m}\n`);
};
const RATE = 500;
const RATE_SECONDS = 4;
const STREAMS = 5000;
const THROUGHPUT_STREAMS = 32;
const THROUGHPUT_TOKENS = 25_000;

/** Absolute monotonic ns: the server stamps with the same clock, so the two can be compared. */
const clock: Clock = { nowNs: () => Number(process.hrtime.bigint()) };
const nowMs = () => clock.nowNs() / 1e6;

const server = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "sse-server.ts")], {
  stdio: ["ignore", "pipe", "inherit"],
});
const [line] = (await once(createInterface({ input: server.stdout! }), "line")) as [string];
const origin = `http://127.0.0.1:${line.split(" ")[1]}`;
const tokens = { source: "server" as const };

let ids = 0;
function spec(maxTokens: number, holdMs = 0) {
  const requestId = `q${ids++}`;
  return {
    sessionNum: ids,
    requestId,
    conversationId: requestId,
    turnIndex: 0,
    origin,
    path: "/v1/chat/completions",
    headers: buildHeaders({ streaming: true, requestId }),
    body: JSON.stringify({
      model: "m",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
      max_completion_tokens: maxTokens,
      hold_ms: holdMs,
    }),
    streaming: true,
    inputTokens: 1,
  };
}

async function streamFigures() {
  // 1. Schedule lag and TTFT error at 500 requests/s (constant arrivals), after a warmup second that lets the
  // JIT compile the request path and the pool open its connections.
  const pool = createPool(origin, { connections: 4096 });
  const warm = nowMs() + 20;
  const warmup: Promise<RequestRecord>[] = [];
  for (let i = 0; i < RATE; i++) {
    await sleepUntil(warm + (i * 1000) / RATE, nowMs);
    warmup.push(sendRequest(pool, spec(4), { clock, tokens }));
  }
  await Promise.all(warmup);
  const records: Promise<RequestRecord>[] = [];
  const lags: number[] = [];
  const sendTimes: number[] = [];
  const start = nowMs() + 50;
  for (let i = 0; i < RATE * RATE_SECONDS; i++) {
    const due = start + (i * 1000) / RATE;
    await sleepUntil(due, nowMs);
    const t = nowMs();
    lags.push(t - due);
    sendTimes.push(t);
    records.push(sendRequest(pool, spec(4), { clock, tokens }));
  }
  const rateRecords = await Promise.all(records);
  const achieved = (sendTimes.length - 1) / ((sendTimes.at(-1)! - sendTimes[0]!) / 1000);
  const serverLog = (await (await fetch(`${origin}/log`)).json()) as { firstTokenNs: Record<string, string> };
  const ttftErrors = rateRecords
    .filter((r) => !r.error && r.chunkNs.length > 0)
    .map((r) => (r.chunkNs[0]! - Number(serverLog.firstTokenNs[r.requestId])) / 1e6)
    .sort((a, b) => a - b);
  const failed = rateRecords.filter((r) => r.error).length;
  lags.sort((a, b) => a - b);
  log(
    `rate: ${achieved.toFixed(1)} req/s achieved of ${RATE}; lag p50 ${percentileOfSorted(lags, 50).toFixed(3)} ms p99 ${percentileOfSorted(lags, 99).toFixed(3)} ms; ${failed} failed`,
  );

  // 2. Concurrent streams: open STREAMS streams that each stay open ~3 s.
  const streamPool = createPool(origin, { connections: STREAMS });
  let active = 0;
  let peakStreams = 0;
  const held = Array.from({ length: STREAMS }, () => {
    active++;
    peakStreams = Math.max(peakStreams, active);
    return sendRequest(streamPool, spec(4, 3000), { clock, tokens, timeoutMs: 60_000 }).finally(() => {
      active--;
    });
  });
  const streamRecords = await Promise.all(held);
  const serverPeak = ((await (await fetch(`${origin}/log`)).json()) as { peak: number }).peak;
  const streamFailures = streamRecords.filter((r) => r.error).length;
  const peak = Math.min(peakStreams, serverPeak) - streamFailures;
  log(`streams: ${peak} held at once (server saw ${serverPeak}); ${streamFailures} failed`);

  // 3. Streamed tokens per second received.
  const t0 = nowMs();
  const big = await Promise.all(
    Array.from({ length: THROUGHPUT_STREAMS }, () =>
      sendRequest(pool, spec(THROUGHPUT_TOKENS), { clock, tokens, timeoutMs: 120_000 }),
    ),
  );
  const seconds = (nowMs() - t0) / 1000;
  const received = big.reduce((a, r) => a + r.chunkNs.length, 0);
  const tokensPerS = received / seconds;
  log(
    `throughput: ${Math.round(tokensPerS)} tokens/s received (${received} tokens in ${seconds.toFixed(2)} s)`,
  );

  await Promise.all([pool.close(), streamPool.close()]);
  return {
    rate_target: RATE,
    rate_achieved: Math.round(achieved * 10) / 10,
    lag_p50_ms: Math.round(percentileOfSorted(lags, 50) * 1000) / 1000,
    lag_p99_ms: Math.round(percentileOfSorted(lags, 99) * 1000) / 1000,
    peak_streams: peak,
    tokens_per_s: Math.round(tokensPerS),
    ttft_error_p99_ms: Math.round(percentileOfSorted(ttftErrors, 99) * 1000) / 1000,
  };
}

try {
  const basics = only === "skew" ? {} : await streamFigures();
  // 4. What the full load generator (prompts, inputs.json, token counting, records) adds to its measurements.
  const repeats = process.argv.includes("--repeats")
    ? Number(process.argv[process.argv.indexOf("--repeats") + 1])
    : 3;
  const scenario = process.argv.includes("--scenario")
    ? process.argv[process.argv.indexOf("--scenario") + 1]
    : undefined;
  const skew = await measureClientSkew(
    origin,
    { prompts: { blockSize: 512, seed: 1 } },
    log,
    repeats,
    scenario,
  );
  const result = { ...basics, client_skew: skew };
  process.stdout.write(`${json ? JSON.stringify(result) : JSON.stringify(result, null, 2)}\n`);
} finally {
  server.kill("SIGTERM");
}
