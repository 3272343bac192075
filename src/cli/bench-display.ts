import cliProgress from "cli-progress";
import type { RequestRecord } from "../metrics/record.ts";
import { startProgress } from "./progress.ts";

export type BenchUi = "dashboard" | "simple" | "none";

export interface BenchDisplay {
  update(p: { sent: number; done: number; errors: number; total: number }): void;
  record(rec: RequestRecord): void;
  stop(): void;
}

/** Recent requests the running percentiles are taken over. */
const WINDOW = 1000;

const percentile = (values: readonly number[], q: number) => {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(v >= 100 ? 0 : 1) : "–");

/**
 * The live display on stderr (`--ui`): `dashboard` shows progress, requests in flight, errors and TTFT / ITL p50
 * and p99 over the last requests; `simple` a progress bar; `none` nothing. Nothing is drawn when stderr is not a
 * terminal, so piped or CI output stays clean.
 */
export function startBenchDisplay(ui: BenchUi, total: number | undefined): BenchDisplay {
  const idle: BenchDisplay = { update: () => {}, record: () => {}, stop: () => {} };
  if (ui === "none" || !process.stderr.isTTY) return idle;
  if (ui === "simple" || total === undefined) {
    if (total === undefined) return idle;
    const bar = startProgress("bench", total, "requests");
    return { update: ({ done }) => bar.update(done), record: () => {}, stop: () => bar.stop() };
  }
  const ttft: number[] = [];
  const itl: number[] = [];
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format:
        "bench [{bar}] {value}/{total} | in flight {inflight} | errors {errors} | TTFT p50 {ttft50} p99 {ttft99} ms | ITL p50 {itl50} p99 {itl99} ms | ETA {eta_formatted}",
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  const payload = { inflight: 0, errors: 0, ttft50: "–", ttft99: "–", itl50: "–", itl99: "–" };
  bar.start(total, 0, payload);
  return {
    update: ({ sent, done, errors }) => {
      payload.inflight = sent - done;
      payload.errors = errors;
      bar.update(done, payload);
    },
    record: (rec) => {
      const c = rec.chunkNs;
      if (rec.error || c.length === 0) return;
      ttft.push((c[0]! - rec.startNs) / 1e6);
      if (c.length > 1) itl.push((c[c.length - 1]! - c[0]!) / 1e6 / (c.length - 1));
      if (ttft.length > WINDOW) ttft.shift();
      if (itl.length > WINDOW) itl.shift();
      payload.ttft50 = ms(percentile(ttft, 0.5));
      payload.ttft99 = ms(percentile(ttft, 0.99));
      payload.itl50 = ms(percentile(itl, 0.5));
      payload.itl99 = ms(percentile(itl, 0.99));
    },
    stop: () => bar.stop(),
  };
}
