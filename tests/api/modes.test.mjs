// SPEC 3.2 (modes), 3.3 (GET), 3.4 (response) and 6 (event bodies) with the
// default policy and benign text (decision "pass").

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { assertJsonContentType } from './lib/client.mjs';
import { assertCreated, assertEvent, assertJobShape, assertResult, assertDelivery, assertTimestamp } from './lib/spec.mjs';
import { useCollie } from './lib/suite.mjs';

// Default policy (SPEC 5): inbound has 3 rules (prompt_injection, secrets,
// pii), outbound 2 (secrets, pii); legacy falls back to inbound.
const INBOUND_RULES = 3;
const OUTBOUND_RULES = 2;

const META = {
  user: 'u-1',
  n: 42,
  f: 1.5,
  ok: true,
  none: null,
  tags: ['a', 'b'],
  nested: { deep: { x: 'é😀 "quoted" \\ back' } },
};

let env;
let rx;
let c;

useCollie({ projects: ['a'] }, (suite) => {
  ({ env, rx } = suite);
  c = env.client('a');
});

function msDiff(a, b) {
  return Date.parse(a) - Date.parse(b);
}

test('legacy message: one job.inbound_complete, status completed', async () => {
  const url = rx.url(rx.path('legacy'));
  const text = 'hello legacy world';
  const created = await c.createJob({ message: text, webhook_url: url, metadata: META });
  assertCreated(created);
  // Default expiry: 3600 s (SPEC 3.1 Decision).
  assert.ok(Math.abs(msDiff(created.expires_at, created.created_at) - 3600_000) <= 1000, `expires_at - created_at = 3600 s: ${JSON.stringify(created)}`);

  const [rec] = await rx.waitEvents(created.job_id, 1);
  const ev = assertEvent(rec, { secret: created.webhook_secret, jobId: created.job_id, type: 'job.inbound_complete' });
  assert.equal(ev.data.status, 'completed');
  assert.equal(ev.data.direction, 'inbound');
  assert.deepEqual(ev.data.metadata, META, 'metadata passes through unchanged');
  assert.equal(ev.data.filtered_content, text);
  assertResult(ev.data.result, { decision: 'pass', rulesEvaluated: INBOUND_RULES });

  const job = await c.waitDelivered(created.job_id);
  assertJobShape(job);
  assert.equal(job.job_id, created.job_id);
  assert.equal(job.status, 'completed');
  assert.equal(Date.parse(job.created_at), Date.parse(created.created_at), 'GET created_at = 202 created_at');
  assert.equal(Date.parse(job.expires_at), Date.parse(created.expires_at), 'GET expires_at = 202 expires_at');
  assert.ok(Date.parse(job.completed_at) >= Date.parse(job.created_at) - 1000, 'completed_at after created_at');
  assert.deepEqual(job.metadata, META);
  assert.equal(job.message, text);
  assert.equal(job.message_input, null);
  assert.equal(job.message_output, null);
  assert.equal(job.filtered_input, text, 'legacy is filtered as inbound: filtered_input');
  assert.equal(job.filtered_output, null);
  assert.equal(job.outbound_result, null);
  assert.deepEqual(job.inbound_result, ev.data.result, 'GET inbound_result = event result');
  assertDelivery(job.webhook_delivery, { url, status: 'delivered', attempts: 1, responseCode: 200 });
  assert.equal(rx.eventsOf(created.job_id).length, 1, 'legacy job has exactly one event');
});

test('message_input: inbound_complete → awaiting_response → POST response → outbound_complete', async () => {
  const url = rx.url(rx.path('input'));
  const input = 'What is the capital of France?';
  const output = 'The capital of France is Paris.';
  const created = await c.createJob({ message_input: input, webhook_url: url, metadata: META, expires_in_seconds: 120 });
  assertCreated(created);
  assert.ok(Math.abs(msDiff(created.expires_at, created.created_at) - 120_000) <= 1000, `expires_in_seconds 120: ${JSON.stringify(created)}`);

  const [rec1] = await rx.waitEvents(created.job_id, 1);
  const ev1 = assertEvent(rec1, { secret: created.webhook_secret, jobId: created.job_id, type: 'job.inbound_complete' });
  assert.equal(ev1.data.status, 'awaiting_response');
  assert.equal(ev1.data.direction, 'inbound');
  assert.deepEqual(ev1.data.metadata, META);
  assert.equal(ev1.data.filtered_content, input);
  assertResult(ev1.data.result, { decision: 'pass', rulesEvaluated: INBOUND_RULES });

  let job = await c.waitDelivered(created.job_id);
  assertJobShape(job);
  assert.equal(job.status, 'awaiting_response');
  assert.equal(job.completed_at, null);
  assert.equal(job.message, null);
  assert.equal(job.message_input, input);
  assert.equal(job.message_output, null);
  assert.equal(job.filtered_input, input);
  assert.equal(job.filtered_output, null);
  assert.equal(job.outbound_result, null);
  assert.deepEqual(job.inbound_result, ev1.data.result);
  assert.deepEqual(job.metadata, META);
  assertDelivery(job.webhook_delivery, { url, status: 'delivered', attempts: 1, responseCode: 200 });

  const r = await c.respond(created.job_id, output);
  assert.equal(r.status, 202, `POST …/response: ${r.text}`);
  assert.equal(r.json.job_id, created.job_id);
  assert.equal(r.json.status, 'processing_outbound');

  const events = await rx.waitEvents(created.job_id, 2);
  assert.equal(events[0].json.type, 'job.inbound_complete', 'inbound_complete first');
  const ev2 = assertEvent(events[1], { secret: created.webhook_secret, jobId: created.job_id, type: 'job.outbound_complete' });
  assert.notEqual(events[1].headers['webhook-id'], events[0].headers['webhook-id'], 'each event has its own webhook-id');
  assert.equal(ev2.data.status, 'completed');
  assert.equal(ev2.data.direction, 'outbound');
  assert.deepEqual(ev2.data.metadata, META);
  assert.equal(ev2.data.filtered_content, output);
  assertResult(ev2.data.result, { decision: 'pass', rulesEvaluated: OUTBOUND_RULES });

  job = await c.waitJob(created.job_id, (j) => j.status === 'completed' && j.webhook_delivery?.status === 'delivered' && j.outbound_result, 'completed + outbound delivered');
  assertJobShape(job);
  assertTimestamp(job.completed_at);
  assert.equal(job.message_input, input);
  assert.equal(job.message_output, output, 'message_output holds the submitted response');
  assert.equal(job.filtered_input, input);
  assert.equal(job.filtered_output, output);
  assert.deepEqual(job.inbound_result, ev1.data.result);
  assert.deepEqual(job.outbound_result, ev2.data.result);
  assert.equal(job.message, null);
  assertDelivery(job.webhook_delivery, { url, status: 'delivered', attempts: 1, responseCode: 200 });
});

test('message_input + inbound_only: one inbound_complete, status completed, no outbound', async () => {
  const url = rx.url(rx.path('inbound-only'));
  const input = 'Summarise this paragraph please.';
  const created = await c.createJob({ message_input: input, inbound_only: true, webhook_url: url });
  assertCreated(created);
  const [rec] = await rx.waitEvents(created.job_id, 1);
  const ev = assertEvent(rec, { secret: created.webhook_secret, jobId: created.job_id, type: 'job.inbound_complete' });
  assert.equal(ev.data.status, 'completed');
  assert.equal(ev.data.direction, 'inbound');
  assert.equal(ev.data.metadata, null, 'no metadata given → null');
  assert.equal(ev.data.filtered_content, input);
  assertResult(ev.data.result, { decision: 'pass', rulesEvaluated: INBOUND_RULES });

  const job = await c.waitDelivered(created.job_id);
  assertJobShape(job);
  assert.equal(job.status, 'completed');
  assert.equal(job.metadata, null);
  assert.equal(job.message_input, input);
  assert.equal(job.message_output, null);
  assert.equal(job.filtered_input, input);
  assert.equal(job.filtered_output, null);
  assert.equal(job.outbound_result, null);
  assert.deepEqual(job.inbound_result, ev.data.result);
  assertDelivery(job.webhook_delivery, { url, status: 'delivered', attempts: 1, responseCode: 200 });

  const r = await c.respond(created.job_id, 'too late');
  assert.equal(r.status, 400, `response to an inbound_only job: ${r.text}`);
  assert.equal(r.json?.error?.code, 'invalid_job_state');
  assert.equal(rx.eventsOf(created.job_id).length, 1, 'inbound_only job has exactly one event');
});

test('message_output only: one outbound_complete, status completed', async () => {
  const url = rx.url(rx.path('output'));
  const output = 'Here is a friendly answer.';
  const created = await c.createJob({ message_output: output, webhook_url: url, metadata: { k: 'v' } });
  assertCreated(created);
  const [rec] = await rx.waitEvents(created.job_id, 1);
  const ev = assertEvent(rec, { secret: created.webhook_secret, jobId: created.job_id, type: 'job.outbound_complete' });
  assert.equal(ev.data.status, 'completed');
  assert.equal(ev.data.direction, 'outbound');
  assert.deepEqual(ev.data.metadata, { k: 'v' });
  assert.equal(ev.data.filtered_content, output);
  assertResult(ev.data.result, { decision: 'pass', rulesEvaluated: OUTBOUND_RULES });

  const job = await c.waitDelivered(created.job_id);
  assertJobShape(job);
  assert.equal(job.status, 'completed');
  assert.equal(job.message, null);
  assert.equal(job.message_input, null);
  assert.equal(job.filtered_input, null);
  assert.equal(job.inbound_result, null);
  assert.equal(job.message_output, output);
  assert.equal(job.filtered_output, output);
  assert.deepEqual(job.outbound_result, ev.data.result);
  assertDelivery(job.webhook_delivery, { url, status: 'delivered', attempts: 1, responseCode: 200 });

  const r = await c.respond(created.job_id, 'another');
  assert.equal(r.status, 400, `response to a message_output job: ${r.text}`);
  assert.equal(r.json?.error?.code, 'invalid_job_state');
});

test('message_input + message_output: inbound_complete then outbound_complete', async () => {
  const url = rx.url(rx.path('combined'));
  const input = 'Tell me a joke about cats.';
  const output = 'Why did the cat sit on the computer? To keep an eye on the mouse.';
  const created = await c.createJob({ message_input: input, message_output: output, webhook_url: url, metadata: META });
  assertCreated(created);
  const events = await rx.waitEvents(created.job_id, 2);
  const ev1 = assertEvent(events[0], { secret: created.webhook_secret, jobId: created.job_id, type: 'job.inbound_complete' });
  const ev2 = assertEvent(events[1], { secret: created.webhook_secret, jobId: created.job_id, type: 'job.outbound_complete' });
  assert.equal(ev1.data.direction, 'inbound');
  assert.equal(ev1.data.status, 'processing_outbound', 'combined job goes on to outbound after inbound');
  assert.equal(ev1.data.filtered_content, input);
  assert.deepEqual(ev1.data.metadata, META);
  assertResult(ev1.data.result, { decision: 'pass', rulesEvaluated: INBOUND_RULES });
  assert.equal(ev2.data.direction, 'outbound');
  assert.equal(ev2.data.status, 'completed');
  assert.equal(ev2.data.filtered_content, output);
  assert.deepEqual(ev2.data.metadata, META);
  assertResult(ev2.data.result, { decision: 'pass', rulesEvaluated: OUTBOUND_RULES });

  const job = await c.waitJob(created.job_id, (j) => j.status === 'completed' && j.webhook_delivery?.status === 'delivered' && j.outbound_result, 'completed + delivered');
  assertJobShape(job);
  assert.equal(job.message, null);
  assert.equal(job.message_input, input);
  assert.equal(job.message_output, output);
  assert.equal(job.filtered_input, input);
  assert.equal(job.filtered_output, output);
  assert.deepEqual(job.inbound_result, ev1.data.result);
  assert.deepEqual(job.outbound_result, ev2.data.result);
  assertDelivery(job.webhook_delivery, { url, status: 'delivered', attempts: 1, responseCode: 200 });

  const r = await c.respond(created.job_id, 'x');
  assert.equal(r.status, 400, `response to a combined job: ${r.text}`);
  assert.equal(r.json?.error?.code, 'invalid_job_state');
});

test('unicode and JSON escapes survive unchanged (content and metadata)', async () => {
  const url = rx.url(rx.path('unicode'));
  const text = 'Grüße 👋🏽 — "quotes", \\backslash\\, tab\t, newline\n, 中文, emoji 🐕‍🦺';
  const meta = { 'ключ': 'значение', 'emoji🔑': ['💡', { '': '' }], empty: {} };
  const created = await c.createJob({ message_input: text, inbound_only: true, webhook_url: url, metadata: meta });
  const [rec] = await rx.waitEvents(created.job_id, 1);
  const ev = assertEvent(rec, { secret: created.webhook_secret, jobId: created.job_id, type: 'job.inbound_complete' });
  assert.equal(ev.data.filtered_content, text);
  assert.deepEqual(ev.data.metadata, meta);
  const job = await c.waitDelivered(created.job_id);
  assert.equal(job.message_input, text);
  assert.equal(job.filtered_input, text);
  assert.deepEqual(job.metadata, meta);
});

test('concurrent responses to one job: exactly one 202, the rest 400 invalid_job_state', async () => {
  const url = rx.url(rx.path('race'));
  const created = await c.createJob({ message_input: 'race me', webhook_url: url });
  await c.waitStatus(created.job_id, 'awaiting_response');
  const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => c.respond(created.job_id, `answer ${i}`)));
  const won = answers.map((r, i) => [r, i]).filter(([r]) => r.status === 202);
  assert.equal(won.length, 1, `statuses: ${answers.map((r) => r.status).join(',')}`);
  for (const r of answers) if (r.status !== 202) assert.equal(r.json?.error?.code, 'invalid_job_state', r.text);
  const job = await c.waitJob(created.job_id, (j) => j.status === 'completed' && j.webhook_delivery?.status === 'delivered' && j.outbound_result, 'completed');
  assert.equal(job.message_output, `answer ${won[0][1]}`, 'the accepted response is the one stored');
  const events = await rx.waitEvents(created.job_id, 2);
  assert.deepEqual(events.map((e) => e.json.type), ['job.inbound_complete', 'job.outbound_complete']);
  assert.equal(events[1].json.data.filtered_content, `answer ${won[0][1]}`);
});

test('JSON replies carry Content-Type application/json', async () => {
  const r = await c.post('/v1/jobs', { message: 'ct', webhook_url: rx.url(rx.path('ct')) });
  assert.equal(r.status, 202);
  assertJsonContentType(r);
  assertJsonContentType(await c.get(`/v1/jobs/${r.json.job_id}`));
  assertJsonContentType(await c.get('/v1/jobs'));
});

test('SIGTERM → server exits 0', async () => {
  await env.stop();
});
