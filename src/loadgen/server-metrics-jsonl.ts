import type { MetricFamily } from "./server-metrics-families.ts";
import { pyFloatJson, pyIntJson } from "./server-metrics-pyfloat.ts";

/**
 * One line of AIPerf's `server_metrics_export.jsonl`: its `SlimRecord` (`aiperf/common/models/
 * _server_metrics_records.py`, a msgspec Struct with `omit_defaults`, encoded by msgspec), in field order
 * `endpoint_url, timestamp_ns, metrics, endpoint_latency_ns, request_sent_ns, first_byte_ns`, absent fields left out.
 * `metrics` maps each family name (a counter's without `_total`) to its samples, each `{labels?, value}` or, for a
 * histogram, `{labels?, buckets: {le: count}, sum?, count?}` with the buckets in the order the endpoint wrote them;
 * `labels` is left out when there are none, and families whose name ends in `_info` are left out (AIPerf keeps them for
 * the aggregated export only). Values are Python floats (`3.0`), timestamps Python ints.
 */
export interface SlimRecordInput {
  endpointUrl: string;
  /** When the server produced the page: the first byte of the answer (AIPerf's `first_byte_ns`), wall-clock ns. */
  timestampNs: number;
  families: Readonly<Record<string, MetricFamily>>;
  /** Request start to body end, ns. */
  latencyNs?: number;
  requestSentNs?: number;
  firstByteNs?: number;
}

const str = (s: string) => JSON.stringify(s);
const f = (x: number) => pyFloatJson(x, "msgspec");

function labelsJson(labels: Readonly<Record<string, string>>): string | undefined {
  const entries = Object.entries(labels);
  if (entries.length === 0) return undefined;
  return `{${entries.map(([k, v]) => `${str(k)}:${str(v)}`).join(",")}}`;
}

function familyJson(family: MetricFamily): string {
  const samples: string[] = [];
  for (const s of family.samples) {
    const parts: string[] = [];
    const labels = labelsJson(s.labels);
    if (labels !== undefined) parts.push(`"labels":${labels}`);
    if ("value" in s) parts.push(`"value":${f(s.value)}`);
    else {
      parts.push(`"buckets":{${[...s.buckets].map(([le, n]) => `${str(le)}:${f(n)}`).join(",")}}`);
      if (s.sum !== undefined) parts.push(`"sum":${f(s.sum)}`);
      if (s.count !== undefined) parts.push(`"count":${f(s.count)}`);
    }
    samples.push(`{${parts.join(",")}}`);
  }
  return `[${samples.join(",")}]`;
}

/** The line's JSON text, without its newline (msgspec's compact layout: no spaces). */
export function slimRecordLine(r: SlimRecordInput): string {
  const metrics = Object.entries(r.families)
    .filter(([name]) => !name.endsWith("_info"))
    .map(([name, family]) => `${str(name)}:${familyJson(family)}`)
    .join(",");
  let out = `{"endpoint_url":${str(r.endpointUrl)},"timestamp_ns":${pyIntJson(r.timestampNs)},"metrics":{${metrics}}`;
  if (r.latencyNs !== undefined) out += `,"endpoint_latency_ns":${pyIntJson(r.latencyNs)}`;
  if (r.requestSentNs !== undefined) out += `,"request_sent_ns":${pyIntJson(r.requestSentNs)}`;
  if (r.firstByteNs !== undefined) out += `,"first_byte_ns":${pyIntJson(r.firstByteNs)}`;
  return `${out}}`;
}
