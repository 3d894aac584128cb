// Benchmark webhook receiver: answers 200 at once and records, per job,
// the time each event arrived. On SIGTERM (or GET /stats) it reports counts.
import http from "node:http";
import fs from "node:fs";

const port = Number(process.env.PORT || 9901);
const out = process.env.OUT || "";
let events = 0;
const arrivals = []; // [job_id, type, epoch ms]

const server = http.createServer((req, res) => {
  if (req.method === "GET") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ events }));
    return;
  }
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const now = Date.now();
    events++;
    if (out) {
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString());
        arrivals.push([body.data.job_id, body.type, now]);
      } catch { /* counted anyway */ }
    }
    res.writeHead(200);
    res.end();
  });
});
server.keepAliveTimeout = 60000;
server.listen(port, "127.0.0.1");
process.on("SIGTERM", () => {
  if (out) fs.writeFileSync(out, arrivals.map((a) => a.join(" ")).join("\n") + "\n");
  process.exit(0);
});
