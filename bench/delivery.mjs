// Webhook delivery throughput with a backlog: N jobs are created while the
// local receiver holds every request it gets (so the dispatcher has a full
// set in flight and the rest waiting); then the receiver is released and
// answers each request after DELAY ms. Prints the events/s delivered from
// the release to the last arrival, and the peak number of requests open at
// the receiver. Usage:
//   node delivery.mjs BASE_URL KEY [JOBS=20000] [DELAY_MS=100]
import http from "node:http";

const [base, key, jobsArg, delayArg] = process.argv.slice(2);
const total = Number(jobsArg || 20000);
const delay = Number(delayArg || 100);
let arrived = 0, open = 0, peak = 0, first = 0, last = 0;
const seen = new Set();
let held = [];          // responders waiting for the release
let released = false;

const receiver = http.createServer((req, res) => {
  open++;
  if (open > peak) peak = open;
  const id = req.headers["webhook-id"];
  req.resume();
  const answer = () => setTimeout(() => {
    open--;
    const now = performance.now();
    if (!seen.has(id)) {
      seen.add(id);
      arrived++;
      last = now;
    }
    res.writeHead(200);
    res.end();
  }, delay);
  req.on("end", () => (released ? answer() : held.push(answer)));
});
receiver.keepAliveTimeout = 60000;
receiver.maxConnections = 100000;
await new Promise((r) => receiver.listen(0, "127.0.0.1", 4096, r));
const hook = `http://127.0.0.1:${receiver.address().port}/hook`;
const body = JSON.stringify({ message_input: "hello there, nothing to see", webhook_url: hook,
                              inbound_only: true });
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const post = () => new Promise((resolve) => {
  const req = http.request(`${base}/v1/jobs`, { method: "POST", agent,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" } },
  (res) => { res.resume(); res.on("end", () => resolve(res.statusCode)); });
  req.on("error", () => resolve(0));
  req.end(body);
});

let next = 0, accepted = 0;
async function creator() {
  while (next < total) {
    next++;
    if ((await post()) === 202) accepted++;
  }
}
await Promise.all(Array.from({ length: 64 }, creator));
released = true;
first = performance.now();
for (const answer of held) answer();
held = [];
const deadline = performance.now() + 120000;
while (arrived < accepted && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
const secs = (last - first) / 1000;
console.log(`delivery of a ${accepted}-event backlog: ${arrived} events in ${secs.toFixed(2)} s = ` +
  `${(arrived / secs).toFixed(0)} events/s; receiver held each ${delay} ms; ` +
  `peak ${peak} requests in flight`);
agent.destroy();
receiver.close();
process.exit(0);
