/** Characters a POSIX shell reads as themselves outside quotes. */
const PLAIN = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * A command line that pastes back into a shell as the same arguments (AIPerf prints its `CLI Command` the same way):
 * arguments with spaces, quotes or other special characters are single-quoted.
 */
export function shellCommand(args: readonly string[]): string {
  return args.map((a) => (a !== "" && PLAIN.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)).join(" ");
}
