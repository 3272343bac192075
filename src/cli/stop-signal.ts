import { EXIT_WITH_PARENT_ENV } from "../serve/stack/lifeline.ts";

/** Signals that stop a long-running server command (`worker`, `frontend`, `up`) cleanly. */
export const SERVER_STOP_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/**
 * Resolves with the first stop signal the process receives, and stops listening for the others; under
 * EXIT_WITH_PARENT_ENV, with "parent-exit" when stdin closes.
 */
export function waitForStopSignal(): Promise<NodeJS.Signals | "parent-exit"> {
  return new Promise((resolve) => {
    const stop = (s: NodeJS.Signals | "parent-exit") => {
      for (const sig of SERVER_STOP_SIGNALS) process.off(sig, stop);
      process.stdin.off("end", onEnd);
      if (watching) process.stdin.pause();
      resolve(s);
    };
    const onEnd = () => stop("parent-exit");
    const watching = process.env[EXIT_WITH_PARENT_ENV] === "1";
    for (const sig of SERVER_STOP_SIGNALS) process.on(sig, stop);
    if (watching) {
      process.stdin.on("end", onEnd);
      process.stdin.resume();
    }
  });
}
