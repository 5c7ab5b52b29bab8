// Records what the Faro web SDK's OTLP transport really posts, into logs.json and traces.json here.
// Not run by the tests (they post the recordings); to record again, with the versions pinned below:
//   mkdir -p /tmp/faro-record && cp tests/support/data/faro/record.mjs /tmp/faro-record/ && cd /tmp/faro-record
//   npm install --no-audit --no-fund @grafana/faro-core@2.12.1 @grafana/faro-web-sdk@2.12.1 \
//     @grafana/faro-transport-otlp-http@2.12.1
//   node record.mjs <repo>/tests/support/data/faro
// Faro's own core API, stack parser (the web SDK's) and OTLP transport make the payloads; only the
// browser's metas are given (Node has no navigator) and the page's fetch span (the web tracing
// instrumentation's exporter hands the transport OTLP spans like it).
import http from "node:http";
import { writeFileSync } from "node:fs";
import { initializeFaro, LogLevel, VERSION } from "@grafana/faro-core";
import { OtlpHttpTransport } from "@grafana/faro-transport-otlp-http";
import { parseStacktrace } from "@grafana/faro-web-sdk";

const out = process.argv[2] ?? ".";
const received = {};
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    const kind = req.url.endsWith("/v1/logs") ? "logs" : "traces";
    (received[kind] ??= []).push(body);
    res.writeHead(200, { "Content-Type": "application/json" }).end("{}");
  });
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const base = `http://127.0.0.1:${server.address().port}`;

const noop = () => {};
const faro = initializeFaro({
  app: { name: "shop-web", version: "1.4.2", environment: "production" },
  batching: { enabled: true, sendTimeout: 200, itemLimit: 50 },
  dedupe: false,
  globalObjectKey: "faro",
  instrumentations: [],
  internalLoggerLevel: 1,
  isolate: true,
  metas: [
    // What the web SDK's browser meta reads from navigator in a browser (Node has none).
    () => ({
      browser: {
        name: "Firefox", version: "133.0", os: "Linux", mobile: false, language: "en-US",
        userAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        viewportWidth: "1280", viewportHeight: "720",
      },
    }),
    () => ({ sdk: { name: "@grafana/faro-web-sdk", version: VERSION, integrations: [] } }),
    () => ({ session: { id: "4Qh2cV8mZk" } }),
    () => ({ page: { url: "https://shop.example.com/checkout", id: "p-1" } }),
    () => ({ view: { name: "checkout" } }),
  ],
  parseStacktrace,
  paused: false,
  preventGlobalExposure: true,
  transports: [new OtlpHttpTransport({ logsURL: `${base}/v1/logs`, tracesURL: `${base}/v1/traces` })],
  unpatchedConsole: { log: noop, warn: noop, error: noop, info: noop, debug: noop, trace: noop },
  ignoreErrors: [],
  ignoreUrls: [],
  sessionTracking: { enabled: false },
});

const traceId = "5b8efff798038103d269b633813fc60c";
const spanId = "eee19b7ec3c1b174";
function renderTotal(cart) {
  return cart.summary.total; // cart.summary is undefined: a real TypeError with a real stack
}
try {
  renderTotal({});
} catch (error) {
  faro.api.pushError(error, { spanContext: { traceId, spanId } });
}
faro.api.pushMeasurement({ type: "web-vitals", values: { lcp: 2450.3 } }, { spanContext: { traceId, spanId } });
faro.api.pushLog(["cart: price list is stale, refetching"], { level: LogLevel.WARN });
const now = BigInt(Date.now()) * 1000000n;
faro.api.pushTraces({
  resourceSpans: [{
    resource: { attributes: [] },
    scopeSpans: [{
      scope: { name: "@opentelemetry/instrumentation-fetch", version: "0.57.0" },
      spans: [{
        traceId, spanId, name: "HTTP POST", kind: 3,
        startTimeUnixNano: String(now - 182000000n), endTimeUnixNano: String(now),
        attributes: [
          { key: "http.request.method", value: { stringValue: "POST" } },
          { key: "url.full", value: { stringValue: "https://api.shop.example.com/cart/price" } },
          { key: "http.response.status_code", value: { intValue: 200 } },
        ],
        status: { code: 0 },
      }],
    }],
  }],
});
await new Promise((ok) => setTimeout(ok, 1500));
server.close();
for (const [kind, bodies] of Object.entries(received)) {
  if (bodies.length !== 1) throw new Error(`${kind}: ${bodies.length} requests, expected one batch`);
  writeFileSync(`${out}/${kind}.json`, JSON.stringify(bodies[0], null, 2) + "\n");
}
console.log(Object.keys(received).join(", "));
process.exit(0);
