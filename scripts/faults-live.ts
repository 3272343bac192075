/**
 * Live-stack faults, real processes on loopback (part of `npm run test:faults`): `servelab bench` replays a trace
 * through `servelab frontend` in front of `servelab worker`s while a worker (or the frontend) is killed with SIGKILL:
 * - four aggregated workers behind the KV router (fed by their KV events), `--migration-limit 3`, one killed
 *   mid-run: every request completes with its full output, none fails, the frontend counts the migrations; the
 *   killed worker restarted on its ports rejoins, its index entries are reset, and it serves again;
 * - a worker hung (SIGSTOP) under `--stream-timeout-secs 1`: its requests move, every request completes;
 * - the same with migration off: the affected requests are recorded as errors, the rest complete, none is lost;
 * - a disaggregated pool (one prefill, two decode workers), a decode worker killed mid-run: every request completes;
 * - the frontend killed mid-run: the load generator records every request as done or failed, none is lost.
 */

import { writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import type { Rng } from "../src/random.ts";
import { lines, type Proc, sleep, start, waitForLine } from "./fault-procs.ts";

const REQUESTS = 160;
const OSL = 40;
const GAP_MS = 60;
const MODEL = "mock";
const SERVING = /serving \S+ at (http:\/\/[^/\s]+)\/v1/;
const FRONTEND = /at (http:\/\/[^/\s]+)\/v1,/;

interface Outcome {
  sent: number;
  completed: number;
  failed: number;
  /** Completed requests whose output is not the requested length. */
  shortOrLong: number;
}

async function worker(extra: string[] = [], port = 0): Promise<{ proc: Proc; url: string }> {
  const proc = start(["worker", "--port", String(port), "--model", MODEL, ...extra]);
  return { proc, url: await waitForLine(proc, SERVING, "servelab worker") };
}

async function frontend(args: string[]): Promise<{ proc: Proc; url: string }> {
  const proc = start(["frontend", "--model", MODEL, "--kv-block-size", "16", "--http-port", "0", ...args]);
  return { proc, url: await waitForLine(proc, FRONTEND, "servelab frontend") };
}

/** A free loopback port (for KV events that must come back on the same port after a restart). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

const kvEventsFlag = (port: number) => [
  "--kv-events-config",
  // `*` makes the worker bind (vLLM's rule; a plain address would make it connect to a central subscriber).
  JSON.stringify({ enable_kv_cache_events: true, endpoint: `tcp://*:${port}`, topic: "kv-events" }),
];

async function metricSum(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let n = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "gm"))) n += Number(m[1]);
  return n;
}

async function kill(p: Proc): Promise<void> {
  p.child.kill("SIGKILL");
  await p.exit;
}

async function migrations(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let n = 0;
  for (const m of text.matchAll(/^dynamo_frontend_model_migration_total\{[^}]*\} (\S+)$/gm))
    n += Number(m[1]);
  return n;
}

async function outcome(dir: string): Promise<Outcome> {
  const records = (await lines(join(dir, "profile_export.jsonl"))).map((l) => JSON.parse(l));
  const ok = records.filter((r) => r.error === null);
  return {
    sent: records.length,
    completed: ok.length,
    failed: records.length - ok.length,
    shortOrLong: ok.filter((r) => r.metrics.output_sequence_length?.value !== OSL).length,
  };
}

export async function runLiveFaults(
  work: string,
  rng: Rng,
  check: (ok: boolean, what: string) => void,
): Promise<Record<string, unknown>[]> {
  const results: Record<string, unknown>[] = [];
  const trace = join(work, "live-trace.jsonl");
  await writeFile(
    trace,
    Array.from({ length: REQUESTS }, (_, i) =>
      JSON.stringify({ timestamp: i * GAP_MS, input_length: 300, output_length: OSL, hash_ids: [5000 + i] }),
    ).join("\n"),
  );
  const procs: Proc[] = [];
  /** A fault the frontend survives: every request on disk, completed with its full output, some migrated. */
  const expectAllCompleted = (label: string, o: Outcome, moved: number) => {
    check(o.sent === REQUESTS, `${label}: ${o.sent} of ${REQUESTS} requests on disk`);
    check(o.failed === 0, `${label}: ${o.failed} requests failed`);
    check(o.shortOrLong === 0, `${label}: ${o.shortOrLong} outputs of the wrong length`);
    check(moved >= 1, `${label}: the frontend counted no migration`);
  };
  const bench = (url: string, dir: string) =>
    start([
      "bench",
      "--url",
      url,
      "--model",
      MODEL,
      "--streaming",
      "--input-file",
      trace,
      "--custom-dataset-type",
      "mooncake_trace",
      "--fixed-schedule",
      "--ui",
      "none",
      "--artifact-dir",
      dir,
    ]);
  /** Runs a replay and, a seeded moment into its schedule, kills `victim`. */
  const replayKilling = async (url: string, dir: string, victim: () => Proc) => {
    const run = bench(url, dir);
    // A seeded moment after the first records are out, while many streams are in flight.
    for (let i = 0; i < 600 && (await lines(join(dir, "profile_export.jsonl"))).length === 0; i++)
      await sleep(20);
    await sleep(500 + rng.int(3000));
    await kill(victim());
    await run.exit;
    return outcome(dir);
  };
  try {
    // Four workers publishing KV events on fixed ports, so a restarted one publishes where the frontend listens.
    const kvPorts: number[] = [];
    for (let i = 0; i < 4; i++) kvPorts.push(await freePort());
    const ws: { proc: Proc; url: string }[] = [];
    for (let i = 0; i < 4; i++) ws.push(await worker(kvEventsFlag(kvPorts[i]!)));
    procs.push(...ws.map((w) => w.proc));
    const workerFlags = ws.flatMap((w, i) => [
      "--worker",
      `w${i}=${w.url}`,
      "--kv-events-endpoint",
      `w${i}=tcp://127.0.0.1:${kvPorts[i]}`,
    ]);

    // 1. Migration on (KV router fed by events): a worker dies mid-stream, its requests move.
    const fe = await frontend([...workerFlags, "--router-mode", "kv", "--migration-limit", "3"]);
    procs.push(fe.proc);
    const victim = 1 + rng.int(3);
    const migrated = await replayKilling(fe.url, join(work, "live-migrate"), () => ws[victim]!.proc);
    const moved = await migrations(fe.url);
    expectAllCompleted("migration on", migrated, moved);
    results.push({
      command: "frontend --migration-limit 3, a worker SIGKILLed mid-replay",
      ...migrated,
      migrated: moved,
      lost: REQUESTS - migrated.sent,
    });

    // The killed worker comes back on its port: the frontend takes it back and sends it traffic.
    const port = new URL(ws[victim]!.url).port;
    const resetsBefore = await metricSum(fe.url, "servelab_kv_events_resets_total");
    const back = await worker(kvEventsFlag(kvPorts[victim]!), Number(port));
    procs.push(back.proc);
    ws[victim] = back;
    let rejoined = false;
    for (let i = 0; i < 200 && !rejoined; i++) {
      const health = (await (await fetch(`${fe.url}/health`)).json()) as {
        instances: { instance_id: string; healthy: boolean }[];
      };
      rejoined = health.instances.find((x) => x.instance_id === `w${victim}`)?.healthy === true;
      if (!rejoined) await sleep(100);
    }
    for (let i = 0; i < 8; i++) {
      const res = await fetch(`${fe.url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: MODEL,
          prompt: Array.from({ length: 600 }, (_, t) => 1 + ((i * 997 + t) % 50_000)),
          max_tokens: 2,
        }),
      });
      await res.text();
    }
    // Its publisher starts again from sequence 0: the frontend drops what the old process had cached.
    let resets = 0;
    for (let i = 0; i < 100 && resets <= resetsBefore; i++) {
      resets = await metricSum(fe.url, "servelab_kv_events_resets_total");
      if (resets <= resetsBefore) await sleep(100);
    }
    check(resets > resetsBefore, "the restarted worker's KV events did not reset its index entries");
    const served = (await (await fetch(`${back.url}/servelab/requests`)).text())
      .trim()
      .split("\n")
      .filter(Boolean).length;
    check(rejoined, "the restarted worker was not taken back");
    check(served > 0, "the restarted worker received no traffic");
    results.push({
      command: "the killed worker restarted on its port",
      rejoined,
      requests_served: served,
      kv_index_reset: resets > resetsBefore,
    });
    await kill(fe.proc);

    // 2. Migration off: the affected requests fail, the rest complete, none is lost.
    const plain = await frontend([
      ...ws.flatMap((w, i) => ["--worker", `w${i}=${w.url}`]),
      "--router-mode",
      "round-robin",
    ]);
    procs.push(plain.proc);
    const off = await replayKilling(plain.url, join(work, "live-no-migrate"), () => ws[0]!.proc);
    check(off.sent === REQUESTS, `migration off: ${off.sent} of ${REQUESTS} requests on disk`);
    check(off.failed >= 1, "migration off: no request failed although its worker was killed");
    check(off.shortOrLong === 0, `migration off: ${off.shortOrLong} completed outputs of the wrong length`);
    results.push({
      command: "frontend without migration, a worker SIGKILLed mid-replay",
      ...off,
      migrated: 0,
      lost: REQUESTS - off.sent,
    });

    // A worker that hangs (SIGSTOP: it holds its connections and answers nothing): the stream timeout fires and its
    // requests move.
    await kill(plain.proc);
    const hangFe = await frontend([
      ...ws.flatMap((w, i) => ["--worker", `w${i}=${w.url}`]).slice(2),
      "--router-mode",
      "round-robin",
      "--migration-limit",
      "3",
      "--stream-timeout-secs",
      "1",
    ]);
    procs.push(hangFe.proc);
    const frozen = ws[1 + rng.int(3)]!;
    const hung = bench(hangFe.url, join(work, "live-hang"));
    for (
      let i = 0;
      i < 600 && (await lines(join(work, "live-hang", "profile_export.jsonl"))).length === 0;
      i++
    )
      await sleep(20);
    await sleep(500 + rng.int(2000));
    frozen.proc.child.kill("SIGSTOP");
    await hung.exit;
    frozen.proc.child.kill("SIGCONT");
    const hang = await outcome(join(work, "live-hang"));
    const movedHang = await migrations(hangFe.url);
    expectAllCompleted("worker hung", hang, movedHang);
    results.push({
      command: "a worker SIGSTOPped mid-replay (hangs), --stream-timeout-secs 1",
      ...hang,
      migrated: movedHang,
      lost: REQUESTS - hang.sent,
    });
    await kill(hangFe.proc);

    // 3. The frontend itself dies: the load generator keeps a record of every request.
    const survivors = ws.slice(1);
    const fe3 = await frontend([
      ...survivors.flatMap((w, i) => ["--worker", `s${i}=${w.url}`]),
      "--router-mode",
      "round-robin",
    ]);
    procs.push(fe3.proc);
    const feKilled = await replayKilling(fe3.url, join(work, "live-frontend-killed"), () => fe3.proc);
    check(feKilled.sent === REQUESTS, `frontend killed: ${feKilled.sent} of ${REQUESTS} requests on disk`);
    check(feKilled.failed >= 1, "frontend killed: no request was recorded as failed");
    results.push({
      command: "the frontend SIGKILLed mid-replay",
      ...feKilled,
      migrated: 0,
      lost: REQUESTS - feKilled.sent,
    });

    // 4. Disaggregated: a decode worker dies, its requests move to the other decode worker.
    const kv = ["--kv-bytes-per-token", "1000"];
    const prefill = await worker(["--disaggregation-mode", "prefill", ...kv]);
    const decodes = [
      await worker(["--disaggregation-mode", "decode", ...kv]),
      await worker(["--disaggregation-mode", "decode", ...kv]),
    ];
    procs.push(prefill.proc, ...decodes.map((d) => d.proc));
    const fe4 = await frontend([
      "--prefill-worker",
      `p0=${prefill.url}`,
      ...decodes.flatMap((d, i) => ["--decode-worker", `d${i}=${d.url}`]),
      "--router-mode",
      "round-robin",
      "--migration-limit",
      "3",
    ]);
    procs.push(fe4.proc);
    const disagg = await replayKilling(fe4.url, join(work, "live-disagg"), () => decodes[rng.int(2)]!.proc);
    const moved4 = await migrations(fe4.url);
    expectAllCompleted("disaggregated", disagg, moved4);
    results.push({
      command: "disaggregated, a decode worker SIGKILLed mid-replay",
      ...disagg,
      migrated: moved4,
      lost: REQUESTS - disagg.sent,
    });
  } finally {
    for (const p of procs)
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
  }
  return results;
}
