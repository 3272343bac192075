import { readFile } from "node:fs/promises";
import { z } from "zod";
import { ServelabError } from "../../errors.ts";
import { writeFileAtomic } from "../../io/atomic-write.ts";

/**
 * One KV-event publisher of a worker as a subscriber connects to it: a DP rank's own port (vLLM), or a shared port
 * for all ranks (`dp_rank` null, ranks in the payload).
 */
const kvEventSourceSchema = z.strictObject({
  dp_rank: z.number().int().min(0).nullable().default(null),
  endpoint: z.string().regex(/^(tcp|ipc|inproc):\/\/./, "must be a tcp://, ipc:// or inproc:// endpoint"),
  replay_endpoint: z
    .string()
    .regex(/^(tcp|ipc|inproc):\/\/./, "must be a tcp://, ipc:// or inproc:// endpoint")
    .nullable()
    .default(null),
  topic: z.string().default(""),
});

const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), "must be an http(s) URL")
  .transform((u) => u.replace(/\/+$/, ""));

export const workerSpecSchema = z.strictObject({
  id: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[A-Za-z0-9._:-]+$/, "letters, digits, '.', '_', ':' and '-' only"),
  url: httpUrl,
  role: z.enum(["aggregated", "prefill", "decode"]).default("aggregated"),
  dp_size: z.number().int().min(1).max(1024).default(1),
  /** KV blocks per rank, for the busy thresholds (optional: the check is skipped without it). */
  kv_blocks_per_rank: z.number().int().positive().optional(),
  kv_events: z.array(kvEventSourceSchema).default([]),
  /** The process id `up` started the worker as (informational). */
  pid: z.number().int().positive().optional(),
});

/**
 * The file `servelab up` writes and `servelab frontend --discovery` reads: the arm's workers with their URLs, roles,
 * DP ranks and KV-event endpoints, standing in for Dynamo's etcd registrations on a single machine.
 */
export const discoverySchema = z.strictObject({
  servelab_discovery: z.literal(1),
  recipe: z.string().optional(),
  arm: z.string().optional(),
  model: z.string().min(1),
  block_size: z.number().int().positive(),
  frontend: httpUrl.optional(),
  workers: z.array(workerSpecSchema).min(1),
});

export type Discovery = z.output<typeof discoverySchema>;
export type DiscoveryInput = z.input<typeof discoverySchema>;
export type WorkerSpec = z.output<typeof workerSpecSchema>;
export type WorkerSpecInput = z.input<typeof workerSpecSchema>;
export type KvEventSource = z.output<typeof kvEventSourceSchema>;

function issuesText(e: z.ZodError): string {
  return e.issues.map((i) => `${i.path.length ? i.path.join(".") : "(root)"}: ${i.message}`).join("; ");
}

export function parseDiscovery(value: unknown, where: string): Discovery {
  const r = discoverySchema.safeParse(value);
  if (!r.success) throw new ServelabError("DISCOVERY_INVALID", `${where}: ${issuesText(r.error)}`);
  const ids = new Set<string>();
  for (const w of r.data.workers) {
    if (ids.has(w.id))
      throw new ServelabError("DISCOVERY_INVALID", `${where}: worker id ${w.id} appears twice`);
    ids.add(w.id);
  }
  return r.data;
}

export async function readDiscovery(path: string): Promise<Discovery> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new ServelabError("FILE_READ", `cannot read the discovery file ${path}: ${(e as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ServelabError("DISCOVERY_INVALID", `${path}: not valid JSON: ${(e as Error).message}`);
  }
  return parseDiscovery(value, path);
}

export async function writeDiscovery(path: string, d: DiscoveryInput): Promise<void> {
  const checked = parseDiscovery(d, "discovery");
  await writeFileAtomic(path, [`${JSON.stringify(checked, null, 2)}\n`]);
}
