/**
 * How much servelab's own client adds to what it measures: `runBench` against bench/sse-server.ts (its own
 * process, stamping each request's arrival and first token with the same monotonic clock), compared record by
 * record with the server's log. Per scenario: send → server-arrival delay p50/p99, client TTFT minus server TTFT
 * p50/p99, the schedule lag, and the client's event-loop delay p99 while sending (`monitorEventLoopDelay`), with
 * and without `inputs.json`; and the same delays for a minimal client (undici, bodies encoded up front, nothing
 * else on its event loop) with bodies of the same size on the same schedule, the floor the machine allows.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks";
import { buildHeaders, buildRequestBody } from "../src/loadgen/openai-request.ts";
import { sleepUntil } from "../src/loadgen/precise-sleep.ts";
import { type PromptSource, runBench } from "../src/loadgen/run-bench.ts";
import { createPool, type HrClock } from "../src/loadgen/stream-client.ts";
import { percentileOfSorted } from "../src/metrics/summary.ts";
import { benchConfig } from "../src/testing/bench-config.ts";
import type { TraceRow } from "../src/trace/types.ts";

export interface Scenario {
  name: string;
  rate: number;
  seconds: number;
  inputTokens: number;
  outputTokens: number;
  /** The server spreads the output over this long, so streams overlap as they would on a real engine. */
  holdMs: number;
}

/** The founding trace's prompts are ~40 k tokens at ~2 req/s; 60 req/s of them is a hard case for one client. */
export const SCENARIOS: readonly Scenario[] = [
  { name: "long_prompts_60rps", rate: 60, seconds: 8, inputTokens: 40_000, outputTokens: 100, holdMs: 2000 },
  { name: "short_prompts_500rps", rate: 500, seconds: 4, inputTokens: 100, outputTokens: 16, holdMs: 200 },
];

const BLOCK = 512;

/** Unshifted `process.hrtime`, the clock the server stamps with. */
const rawClock: HrClock = { wallNsAtZero: 0n, nowNs: () => Number(process.hrtime.bigint()) };

interface ServerLog {
  firstTokenNs: Record<string, string>;
  arrivalNs: Record<string, string>;
}

const fetchLog = async (origin: string): Promise<ServerLog> =>
  (await (await fetch(`${origin}/log?clear`)).json()) as ServerLog;

const ms3 = (x: number) => Math.round(x * 1000) / 1000;
const pcts = (values: number[]) => {
  const v = values.sort((a, b) => a - b);
  return { p50: ms3(percentileOfSorted(v, 50)), p99: ms3(percentileOfSorted(v, 99)) };
};

function rowsFor(s: Scenario): TraceRow[] {
  const n = Math.round(s.rate * s.seconds);
  const blocks = Math.ceil(s.inputTokens / BLOCK);
  return Array.from({ length: n }, (_, i) => ({
    timestamp: (i * 1000) / s.rate,
    input_length: s.inputTokens,
    output_length: s.outputTokens,
    // Half of each prompt shared by every request, as a reuse-heavy trace has it; the rest its own.
    hash_ids: Array.from({ length: blocks }, (_, b) => (b < blocks / 2 ? b : 1_000_000 + i * blocks + b)),
  }));
}

interface Measured {
  requests: number;
  errors: number;
  send_to_arrival_ms: { p50: number; p99: number };
  ttft_client_minus_server_ms: { p50: number; p99: number };
  schedule_lag_ms: { p50: number; p99: number };
  event_loop_delay_p99_ms: number;
}

/** Joins client records (start, first chunk, both on the server's clock) with the server's log. */
function compare(
  records: { id: string; startNs: number; firstNs: number | null; lagMs: number }[],
  log: ServerLog,
  loopP99Ms: number,
): Measured {
  const arrival: number[] = [];
  const ttft: number[] = [];
  const lag: number[] = [];
  let errors = 0;
  for (const r of records) {
    const a = log.arrivalNs[r.id];
    const f = log.firstTokenNs[r.id];
    if (r.firstNs === null || a === undefined || f === undefined) {
      errors++;
      continue;
    }
    arrival.push((Number(a) - r.startNs) / 1e6);
    ttft.push((r.firstNs - r.startNs - (Number(f) - Number(a))) / 1e6);
    lag.push(r.lagMs);
  }
  return {
    requests: records.length,
    errors,
    send_to_arrival_ms: pcts(arrival),
    ttft_client_minus_server_ms: pcts(ttft),
    schedule_lag_ms: pcts(lag),
    event_loop_delay_p99_ms: ms3(loopP99Ms),
  };
}

/** The client's event-loop delay from the first send on (building prompts before the run is not measured). */
function loopMonitor() {
  const h = monitorEventLoopDelay({ resolution: 1 });
  let started = false;
  const gcs: number[] = [];
  const gc = new PerformanceObserver((list) => {
    if (started)
      for (const e of list.getEntries()) {
        gcs.push(e.duration);
        if (process.env.SKEW_DEBUG && e.duration > 4)
          process.stderr.write(
            `gc kind ${(e as unknown as { detail: { kind: number } }).detail.kind} ${e.duration.toFixed(1)} ms heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB ext ${(process.memoryUsage().external / 2 ** 20).toFixed(0)}\n`,
          );
      }
  });
  gc.observe({ entryTypes: ["gc"] });
  return {
    onSend() {
      if (started) return;
      started = true;
      h.reset();
      h.enable();
    },
    p99Ms() {
      h.disable();
      gc.disconnect();
      if (process.env.SKEW_DEBUG)
        process.stderr.write(
          `loop max ${(h.max / 1e6).toFixed(1)} ms; gc ${gcs.length} pauses, max ${Math.max(0, ...gcs).toFixed(1)} ms, total ${gcs.reduce((a, b) => a + b, 0).toFixed(0)} ms\n`,
        );
      return h.percentile(99) / 1e6;
    },
  };
}

async function viaRunBench(
  origin: string,
  s: Scenario,
  withInputs: boolean,
  deps: { prompts: PromptSource },
): Promise<Measured> {
  const dir = await mkdtemp(join(tmpdir(), "servelab-skew-"));
  try {
    const loop = loopMonitor();
    const rows = rowsFor(s);
    const result = await runBench(
      benchConfig(origin, dir, {
        rows,
        mode: { kind: "fixed", autoOffset: true },
        extraInputs: { hold_ms: s.holdMs },
        useServerTokenCount: false,
        writeInputs: withInputs,
        clock: rawClock,
        onProgress: (p) => {
          if (p.sent > 0) loop.onSend();
        },
      }),
      deps,
    );
    const loopP99 = loop.p99Ms();
    const text = await readFile(join(dir, "profile_export.jsonl"), "utf8");
    const lines = text.split("\n").filter((l) => l !== "");
    const records = lines.map((l) => {
      const rec = JSON.parse(l) as {
        metadata: { x_request_id: string; request_start_ns: number };
        metrics: { time_to_first_token?: { value: number } };
      };
      const start = rec.metadata.request_start_ns;
      const ttft = rec.metrics.time_to_first_token?.value;
      return {
        id: rec.metadata.x_request_id,
        startNs: start,
        firstNs: ttft === undefined ? null : start + ttft * 1e6,
        lagMs: 0,
      };
    });
    const measured = compare(records, await fetchLog(origin), loopP99);
    if (result.lag) measured.schedule_lag_ms = { p50: ms3(result.lag.p50), p99: ms3(result.lag.p99) };
    return measured;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A client that does nothing but send prebuilt bodies on time and stamp the first chunk. */
async function viaMinimalClient(origin: string, s: Scenario): Promise<Measured> {
  const n = Math.round(s.rate * s.seconds);
  // A prompt of the same size in bytes (~6 characters a token) is what the send path cares about.
  const prompt = "lorem ipsum ".repeat(Math.ceil((s.inputTokens * 6) / 12)).slice(0, s.inputTokens * 6);
  const bodies = Array.from({ length: n }, (_, i) =>
    Buffer.from(
      JSON.stringify({
        ...buildRequestBody({
          endpoint: "chat",
          model: "m",
          prompt: `${i} ${prompt}`,
          streaming: true,
          maxTokens: s.outputTokens,
        }),
        hold_ms: s.holdMs,
      }),
    ),
  );
  const headers = bodies.map((_, i) => buildHeaders({ streaming: true, requestId: `m${i}` }));
  const pool = createPool(origin, { connections: 2500 });
  const loop = loopMonitor();
  const records: { id: string; startNs: number; firstNs: number | null; lagMs: number }[] = [];
  const running: Promise<void>[] = [];
  const nowMs = () => rawClock.nowNs() / 1e6;
  const t0 = nowMs() + 100;
  for (let i = 0; i < n; i++) {
    const due = t0 + (i * 1000) / s.rate;
    await sleepUntil(due, nowMs);
    loop.onSend();
    const rec = {
      id: `m${i}`,
      startNs: rawClock.nowNs(),
      firstNs: null as number | null,
      lagMs: nowMs() - due,
    };
    records.push(rec);
    running.push(
      pool
        .request({ path: "/v1/chat/completions", method: "POST", headers: headers[i]!, body: bodies[i]! })
        .then(
          ({ body }) =>
            new Promise<void>((resolve) => {
              body.on("data", () => {
                rec.firstNs ??= rawClock.nowNs();
              });
              body.on("end", resolve);
              body.on("error", () => resolve());
            }),
        )
        .catch(() => {}),
    );
  }
  await Promise.all(running);
  const loopP99 = loop.p99Ms();
  await pool.close();
  const measured = compare(records, await fetchLog(origin), loopP99);
  measured.schedule_lag_ms = pcts(records.map((r) => r.lagMs));
  return measured;
}

/** Each figure's median over the repeats, with its range. */
function medianOf(runs: Measured[]) {
  const fig = (get: (m: Measured) => number) => {
    const v = runs.map(get).sort((a, b) => a - b);
    return { median: ms3(percentileOfSorted(v, 50)), min: v[0]!, max: v[v.length - 1]! };
  };
  return {
    requests: runs[0]!.requests,
    errors: runs.reduce((a, m) => a + m.errors, 0),
    send_to_arrival_p50_ms: fig((m) => m.send_to_arrival_ms.p50),
    send_to_arrival_p99_ms: fig((m) => m.send_to_arrival_ms.p99),
    ttft_client_minus_server_p50_ms: fig((m) => m.ttft_client_minus_server_ms.p50),
    ttft_client_minus_server_p99_ms: fig((m) => m.ttft_client_minus_server_ms.p99),
    schedule_lag_p99_ms: fig((m) => m.schedule_lag_ms.p99),
    event_loop_delay_p99_ms: fig((m) => m.event_loop_delay_p99_ms),
  };
}

/**
 * Every scenario `repeats` times, the three clients one after another in each repeat (paired, so that a noisy
 * moment of the machine hits all three alike); figures are medians over the repeats, and "added" is servelab's
 * median minus the minimal client's.
 */
export async function measureClientSkew(
  origin: string,
  deps: { prompts: PromptSource },
  log: (m: string) => void,
  repeats = 3,
  only?: string,
) {
  const scenarios = SCENARIOS.filter((s) => only === undefined || s.name === only);
  if (scenarios.length === 0)
    throw new Error(`no scenario ${only}; there are ${SCENARIOS.map((s) => s.name).join(", ")}`);
  const out: Record<string, unknown> = {};
  for (const s of scenarios) {
    const runs = { minimal: [] as Measured[], withInputs: [] as Measured[], withoutInputs: [] as Measured[] };
    for (let r = 0; r < repeats; r++) {
      await fetchLog(origin);
      runs.minimal.push(await viaMinimalClient(origin, s));
      runs.withInputs.push(await viaRunBench(origin, s, true, deps));
      runs.withoutInputs.push(await viaRunBench(origin, s, false, deps));
      const line = (label: string, m: Measured) =>
        log(
          `${s.name} #${r + 1} ${label}: send→arrival p50 ${m.send_to_arrival_ms.p50} p99 ${m.send_to_arrival_ms.p99} ms; ` +
            `TTFT client−server p50 ${m.ttft_client_minus_server_ms.p50} p99 ${m.ttft_client_minus_server_ms.p99} ms; ` +
            `loop delay p99 ${m.event_loop_delay_p99_ms} ms; ${m.errors} errors of ${m.requests}`,
        );
      line("minimal client", runs.minimal.at(-1)!);
      line("servelab, inputs.json", runs.withInputs.at(-1)!);
      line("servelab, no inputs.json", runs.withoutInputs.at(-1)!);
    }
    const minimal = medianOf(runs.minimal);
    const withInputs = medianOf(runs.withInputs);
    const withoutInputs = medianOf(runs.withoutInputs);
    const added = (m: ReturnType<typeof medianOf>) => ({
      send_to_arrival_p50_ms: ms3(m.send_to_arrival_p50_ms.median - minimal.send_to_arrival_p50_ms.median),
      send_to_arrival_p99_ms: ms3(m.send_to_arrival_p99_ms.median - minimal.send_to_arrival_p99_ms.median),
      ttft_p50_ms: ms3(
        m.ttft_client_minus_server_p50_ms.median - minimal.ttft_client_minus_server_p50_ms.median,
      ),
      ttft_p99_ms: ms3(
        m.ttft_client_minus_server_p99_ms.median - minimal.ttft_client_minus_server_p99_ms.median,
      ),
    });
    out[s.name] = {
      scenario: s,
      repeats,
      minimal_client: minimal,
      servelab_with_inputs_json: withInputs,
      servelab_without_inputs_json: withoutInputs,
      added_over_minimal: { with_inputs_json: added(withInputs), without_inputs_json: added(withoutInputs) },
    };
  }
  return out;
}
