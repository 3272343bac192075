import { ServelabError } from "../errors.ts";

/**
 * A server URL from a flag: http:// or https:// (a bare `host:port` means http), else `error[USAGE]` naming the flag
 * and the value.
 */
export function parseHttpUrl(text: string, flag: string): URL {
  let u: URL;
  try {
    u = new URL(text.includes("://") ? text : `http://${text}`);
  } catch {
    throw new ServelabError("USAGE", `${flag} '${text}' is not a URL`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:")
    throw new ServelabError("USAGE", `${flag} '${text}' is not an http:// or https:// URL`);
  return u;
}
