// SPEC 3.1: Idempotency-Key.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';

import { assertError } from './lib/client.mjs';
import { assertCreated } from './lib/spec.mjs';
import { useCollie } from './lib/suite.mjs';

let env;
let rx;
let c;
let hook;

useCollie({ projects: ['a', 'b', 'conc'] }, (suite) => {
  ({ env, rx } = suite);
  hook = rx.url(rx.path('idem'));
  c = env.client('a');
});

const newKey = () => `idem-${crypto.randomUUID()}`;

test('same key + same body → the first response again (same job, same secret)', async () => {
  const key = newKey();
  const body = { message_input: 'idempotent hello', inbound_only: true, webhook_url: hook, metadata: { n: 1 } };
  const r1 = await c.post('/v1/jobs', body, { headers: { 'idempotency-key': key } });
  assert.equal(r1.status, 202, r1.text);
  assertCreated(r1.json);
  const r2 = await c.post('/v1/jobs', body, { headers: { 'idempotency-key': key } });
  assert.equal(r2.status, 202, r2.text);
  assert.equal(r2.json.job_id, r1.json.job_id, 'same job');
  assert.equal(r2.json.webhook_secret, r1.json.webhook_secret, 'same webhook_secret');
  assert.equal(r2.json.created_at, r1.json.created_at);
  assert.equal(r2.json.expires_at, r1.json.expires_at);

  // A replay after the job moved on still returns the first response.
  await c.waitStatus(r1.json.job_id, 'completed');
  const r3 = await c.post('/v1/jobs', body, { headers: { 'idempotency-key': key } });
  assert.equal(r3.status, 202, r3.text);
  assert.deepEqual(r3.json, r1.json, 'replay returns the first response');

  // Only one job exists and only one set of events was produced.
  const list = await c.get('/v1/jobs?page_size=100');
  assert.equal(list.json.jobs.filter((j) => j.job_id === r1.json.job_id).length, 1);
  await rx.waitEvents(r1.json.job_id, 1);
});

test('same key + different body → 422 idempotency_key_reused', async () => {
  const key = newKey();
  const r1 = await c.post('/v1/jobs', { message_input: 'one', inbound_only: true, webhook_url: hook }, { headers: { 'idempotency-key': key } });
  assert.equal(r1.status, 202, r1.text);
  const r2 = await c.post('/v1/jobs', { message_input: 'two', inbound_only: true, webhook_url: hook }, { headers: { 'idempotency-key': key } });
  assertError(r2, 422, 'idempotency_key_reused');
  const r3 = await c.post('/v1/jobs', { message_input: 'one', inbound_only: true, webhook_url: hook, metadata: { x: 1 } }, { headers: { 'idempotency-key': key } });
  assertError(r3, 422, 'idempotency_key_reused');
  // The original still replays.
  const r4 = await c.post('/v1/jobs', { message_input: 'one', inbound_only: true, webhook_url: hook }, { headers: { 'idempotency-key': key } });
  assert.equal(r4.status, 202, r4.text);
  assert.equal(r4.json.job_id, r1.json.job_id);
});

test('without a key, identical bodies create distinct jobs', async () => {
  const body = { message_input: 'no key', inbound_only: true, webhook_url: hook };
  const r1 = await c.createJob(body);
  const r2 = await c.createJob(body);
  assert.notEqual(r1.job_id, r2.job_id);
  assert.notEqual(r1.webhook_secret, r2.webhook_secret, 'secrets are per job');
});

test('different keys, same body → distinct jobs', async () => {
  const body = { message_input: 'two keys', inbound_only: true, webhook_url: hook };
  const r1 = await c.createJob(body, { headers: { 'idempotency-key': newKey() } });
  const r2 = await c.createJob(body, { headers: { 'idempotency-key': newKey() } });
  assert.notEqual(r1.job_id, r2.job_id);
});

test('keys are per project: the same key in another project creates its own job', async () => {
  const key = newKey();
  const body = { message_input: 'shared key', inbound_only: true, webhook_url: hook };
  const ra = await c.createJob(body, { headers: { 'idempotency-key': key } });
  const rb = await env.client('b').createJob(body, { headers: { 'idempotency-key': key } });
  assert.notEqual(rb.job_id, ra.job_id, "B must not get A's job");
  assert.notEqual(rb.webhook_secret, ra.webhook_secret, "B must never see A's secret");
  const gb = await env.client('b').getJob(rb.job_id);
  assert.equal(gb.job_id, rb.job_id);
});

test('a key of 255 characters is accepted; 256 → 4xx with a message', async () => {
  const ok = 'k'.repeat(255);
  const r1 = await c.post('/v1/jobs', { message_input: 'long key', inbound_only: true, webhook_url: hook }, { headers: { 'idempotency-key': ok } });
  assert.equal(r1.status, 202, r1.text);
  const r2 = await c.post('/v1/jobs', { message_input: 'long key', inbound_only: true, webhook_url: hook }, { headers: { 'idempotency-key': 'k'.repeat(256) } });
  assert.ok(r2.status === 400 || r2.status === 422, `256-char key: expected 400/422, got ${r2.status}: ${r2.text}`);
  assertError(r2, r2.status);
});

test('the limit counts characters: 255 "é" (510 bytes) accepted, 256 refused', async () => {
  // The header carries the UTF-8 bytes; Node sends a latin1 string byte for byte.
  const utf8 = (s) => Buffer.from(s, 'utf8').toString('latin1');
  const body = { message_input: 'é key', inbound_only: true, webhook_url: hook };
  const r1 = await c.post('/v1/jobs', body, { headers: { 'idempotency-key': utf8('é'.repeat(255)) } });
  assert.equal(r1.status, 202, r1.text);
  const r2 = await c.post('/v1/jobs', body, { headers: { 'idempotency-key': utf8('é'.repeat(256)) } });
  const e = assertError(r2, 400, 'invalid_request', { field: 'Idempotency-Key' });
  assert.match(e.message, /1 to 255 characters/);
});

test('concurrent duplicates: each answer is 202 with one job_id or 409 conflict; exactly one job', async () => {
  const cc = env.client('conc');
  const key = newKey();
  const body = { message_input: 'concurrent', inbound_only: true, webhook_url: hook, metadata: { conc: true } };
  const answers = await Promise.all(
    Array.from({ length: 10 }, () => cc.post('/v1/jobs', body, { headers: { 'idempotency-key': key } })),
  );
  const ids = new Set();
  let accepted = 0;
  for (const r of answers) {
    if (r.status === 202) {
      accepted++;
      ids.add(r.json.job_id);
    } else {
      assertError(r, 409, 'conflict');
    }
  }
  assert.ok(accepted >= 1, 'at least one request is accepted');
  assert.equal(ids.size, 1, `all 202 answers name the same job: ${[...ids].join(', ')}`);
  const secrets = new Set(answers.filter((r) => r.status === 202).map((r) => r.json.webhook_secret));
  assert.equal(secrets.size, 1, 'all 202 answers carry the same secret');

  // Afterwards a retry gets the job; the project holds exactly one job.
  const again = await cc.post('/v1/jobs', body, { headers: { 'idempotency-key': key } });
  assert.equal(again.status, 202, again.text);
  assert.equal(again.json.job_id, [...ids][0]);
  const list = await cc.get('/v1/jobs?page_size=100');
  assert.equal(list.status, 200, list.text);
  assert.equal(list.json.total, 1, `exactly one job exists: ${list.text}`);
  assert.equal(list.json.jobs.length, 1);
  // One job → one event.
  const jobId = [...ids][0];
  await rx.waitEvents(jobId, 1);
  await cc.waitDelivered(jobId);
  assert.equal(rx.eventsOf(jobId).length, 1);
});

test('concurrent duplicates with different bodies: one job, the others 409 or 422', async () => {
  const cc = env.client('conc');
  const key = newKey();
  const answers = await Promise.all(
    Array.from({ length: 8 }, (_, i) => cc.post('/v1/jobs', { message_input: `body ${i}`, inbound_only: true, webhook_url: hook }, { headers: { 'idempotency-key': key } })),
  );
  const ok = answers.filter((r) => r.status === 202);
  assert.equal(ok.length, 1, `exactly one body wins: ${answers.map((r) => r.status).join(',')}`);
  for (const r of answers) {
    if (r.status !== 202) assertError(r, r.status === 409 ? 409 : 422, r.status === 409 ? 'conflict' : 'idempotency_key_reused');
  }
});

test('SIGTERM → server exits 0', async () => {
  await env.stop();
});
