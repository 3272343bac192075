/**
 * The baseline for the frontend benchmark: the least a proxy can do — node:http in, undici to one upstream,
 * the response piped back chunk by chunk — with no parsing, tokenizing or routing. `plain-proxy.ts URL` prints
 * `listening <port>` when ready.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Pool } from "undici";

const upstream = new Pool(process.argv[2]!, { connections: 10_000 });
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", async () => {
    try {
      const up = await upstream.request({
        path: req.url ?? "/",
        method: req.method as "POST",
        headers: {
          "content-type": "application/json",
          "x-request-id": String(req.headers["x-request-id"] ?? ""),
        },
        body: Buffer.concat(chunks),
      });
      res.writeHead(up.statusCode, { "content-type": String(up.headers["content-type"] ?? "text/plain") });
      res.flushHeaders();
      for await (const c of up.body) res.write(c);
      res.end();
    } catch (e) {
      res.destroy(e as Error);
    }
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () =>
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`),
);
process.on("SIGTERM", () => server.close(() => process.exit(0)));
