/** Signals that stop a long-running server command (`worker`, `frontend`, `up`) cleanly. */
export const SERVER_STOP_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/** Resolves with the first stop signal the process receives, and stops listening for the others. */
export function waitForStopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (s: NodeJS.Signals) => {
      for (const sig of SERVER_STOP_SIGNALS) process.off(sig, stop);
      resolve(s);
    };
    for (const sig of SERVER_STOP_SIGNALS) process.on(sig, stop);
  });
}
