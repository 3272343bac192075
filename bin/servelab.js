#!/usr/bin/env node
// The CLI runs from TypeScript sources through tsx's loader, so there is no build step between edit and run.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli/main.ts");
process.exitCode = await main(process.argv);
