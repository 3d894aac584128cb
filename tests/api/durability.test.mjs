// SPEC 4: "a 202 means the job is durably stored, and a crash or restart at
// any moment resumes every job and every undelivered event."
// Create ~200 jobs concurrently, SIGKILL right after the last 202, restart on
// the same database: every accepted job must finish and its events arrive.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';

import { makeTemp, rmTemp, createProject, createKey, startServer } from './lib/server.mjs';
import { startReceiver } from './lib/receiver.mjs';
import { assertEvent } from './lib/spec.mjs';

const N = 200;
const TIMEOUT = 60000;

let rx;
let dir;
let db;
let key;
let first;
let second;
let third;
// Retries a few seconds apart: the restart test below needs an event still
// waiting for its retry when the server stops; the other test never fails
// a delivery, so the schedule does not matter there.
const SCHEDULE = '3s,3s,3s,3s';

before(async () => {
  rx = await startReceiver();
  dir = makeTemp();
  db = path.join(dir, 'collie.db');
  createProject(db, 'durable');
  key = createKey(db, 'durable');
});

after(async () => {
  for (const s of [first, second, third]) if (s && !s.exited) await s.kill();
  if (rx) await rx.close();
  rmTemp(dir);
});

// The modes of SPEC 3.2 and the events each must produce.
const KINDS = [
  { name: 'legacy', body: (i) => ({ message: `legacy ${i}` }), events: ['job.inbound_complete'], final: ['completed'] },
  { name: 'input', body: (i) => ({ message_input: `input ${i}` }), events: ['job.inbound_complete'], final: ['awaiting_response'] },
  { name: 'input_only', body: (i) => ({ message_input: `input only ${i}`, inbound_only: true }), events: ['job.inbound_complete'], final: ['completed'] },
  { name: 'output', body: (i) => ({ message_output: `output ${i}` }), events: ['job.outbound_complete'], final: ['completed'] },
  { name: 'combined', body: (i) => ({ message_input: `in ${i}`, message_output: `out ${i}` }), events: ['job.inbound_complete', 'job.outbound_complete'], final: ['completed'] },
];

test(`${N} concurrent creates, SIGKILL after the last 202, restart: nothing accepted is lost`, { timeout: 180000 }, async () => {
  const p = rx.path('durable');
  const url = rx.url(p);
  first = await startServer({ db, retrySchedule: SCHEDULE });
  const c1 = first.client(key);

  const answers = await Promise.all(
    Array.from({ length: N }, (_, i) => {
      const kind = KINDS[i % KINDS.length];
      return c1
        .post('/v1/jobs', { ...kind.body(i), webhook_url: url, metadata: { i, kind: kind.name } })
        .then((r) => ({ r, kind, i }))
        .catch((e) => ({ e, kind, i }));
    }),
  );
  await first.kill(); // SIGKILL: no clean shutdown

  const accepted = answers.filter((a) => a.r && a.r.status === 202);
  for (const a of answers) {
    if (a.r && a.r.status !== 202) assert.ok(a.r.status === 429 || a.r.status === 503, `job ${a.i}: unexpected ${a.r.status} ${a.r.text}`);
  }
  assert.ok(accepted.length >= N * 0.9, `most creates accepted: ${accepted.length}/${N}`);

  second = await startServer({ db, retrySchedule: SCHEDULE });
  const c2 = second.client(key);

  for (const a of accepted) {
    const id = a.r.json.job_id;
    const job = await c2.waitJob(id, (j) => a.kind.final.includes(j.status), `${a.kind.name} job reaches ${a.kind.final}`, TIMEOUT);
    assert.deepEqual(job.metadata, { i: a.i, kind: a.kind.name });
  }

  await rx.waitFor(
    () => accepted.every((a) => rx.eventsOf(a.r.json.job_id).length >= a.kind.events.length),
    TIMEOUT,
    'every accepted job’s events',
  );
  for (const a of accepted) {
    const id = a.r.json.job_id;
    const events = rx.eventsOf(id); // distinct webhook-ids: at-least-once allowed
    assert.deepEqual(events.map((r) => r.json.type), a.kind.events, `events of ${a.kind.name} job ${id}`);
    for (const rec of rx.forJob(id)) assertEvent(rec, { secret: a.r.json.webhook_secret, jobId: id });
  }

  // The awaiting jobs still work after the restart.
  const input = accepted.filter((a) => a.kind.name === 'input').slice(0, 5);
  for (const a of input) {
    const r = await c2.respond(a.r.json.job_id, `answer ${a.i}`);
    assert.equal(r.status, 202, r.text);
  }
  for (const a of input) {
    await c2.waitStatus(a.r.json.job_id, 'completed', TIMEOUT);
    await rx.waitEvents(a.r.json.job_id, 2, TIMEOUT);
  }

  // Restarted server lists exactly the accepted jobs (none invented, none lost).
  const listed = new Set();
  for (let page = 1; ; page++) {
    const r = await c2.get(`/v1/jobs?page=${page}&page_size=100`);
    assert.equal(r.status, 200, r.text);
    for (const j of r.json.jobs) listed.add(j.job_id);
    if (r.json.jobs.length < 100) break;
  }
  for (const a of accepted) assert.ok(listed.has(a.r.json.job_id), `accepted job ${a.r.json.job_id} listed`);
  // `second` keeps running for the next test.
});

test('a clean restart (SIGTERM) keeps an undelivered event and retries it', { timeout: 120000 }, async () => {
  const p = rx.path('down-then-up');
  let up = false;
  const url = rx.plan(p, () => (up ? 200 : 503));
  // The server from the test above (retries 3 s apart), or a new one.
  const s1 = second && !second.exited ? second : await startServer({ db, retrySchedule: SCHEDULE });
  const c1 = s1.client(key);
  const job = await c1.createJob({ message: 'survive a restart', webhook_url: url });
  await rx.waitFor(() => rx.on(p).length >= 1, TIMEOUT, 'first attempt');
  await c1.waitJob(job.job_id, (j) => j.webhook_delivery?.status === 'retrying', 'delivery retrying');
  await s1.stop();
  const attemptsBefore = rx.on(p).length;

  up = true;
  const s2 = (third = await startServer({ db, retrySchedule: SCHEDULE }));
  try {
    const c2 = s2.client(key);
    const j = await c2.getJob(job.job_id);
    assert.equal(j.status, 'completed');
    assert.ok(['retrying', 'pending', 'delivering', 'delivered'].includes(j.webhook_delivery.status), JSON.stringify(j.webhook_delivery));
    const done = await c2.waitDelivered(job.job_id, TIMEOUT);
    assert.equal(done.webhook_delivery.attempts, rx.on(p).length, 'every attempt is recorded, across the restart');
    const recs = rx.on(p);
    assert.ok(recs.length > attemptsBefore, 'the retry happened after the restart');
    assert.equal(new Set(recs.map((x) => x.headers['webhook-id'])).size, 1, 'same event id after restart');
    assert.equal(recs.at(-1).answered, 200);
    assertEvent(recs.at(-1), { secret: job.webhook_secret, jobId: job.job_id, type: 'job.inbound_complete' });
  } finally {
    await s2.stop();
  }
});
