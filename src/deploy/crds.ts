import { readFile } from "node:fs/promises";
import { parse } from "yaml";
import { ServelabError } from "../errors.ts";
import type { DynamoVersion } from "../recipe/deploy-schema.ts";
import { CRD_DATASETS, type CrdDatasetName } from "../trace/datasets.ts";
import { type ResolveDatasetOptions, resolveDataset } from "../trace/resolve-dataset.ts";
import {
  type CustomResourceValidator,
  compileCustomResource,
  crdVersions,
  kubernetesAjv,
} from "./crd-schema.ts";

/** The CRDs each Dynamo release line is checked against: its DynamoGraphDeployment and the DRA ComputeDomain. */
export const CRDS_FOR: Record<DynamoVersion, readonly CrdDatasetName[]> = {
  "1.3": ["k8s-crds/dynamo-1.3/dynamographdeployments", "k8s-crds/dra-driver-gpu-v25.12.0/computedomains"],
  "1.0": ["k8s-crds/dynamo-1.0/dynamographdeployments", "k8s-crds/dra-driver-gpu-v25.12.0/computedomains"],
};

/** Validators by `apiVersion kind`, for one Dynamo release line. */
export type CrdValidators = ReadonlyMap<string, CustomResourceValidator>;

export const validatorKey = (apiVersion: string, kind: string) => `${apiVersion} ${kind}`;

// Parsing and compiling the 1.6 MB DGD CRD takes about a second, so each file is compiled once per process.
const compiled = new Map<string, Promise<CustomResourceValidator[]>>();

async function compileFile(file: string, name: string): Promise<CustomResourceValidator[]> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new ServelabError("FILE_READ", `cannot read CRD ${name} at ${file}: ${(e as Error).message}`);
  }
  const ajv = kubernetesAjv();
  return crdVersions(parse(text)).map((v) => compileCustomResource(ajv, v));
}

/** Resolves (data dir, cache, download, each checked by checksum) and compiles the CRDs of a Dynamo release line. */
export async function loadCrdValidators(
  version: DynamoVersion,
  opts: Omit<ResolveDatasetOptions, "registry"> = {},
): Promise<CrdValidators> {
  const out = new Map<string, CustomResourceValidator>();
  for (const name of CRDS_FOR[version]) {
    const { path } = await resolveDataset(name, { ...opts, registry: CRD_DATASETS });
    let pending = compiled.get(path);
    if (!pending) {
      pending = compileFile(path, name);
      compiled.set(path, pending);
      pending.catch(() => compiled.delete(path));
    }
    for (const v of await pending) out.set(validatorKey(v.apiVersion, v.kind), v);
  }
  return out;
}
