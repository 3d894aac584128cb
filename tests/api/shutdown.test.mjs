// SPEC 4 and the CLI contract: SIGTERM shuts down cleanly (exit 0) even with
// work in flight, and nothing accepted is lost across the restart.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';

import { makeTemp, rmTemp, createProject, createKey, startServer } from './lib/server.mjs';
import { startReceiver } from './lib/receiver.mjs';
import { assertEvent, TERMINAL } from './lib/spec.mjs';

const TIMEOUT = 60000;
// A short attempt timeout keeps the lease of an abandoned attempt short.
const FLAGS = { retrySchedule: '200ms,400ms,800ms,1s,1s', extraArgs: ['--webhook-timeout', '2s'] };

let rx;
let dir;
let db;
let key;
const servers = [];

before(async () => {
  rx = await startReceiver();
  dir = makeTemp();
  db = path.join(dir, 'collie.db');
  createProject(db, 'sd');
  key = createKey(db, 'sd');
});

after(async () => {
  for (const s of servers) if (!s.exited) await s.kill();
  if (rx) await rx.close();
  rmTemp(dir);
});

async function start() {
  const s = await startServer({ db, ...FLAGS });
  servers.push(s);
  return s;
}

test('SIGTERM while a webhook attempt is in flight: exit 0, and the event is delivered after a restart', { timeout: 180000 }, async () => {
  const p = rx.path('hanging');
  // The first attempt hangs far past the attempt timeout; later ones succeed.
  const url = rx.plan(p, (rec, n) => (n === 0 ? { status: 200, delayMs: 30000 } : 200));
  const s1 = await start();
  const job = await s1.client(key).createJob({ message: 'in flight at shutdown', webhook_url: url });
  await rx.waitFor(() => rx.on(p).length >= 1, TIMEOUT, 'the hanging attempt');
  await s1.stop(); // asserts exit 0

  const s2 = await start();
  const c2 = s2.client(key);
  const got = await c2.waitDelivered(job.job_id, TIMEOUT);
  assert.equal(got.status, 'completed');
  const recs = rx.on(p);
  assert.ok(recs.length >= 2, 'retried after the restart');
  assert.equal(new Set(recs.map((r) => r.headers['webhook-id'])).size, 1, 'same event');
  for (const r of recs) assertEvent(r, { secret: job.webhook_secret, jobId: job.job_id, type: 'job.inbound_complete' });
  await s2.stop();
});

test('SIGTERM during a burst of creates: exit 0, every 202 survives the restart', { timeout: 180000 }, async () => {
  const p = rx.path('burst');
  const url = rx.url(p);
  const s1 = await start();
  const c1 = s1.client(key);
  let stopping;
  const results = await Promise.all(
    Array.from({ length: 60 }, (_, i) =>
      c1
        .post('/v1/jobs', { message_input: `burst ${i}`, inbound_only: true, webhook_url: url, metadata: { i } })
        .then((r) => {
          // Trigger the shutdown as soon as the first job is accepted.
          if (r.status === 202 && !stopping) stopping = s1.stop();
          return r;
        })
        .catch((e) => ({ error: e })),
    ),
  );
  await (stopping ?? s1.stop());
  const accepted = results.filter((r) => r.status === 202);
  assert.ok(accepted.length >= 1);
  if (process.env.COLLIE_TEST_DEBUG) console.log('burst:', results.map((r) => r.status ?? r.error.code).join(','));
  for (const r of results) {
    if (r.error || r.status === 202) continue;
    // A request refused during shutdown must be a proper 503, not a 5xx crash.
    assert.equal(r.status, 503, `refused during shutdown: ${r.status} ${r.text}`);
    assert.equal(r.json?.error?.code, 'unavailable', r.text);
  }

  const s2 = await start();
  const c2 = s2.client(key);
  for (const r of accepted) {
    const job = await c2.waitJob(r.json.job_id, (j) => TERMINAL.includes(j.status), 'terminal after restart', TIMEOUT);
    assert.equal(job.status, 'completed');
  }
  await rx.waitFor(() => accepted.every((r) => rx.eventsOf(r.json.job_id).length >= 1), TIMEOUT, 'events of every accepted job');
  await s2.stop();
});

test('SIGTERM while a policy compiles: new requests get 503 at once, the PUT its answer, exit 0', { timeout: 300000 }, async () => {
  // 100 such regexes compile in ~3 s (far longer under the sanitizers), and
  // shutdown lets a compile in progress finish. Meanwhile the server used
  // to accept jobs (202) that it no longer filtered.
  const s = await start();
  const c = s.client(key);
  const doc = {
    inbound: Array.from({ length: 100 }, (_, i) => ({ id: `r${i}`, type: 'regex', action: 'flag', pattern: `ab[c-z]{2,5}x${i}(foo|bar)+q` })),
    outbound: [],
  };
  const put = c.put('/v1/policy', doc, { timeoutMs: 280000 });
  await new Promise((resolve) => setTimeout(resolve, 300)); // compiling
  const stopped = s.stop({ timeoutMs: 280000 });
  await new Promise((resolve) => setTimeout(resolve, 200)); // the signal is handled
  const r = await c.post('/v1/jobs', { message_input: 'too late', inbound_only: true, webhook_url: rx.url(rx.path('too-late')) });
  assert.equal(r.status, 503, r.text);
  assert.equal(r.json?.error?.code, 'unavailable', r.text);
  assert.equal(r.headers['retry-after'], '1');
  const ready = await fetch(`${s.url}/readyz`);
  assert.equal(ready.status, 503);
  const p = await put;
  assert.equal(p.status, 200, p.text.slice(0, 200));
  await stopped;
});
