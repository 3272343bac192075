/**
 * A zero-think-time OpenAI-style SSE server for the load-generator benchmark, run as its own process so it does
 * not share the client's event loop. Request body: `max_completion_tokens` (tokens to stream), optional
 * `hold_ms` (spread the tokens evenly over this long, to keep streams open). It logs the monotonic time
 * (`process.hrtime`, comparable across processes on one machine) at which it sent each request's first token
 * and the time each request's headers arrived, served as JSON at GET /log (`/log?clear` also forgets them). Prints
 * `listening <port>` when ready. `GET /health` and `/v1/models` let a frontend take it as a worker.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

const CHUNK = `data: ${JSON.stringify({ object: "chat.completion.chunk", choices: [{ index: 0, delta: { content: "x" } }] })}\n\n`;
const firstTokenNs = new Map<string, string>();
const arrivalNs = new Map<string, string>();
let active = 0;
let peak = 0;

const server = createServer((req, res) => {
  if (req.method === "GET" && (req.url === "/log" || req.url === "/log?clear")) {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        firstTokenNs: Object.fromEntries(firstTokenNs),
        arrivalNs: Object.fromEntries(arrivalNs),
        peak,
      }),
    );
    if (req.url === "/log?clear") {
      firstTokenNs.clear();
      arrivalNs.clear();
      peak = 0;
    }
    return;
  }
  // Enough of an engine's surface for a frontend to put it in its pool.
  if (req.method === "GET" && req.url === "/health") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end('{"status":"ok"}');
    return;
  }
  if (req.method === "GET" && req.url === "/v1/models") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end('{"object":"list","data":[{"id":"bench","object":"model"}]}');
    return;
  }
  // Anything else but a completion (a load generator's probe for /metrics, say) is not served.
  if (req.method !== "POST") {
    res.writeHead(404).end();
    return;
  }
  // The request line and headers are parsed: the moment the request reached the server.
  arrivalNs.set(String(req.headers["x-request-id"]), process.hrtime.bigint().toString());
  let body = "";
  req.on("data", (c) => {
    body += c;
  });
  req.on("end", () => {
    const json = JSON.parse(body) as { max_completion_tokens?: number; hold_ms?: number };
    const n = json.max_completion_tokens ?? 1;
    const hold = json.hold_ms ?? 0;
    const id = String(req.headers["x-request-id"]);
    active++;
    peak = Math.max(peak, active);
    res.on("close", () => {
      active--;
    });
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.write(CHUNK);
    firstTokenNs.set(id, process.hrtime.bigint().toString());
    const finish = () => {
      res.write(
        `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 1, completion_tokens: n } })}\n\n`,
      );
      res.end("data: [DONE]\n\n");
    };
    if (hold === 0) {
      // As fast as the socket takes them, in batches so the server is never the bottleneck.
      const batch = CHUNK.repeat(256);
      let left = n - 1;
      const pump = () => {
        while (left > 0) {
          const k = Math.min(left, 256);
          left -= k;
          const ok = res.write(k === 256 ? batch : CHUNK.repeat(k));
          if (!ok) {
            res.once("drain", pump);
            return;
          }
        }
        finish();
      };
      pump();
      return;
    }
    let sent = 1;
    const every = hold / Math.max(n - 1, 1);
    const timer = setInterval(() => {
      if (sent >= n) {
        clearInterval(timer);
        finish();
        return;
      }
      res.write(CHUNK);
      sent++;
    }, every);
    res.on("close", () => clearInterval(timer));
  });
});
server.keepAliveTimeout = 60_000;
server.maxConnections = 20_000;
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
