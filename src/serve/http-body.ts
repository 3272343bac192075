import type { IncomingMessage, Server } from "node:http";
import type { AddressInfo } from "node:net";
import { ApiError } from "./openai-errors.ts";

/** The client went away before its request was read or served; there is no one to answer. */
export class ClientGone extends Error {}

/**
 * Reads a request body up to `limit` bytes. A declared length over the limit is refused before reading; what the
 * client still sends is read and dropped by the HTTP layer.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = () =>
    new ApiError(413, `the request body exceeds the server's limit of ${limit} bytes`, {
      code: "request_too_large",
    });
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on("data", (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > limit) {
        over = true;
        chunks.length = 0;
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (!over) resolve(Buffer.concat(chunks, size));
    });
    req.on("close", () => {
      if (!req.complete) reject(new ClientGone());
    });
    req.on("error", () => reject(new ClientGone()));
  });
}

export function parseJsonBody(buf: Buffer): unknown {
  if (buf.length === 0)
    throw new ApiError(400, "the request body is empty; expected a JSON object", { code: "invalid_json" });
  try {
    return JSON.parse(buf.toString("utf8"));
  } catch (e) {
    throw new ApiError(400, `the request body is not valid JSON: ${(e as Error).message}`, {
      code: "invalid_json",
    });
  }
}

/**
 * Listens on `host:port` (0: any free port) and resolves with where the server is reachable; a bind failure
 * (EADDRINUSE, EACCES) rejects instead of surfacing as an `error` event. Later errors go to `onError`.
 */
export async function listenOn(
  server: Server,
  host: string,
  port: number,
  onError: (e: unknown) => void,
): Promise<{ url: string; host: string; port: number }> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", onError);
  const address = server.address() as AddressInfo;
  const urlHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return { url: `http://${urlHost}:${address.port}`, host: address.address, port: address.port };
}
