/**
 * The one registry of user-facing errors. Codes are stable: scripts and tests match on them, so a code is never
 * renamed or reused once released; add a new one instead.
 */
export const ERROR_CODES = {
  USAGE: "invalid command-line arguments or option values",
  FILE_NOT_FOUND: "an input file does not exist",
  FILE_READ: "an input file could not be read",
  FILE_WRITE: "an output file could not be written",
  OUTPUT_LOCKED: "another servelab run is writing the same output directory",
  RUN_INCOMPLETE: "an artifact directory holds a run that did not finish",
  RUN_FAILED: "every request of a run failed, or more than the allowed share",
  INTERRUPTED: "the run was stopped (Ctrl-C or a signal) before it completed",
  ENDPOINT_CHECK: "a live endpoint does not serve what the run will send",
  TRACE_EMPTY: "a trace file holds no requests",
  TRACE_INVALID: "a trace file has invalid lines",
  RECIPE_PARSE: "a recipe file is not valid YAML",
  RECIPE_INVALID: "a recipe does not match the recipe schema",
  DATASET_UNKNOWN: "no dataset is registered under that name",
  DATASET_CHECKSUM: "a dataset file does not match its registered checksum",
  DATASET_DOWNLOAD: "a dataset could not be downloaded",
  SYNTH_INPUT: "the synthesizer cannot build a prefix tree from its input",
  SYNTH_FILTER: "the synthesizer's length filters reject (nearly) every sampled request",
  KV_EVENT_DECODE: "a KV-cache event payload could not be decoded",
  ROUTER_NO_TARGET: "the router has no healthy target to send a request to",
  ROUTER_UNKNOWN_TARGET: "a router call named a target that is not registered",
  KV_EVENTS_CONFIG: "a KV-event publisher or subscriber configuration is invalid",
  KV_EVENTS_SOCKET: "a KV-event ZMQ socket could not be bound or connected",
  DISCOVERY_INVALID: "a discovery file (the workers `servelab up` started) is not valid",
  STACK_START: "a process of the live stack did not start or become healthy",
  DEPLOY_RENDER: "a recipe cannot be rendered into Kubernetes manifests",
  DEPLOY_INVALID: "a Kubernetes manifest breaks its schema or a cross-object rule",
  DEPLOY_IMPORT: "a Dynamo recipe directory cannot be imported as a recipe",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error caused by the user's input or environment: printed as `error[CODE]: message`, never with a stack. */
export class ServelabError extends Error {
  readonly code: ErrorCode;
  /** Extra lines printed under the message (e.g. one per bad trace line). */
  readonly details: readonly string[];

  constructor(code: ErrorCode, message: string, details: readonly string[] = []) {
    super(message);
    this.name = "ServelabError";
    this.code = code;
    this.details = details;
  }
}

export function isServelabError(e: unknown): e is ServelabError {
  return e instanceof ServelabError;
}

/** Exit status for a user error; 1 is left for unexpected failures. */
export const USER_ERROR_EXIT = 2;

export function formatError(e: ServelabError): string {
  return [`error[${e.code}]: ${e.message}`, ...e.details.map((d) => `  ${d}`)].join("\n");
}
