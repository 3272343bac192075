// A worker thread starts without the parent's module loader: register tsx's first, then load the TypeScript entry
// the parent named in `workerData.entry` (see startThread).
import { workerData } from "node:worker_threads";
import { register } from "tsx/esm/api";

register();
await import(workerData.entry);
