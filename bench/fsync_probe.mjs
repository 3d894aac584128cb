// The disk's own commit latency, without collie: rewrites 16 KiB at the
// start of a scratch file and fdatasyncs it, in a loop, for SECONDS. A
// group commit is one such write and sync, so this is the floor under the
// create latency; stalls here show up in every figure measured meanwhile.
// Usage: node fsync_probe.mjs DIR [SECONDS=5]
import fs from "node:fs";
import path from "node:path";

const [dir, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg || 5);
const file = path.join(dir, "fsync-probe");
const fd = fs.openSync(file, "w");
const buf = Buffer.alloc(16384, 1);
const lat = [];
const end = performance.now() + seconds * 1000;
while (performance.now() < end) {
  fs.writeSync(fd, buf, 0, buf.length, 0);
  const t = performance.now();
  fs.fdatasyncSync(fd);
  lat.push(performance.now() - t);
}
fs.closeSync(fd);
fs.unlinkSync(file);
lat.sort((a, b) => a - b);
const at = (q) => lat[Math.min(lat.length - 1, Math.floor(lat.length * q))].toFixed(2);
const stalls = lat.filter((x) => x > 20).length;
console.log(`disk: ${lat.length} syncs in ${seconds} s; p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, ` +
  `max ${lat[lat.length - 1].toFixed(1)} ms; ${stalls} over 20 ms`);
