// A worker thread starts without the parent's module loader: register tsx's first, then load the TypeScript entry.
import { register } from "tsx/esm/api";

register();
await import("./arm-worker.ts");
