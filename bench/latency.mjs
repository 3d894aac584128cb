// End-to-end latency: POST /v1/jobs -> webhook received, at a steady rate.
// Runs its own webhook receiver; prints p50/p99/max of (receipt - send) over
// every job, and how many arrived. Usage:
//   node latency.mjs BASE_URL KEY [RATE_PER_S=500] [SECONDS=10]
import http from "node:http";

const [base, key, rateArg, secondsArg] = process.argv.slice(2);
const rate = Number(rateArg || 500);
const seconds = Number(secondsArg || 10);
const total = rate * seconds;
const sent = new Map();    // job_id -> time the POST was sent
const arrived = new Map(); // job_id -> time its webhook arrived (may precede the 202)

const receiver = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const now = performance.now();
    try {
      const id = JSON.parse(Buffer.concat(chunks).toString()).data.job_id;
      if (!arrived.has(id)) arrived.set(id, now);
    } catch { /* ignore */ }
    res.writeHead(200);
    res.end();
  });
});
await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
const hook = `http://127.0.0.1:${receiver.address().port}/hook`;
const body = JSON.stringify({
  message_input: "The quick brown fox jumps over the lazy dog. ".repeat(23),
  webhook_url: hook,
  inbound_only: true,
});
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

function post() {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = http.request(`${base}/v1/jobs`, {
      method: "POST", agent,
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        if (res.statusCode === 202) sent.set(JSON.parse(Buffer.concat(chunks)).job_id, t0);
        resolve(res.statusCode);
      });
    });
    req.on("error", () => resolve(0));
    req.end(body);
  });
}

const start = performance.now();
const inflight = [];
for (let i = 0; i < total; i++) {
  const due = start + (i * 1000) / rate;
  const wait = due - performance.now();
  if (wait > 1) await new Promise((r) => setTimeout(r, wait));
  inflight.push(post());
}
await Promise.all(inflight);
const deadline = performance.now() + 30000;
const missing = () => [...sent.keys()].filter((id) => !arrived.has(id)).length;
while (missing() > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
const latencies = [...sent].filter(([id]) => arrived.has(id))
  .map(([id, t0]) => arrived.get(id) - t0).sort((a, b) => a - b);
const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
console.log(`end-to-end (POST -> webhook), ${rate} jobs/s for ${seconds} s: ` +
  `accepted ${sent.size}/${total}, webhooks received ${latencies.length}, p50 ${pct(50).toFixed(2)} ms, ` +
  `p99 ${pct(99).toFixed(2)} ms, max ${latencies[latencies.length - 1].toFixed(2)} ms`);
agent.destroy();
receiver.close();
