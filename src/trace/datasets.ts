/**
 * Upstream data that servelab refers to by name. The files themselves are never committed: they are looked up in a
 * data dir or the user cache, or downloaded, and always checked against the size and sha256 recorded here, so a
 * name means exactly one sequence of bytes wherever it is resolved.
 */
export interface DatasetEntry {
  /** Where the file lives below a data dir or the cache, `/`-separated, e.g. `mooncake/conversation_trace.jsonl`. */
  relativePath: string;
  /** Lowercase hex sha256 of the file's bytes. */
  sha256: string;
  /** Exact size in bytes. */
  bytes: number;
  /** Public upstream URL the file is downloaded from when no local copy exists. */
  url: string;
  /** SPDX identifier of the license the upstream data is published under. */
  license: string;
  description: string;
}

export type DatasetRegistry = Readonly<Record<string, DatasetEntry>>;

export const DATASETS = {
  "mooncake/conversation": {
    relativePath: "mooncake/conversation_trace.jsonl",
    sha256: "b8cbb061a85206d729d91cdc2981f43c9e0d99209dce588d3af5f7934408b9df",
    bytes: 3_029_533,
    url: "https://raw.githubusercontent.com/kvcache-ai/Mooncake/3cca71daccf2a7afb8fe3f0295358f70e3a69fdb/FAST25-release/traces/conversation_trace.jsonl",
    license: "Apache-2.0",
    description:
      "Mooncake FAST'25 conversation trace: 12,031 requests from 1 h of real Kimi chat traffic with real arrival " +
      "timestamps (3,537 s, 3.4 req/s), mean input 12,035 / output 343 tokens, prefix block hashes of 512 tokens " +
      "(36.6% of blocks seen in an earlier request).",
  },
} as const satisfies DatasetRegistry;

/**
 * CustomResourceDefinitions that `servelab deploy validate` checks manifests against, resolved like the traces
 * (data dir, cache, download) but kept out of `DATASETS`, which names what can be replayed.
 */
export const CRD_DATASETS = {
  "k8s-crds/dynamo-1.3/dynamographdeployments": {
    relativePath: "k8s-crds/dynamo/1.3/nvidia.com_dynamographdeployments.yaml",
    sha256: "0e6fbef965969d1ddf2ff4ccc7f7aed2f50af6bc1efeaeae750c06d8f47e412d",
    bytes: 1_603_265,
    url: "https://raw.githubusercontent.com/ai-dynamo/dynamo/c51febe8fd87431c1577e6fc8f7d5f737a62f381/deploy/operator/config/crd/bases/nvidia.com_dynamographdeployments.yaml",
    license: "Apache-2.0",
    description:
      "Dynamo's DynamoGraphDeployment CRD (v1alpha1 + v1beta1) at the commit that moved the DeepSeek-V3.2 recipe " +
      "to the 1.3 runtime.",
  },
  "k8s-crds/dynamo-1.0/dynamographdeployments": {
    relativePath: "k8s-crds/dynamo/1.0/nvidia.com_dynamographdeployments.yaml",
    sha256: "5b9e0fe20bd26840da794dbdb7870bb576eacb1ce8abd25d21b0598f5d9a9266",
    bytes: 854_636,
    url: "https://raw.githubusercontent.com/ai-dynamo/dynamo/dc9f80b341505be91ce308eb6df8cf6ce309596f/deploy/operator/config/crd/bases/nvidia.com_dynamographdeployments.yaml",
    license: "Apache-2.0",
    description:
      "Dynamo's DynamoGraphDeployment CRD (v1alpha1 only) at the commit that added the DeepSeek-V3.2 recipe " +
      "with the 1.0 runtime.",
  },
  "k8s-crds/dra-driver-gpu-v25.12.0/computedomains": {
    relativePath: "k8s-crds/dra-driver-gpu/v25.12.0/resource.nvidia.com_computedomains.yaml",
    sha256: "9345244a663bd1b05551dee3e3749e0fc8a4aca4ff46e48308f7b5053c90d265",
    bytes: 7165,
    url: "https://raw.githubusercontent.com/NVIDIA/k8s-dra-driver-gpu/0882da8720c28763137e0987778ec476ec4cf8df/deployments/helm/nvidia-dra-driver-gpu/crds/resource.nvidia.com_computedomains.yaml",
    license: "Apache-2.0",
    description: "NVIDIA DRA driver's ComputeDomain CRD (resource.nvidia.com/v1beta1), release v25.12.0.",
  },
} as const satisfies DatasetRegistry;

export type CrdDatasetName = keyof typeof CRD_DATASETS;

export type DatasetName = keyof typeof DATASETS;

/** True only for names registered in `DATASETS`; inherited object keys such as `toString` are not names. */
export function isDatasetName(s: string): s is DatasetName {
  return Object.hasOwn(DATASETS, s);
}

/** Registered names, sorted so that listings and error messages are stable. */
export function datasetNames(registry: DatasetRegistry = DATASETS): string[] {
  return Object.keys(registry).sort();
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * Problems with one registry entry, empty when it is usable. Entries can come from callers (tests, future
 * registries), and a bad relative path could otherwise make the resolver read or write outside its directories.
 */
export function datasetEntryProblems(name: string, entry: DatasetEntry): string[] {
  const problems: string[] = [];
  const where = `dataset "${name}"`;
  if (name.trim() === "") problems.push("dataset name is empty");
  const rel = entry.relativePath;
  if (typeof rel !== "string" || rel === "") {
    problems.push(`${where}: relativePath must be a non-empty string`);
  } else if (rel.startsWith("/") || rel.includes("\\") || /^[A-Za-z]:/.test(rel)) {
    problems.push(`${where}: relativePath "${rel}" must be relative and use "/" separators`);
  } else if (rel.split("/").some((seg) => seg === "" || seg === "." || seg === "..")) {
    problems.push(`${where}: relativePath "${rel}" must not contain empty, "." or ".." segments`);
  }
  if (typeof entry.sha256 !== "string" || !SHA256_HEX.test(entry.sha256)) {
    problems.push(`${where}: sha256 must be 64 lowercase hex digits, got ${JSON.stringify(entry.sha256)}`);
  }
  if (!Number.isSafeInteger(entry.bytes) || entry.bytes < 0) {
    problems.push(`${where}: bytes must be a non-negative integer, got ${JSON.stringify(entry.bytes)}`);
  }
  let url: URL | undefined;
  try {
    url = new URL(entry.url);
  } catch {
    problems.push(`${where}: url ${JSON.stringify(entry.url)} is not a valid URL`);
  }
  if (url && url.protocol !== "https:" && url.protocol !== "http:") {
    problems.push(`${where}: url ${entry.url} must use http or https`);
  }
  return problems;
}
