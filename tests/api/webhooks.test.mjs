// SPEC 6: Standard Webhooks signatures, retries, 410, exhaustion, per-job
// ordering, redirects, redeliver.

import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';

import { startCollie, freePort } from './lib/server.mjs';
import { startReceiver } from './lib/receiver.mjs';
import { assertError } from './lib/client.mjs';
import { assertEvent, assertDelivery, sign, verifyOwn, verifyStd } from './lib/spec.mjs';

// Schedule used by the main server: 3 retries → 4 attempts.
const SCHEDULE = '100ms,200ms,400ms';
const MAX_ATTEMPTS = 4;

let env;
let slow; // a second server whose retries are slow (1.5 s, then 1 h), with a 2 s attempt timeout
let rx;
let c;

before(async () => {
  rx = await startReceiver();
  [env, slow] = await Promise.all([
    startCollie({ projects: ['hooks'], retrySchedule: SCHEDULE }),
    startCollie({ projects: ['slow'], retrySchedule: '1500ms,1h', extraArgs: ['--webhook-timeout', '2s'] }),
  ]);
  c = env.client('hooks');
});

after(async () => {
  for (const e of [env, slow]) if (e && !e.server.exited) await e.server.kill();
  if (rx) await rx.close();
});

const typeOf = (r) => r.json?.type;

describe('signatures', () => {
  test('our HMAC helper reproduces the Standard Webhooks test vector (SPEC 6)', () => {
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const got = sign(secret, 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}');
    assert.equal(got, 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });

  test('every event verifies with standardwebhooks and our own HMAC; tampering fails', async () => {
    const p = rx.path('sig');
    const url = rx.url(p);
    const job = await c.createJob({ message_input: 'sign me', message_output: 'signed reply', webhook_url: url, metadata: { s: 1 } });
    const other = await c.createJob({ message: 'other job', webhook_url: url });
    const events = await rx.waitEvents(job.job_id, 2);
    await rx.waitEvents(other.job_id, 1);
    assert.deepEqual(events.map(typeOf), ['job.inbound_complete', 'job.outbound_complete']);
    for (const rec of rx.on(p)) {
      const secret = rec.json.data.job_id === job.job_id ? job.webhook_secret : other.webhook_secret;
      assertEvent(rec, { secret });
      const payload = verifyStd(secret, rec.headers, rec.body);
      assert.deepEqual(payload, rec.json, 'verify returns the parsed payload');
      assert.ok(verifyOwn(secret, rec.headers, rec.raw));

      // Tampered body.
      const tampered = rec.body.replace('"data"', '"data" ');
      assert.throws(() => verifyStd(secret, rec.headers, tampered), /signature/i);
      assert.equal(verifyOwn(secret, rec.headers, tampered), false);
      // Tampered id / timestamp.
      assert.throws(() => verifyStd(secret, { ...rec.headers, 'webhook-id': rec.headers['webhook-id'] + 'x' }, rec.body));
      assert.throws(() => verifyStd(secret, { ...rec.headers, 'webhook-timestamp': String(Number(rec.headers['webhook-timestamp']) - 1) }, rec.body));
      // Another job's secret.
      const wrong = secret === job.webhook_secret ? other.webhook_secret : job.webhook_secret;
      assert.throws(() => verifyStd(wrong, rec.headers, rec.body), /signature/i);
      assert.equal(verifyOwn(wrong, rec.headers, rec.raw), false);
    }
  });

  test('the webhook URL is called exactly as given (path and query string)', async () => {
    const p = rx.path('query');
    const url = `${rx.url(p)}?tenant=acme&x=%2Fslash&empty=`;
    const job = await c.createJob({ message: 'query string', webhook_url: url });
    const [rec] = await rx.waitEvents(job.job_id, 1);
    assert.equal(rec.url, `${p}?tenant=acme&x=%2Fslash&empty=`);
    assert.equal(rec.method, 'POST');
  });

  test('webhook-id is unique per event', async () => {
    const ids = new Map();
    for (const rec of rx.records) {
      const id = rec.headers['webhook-id'];
      const key = `${rec.json?.data?.job_id}|${rec.json?.type}`;
      if (ids.has(id)) assert.equal(ids.get(id), key, `webhook-id ${id} reused for a different event`);
      ids.set(id, key);
    }
    assert.ok(ids.size > 0);
  });
});

describe('retries', () => {
  test('500, 500, 200 → three attempts of one event, same webhook-id, each signed; GET shows delivered', async () => {
    const p = rx.path('fail-twice');
    const url = rx.plan(p, [500, 500, 200]);
    const job = await c.createJob({ message_input: 'retry me', inbound_only: true, webhook_url: url });
    const got = await c.waitJob(job.job_id, (j) => j.webhook_delivery?.status === 'delivered', 'delivered');
    assertDelivery(got.webhook_delivery, { url, status: 'delivered', attempts: 3, responseCode: 200 });
    const recs = rx.on(p);
    assert.equal(recs.length, 3, `exactly 3 attempts: ${recs.map((r) => r.answered)}`);
    assert.deepEqual(recs.map((r) => r.answered), [500, 500, 200]);
    const ids = new Set(recs.map((r) => r.headers['webhook-id']));
    assert.equal(ids.size, 1, 'webhook-id is stable across retries');
    for (const rec of recs) {
      assertEvent(rec, { secret: job.webhook_secret, jobId: job.job_id, type: 'job.inbound_complete' });
      assert.equal(rec.body, recs[0].body, 'the same event body on every attempt');
    }
  });

  test('every attempt is signed afresh with its own timestamp', async () => {
    // The slow server's first retry delay exceeds 1 s even with -20 %
    // jitter, so the two attempts carry different webhook-timestamp values.
    const p = rx.path('fresh-sig');
    const url = rx.plan(p, [503, 200]);
    const c2 = slow.client('slow');
    const job = await c2.createJob({ message: 'fresh signature', webhook_url: url });
    await c2.waitJob(job.job_id, (j) => j.webhook_delivery?.status === 'delivered', 'delivered');
    const recs = rx.on(p);
    assert.equal(recs.length, 2);
    assert.equal(recs[0].headers['webhook-id'], recs[1].headers['webhook-id']);
    assert.ok(Number(recs[1].headers['webhook-timestamp']) > Number(recs[0].headers['webhook-timestamp']), 'second attempt has a later timestamp');
    assert.notEqual(recs[0].headers['webhook-signature'], recs[1].headers['webhook-signature'], 'fresh signature');
    for (const rec of recs) assertEvent(rec, { secret: job.webhook_secret, jobId: job.job_id, type: 'job.inbound_complete' });
  });

  test('a 2xx that arrives after the timeout is a failed attempt, and retried', async () => {
    const p = rx.path('too-slow');
    const url = rx.plan(p, [{ status: 200, delayMs: 5000 }, 200]);
    const c2 = slow.client('slow');
    const job = await c2.createJob({ message: 'slow receiver', webhook_url: url });
    const got = await c2.waitJob(job.job_id, (j) => j.webhook_delivery?.status === 'delivered', 'delivered');
    assertDelivery(got.webhook_delivery, { url, status: 'delivered', attempts: 2, responseCode: 200 });
    const recs = rx.on(p);
    assert.equal(recs.length, 2);
    assert.equal(recs[0].headers['webhook-id'], recs[1].headers['webhook-id']);
  });

  test('a receiver that hangs does not hold up other jobs: their events arrive while it hangs', async () => {
    const pHang = rx.path('hang');
    const hangUrl = rx.plan(pHang, { status: 200, delayMs: 60000 });
    const pOk = rx.path('while-hanging');
    const okUrl = rx.url(pOk);
    const c2 = slow.client('slow');
    const hung = await c2.createJob({ message: 'hangs', webhook_url: hangUrl });
    await rx.waitFor(() => rx.on(pHang).length >= 1, undefined, 'the hanging attempt is in flight');
    const others = await Promise.all(Array.from({ length: 5 }, (_, i) =>
      c2.createJob({ message: `other ${i}`, webhook_url: okUrl })));
    for (const o of others) await rx.waitEvents(o.job_id, 1);
    const g = await c2.getJob(hung.job_id);
    assert.notEqual(g.webhook_delivery?.status, 'delivered', 'the hanging receiver never answered in time');
    // The hanging attempt times out (2 s) and is retried.
    await rx.waitFor(() => rx.on(pHang).length >= 2, undefined, 'the timed-out attempt is retried');
    assert.equal(rx.on(pHang)[0].headers['webhook-id'], rx.on(pHang)[1].headers['webhook-id']);
  });

  test('4xx other than 410 is retried; any 2xx is success', async () => {
    const p = rx.path('bad-then-204');
    const url = rx.plan(p, [400, 429, 204]);
    const job = await c.createJob({ message: 'four hundred', webhook_url: url });
    const got = await c.waitJob(job.job_id, (j) => j.webhook_delivery?.status === 'delivered', 'delivered');
    assertDelivery(got.webhook_delivery, { url, status: 'delivered', attempts: 3, responseCode: 204 });
    assert.deepEqual(rx.on(p).map((r) => r.answered), [400, 429, 204]);
  });

  test('a 2xx with a huge response body is a success (the body is not needed)', async () => {
    const p = rx.path('big-body');
    const url = rx.plan(p, { status: 200, body: Buffer.alloc(8 * 1024 * 1024, 0x61) });
    const job = await c.createJob({ message: 'chatty receiver', webhook_url: url });
    const got = await c.waitJob(job.job_id, (j) => ['delivered', 'failed'].includes(j.webhook_delivery?.status), 'delivery settled');
    assertDelivery(got.webhook_delivery, { url, status: 'delivered', attempts: 1, responseCode: 200 });
  });

  test('410 Gone stops retrying: status failed after exactly one attempt', async () => {
    const p = rx.path('gone');
    const url = rx.plan(p, (rec) => (typeOf(rec) === 'job.inbound_complete' ? 410 : 200));
    const job = await c.createJob({ message_input: 'gone', webhook_url: url });
    const got = await c.waitJob(job.job_id, (j) => j.webhook_delivery?.status === 'failed', 'delivery failed');
    assertDelivery(got.webhook_delivery, { url, status: 'failed', attempts: 1, responseCode: 410 });
    assert.equal(got.status, 'awaiting_response', 'a failed delivery does not change the job status');

    // The next event of the job is only attempted once the first is done, so
    // once outbound_complete arrives no retry of inbound_complete can follow.
    const r = await c.respond(job.job_id, 'still answering');
    assert.equal(r.status, 202, r.text);
    await rx.waitRecord((rec) => rec.path === p && typeOf(rec) === 'job.outbound_complete', undefined, 'outbound_complete after 410');
    assert.equal(rx.on(p).filter((rec) => typeOf(rec) === 'job.inbound_complete').length, 1, 'exactly one attempt after 410');
  });

  test(`a receiver that always fails: exhausted after ${MAX_ATTEMPTS} attempts, delivery failed`, async () => {
    const p = rx.path('always-500');
    const url = rx.plan(p, (rec) => (typeOf(rec) === 'job.inbound_complete' ? 500 : 200));
    const job = await c.createJob({ message_input: 'never delivered', webhook_url: url });
    const got = await c.waitJob(job.job_id, (j) => j.webhook_delivery?.status === 'failed', 'delivery failed');
    assertDelivery(got.webhook_delivery, { url, status: 'failed', attempts: MAX_ATTEMPTS, responseCode: 500 });

    const r = await c.respond(job.job_id, 'answer');
    assert.equal(r.status, 202, r.text);
    await rx.waitRecord((rec) => rec.path === p && typeOf(rec) === 'job.outbound_complete', undefined, 'outbound_complete after exhaustion');
    const inbound = rx.on(p).filter((rec) => typeOf(rec) === 'job.inbound_complete');
    assert.equal(inbound.length, MAX_ATTEMPTS, `1 + schedule length attempts, got ${inbound.length}`);
    assert.equal(new Set(inbound.map((rec) => rec.headers['webhook-id'])).size, 1);
    const done = await c.waitJob(job.job_id, (j) => j.status === 'completed' && j.webhook_delivery?.status === 'delivered', 'outbound delivered');
    assertDelivery(done.webhook_delivery, { url, status: 'delivered', attempts: 1, responseCode: 200 });
  });

  test('an unreachable receiver: retried, then failed, response_code null', async () => {
    const port = await freePort(); // nothing listens there
    const url = `http://127.0.0.1:${port}/nobody`;
    const job = await c.createJob({ message: 'nobody home', webhook_url: url });
    const got = await c.waitJob(job.job_id, (j) => j.webhook_delivery?.status === 'failed', 'delivery failed');
    assertDelivery(got.webhook_delivery, { url, status: 'failed', attempts: MAX_ATTEMPTS, responseCode: null });
    assert.equal(got.status, 'completed');
  });

  test('redirects are not followed', async () => {
    const target = rx.path('redirect-target');
    const p = rx.path('redirect');
    const url = rx.plan(p, { status: 302, headers: { location: rx.url(target) } });
    const job = await c.createJob({ message: 'redirect me', webhook_url: url });
    const got = await c.waitJob(job.job_id, (j) => j.webhook_delivery?.status === 'failed', 'delivery failed');
    assertDelivery(got.webhook_delivery, { url, status: 'failed', attempts: MAX_ATTEMPTS, responseCode: 302 });
    assert.equal(rx.on(target).length, 0, 'the Location target must never be called');
  });
});

describe('ordering', () => {
  test('per job: outbound_complete never arrives before inbound_complete is delivered', async () => {
    const p = rx.path('order');
    const inboundAttempts = new Map();
    const url = rx.plan(p, (rec) => {
      if (typeOf(rec) !== 'job.inbound_complete') return 200;
      const id = rec.json.data.job_id;
      const n = (inboundAttempts.get(id) || 0) + 1;
      inboundAttempts.set(id, n);
      return n <= 2 ? 500 : 200; // fail twice, then accept (3 of 4 attempts)
    });
    const jobs = await Promise.all(
      Array.from({ length: 6 }, (_, i) => c.createJob({ message_input: `ordered ${i}`, message_output: `reply ${i}`, webhook_url: url, metadata: { i } })),
    );
    await rx.waitFor(() => jobs.every((j) => rx.forJob(j.job_id).some((r) => typeOf(r) === 'job.outbound_complete')), undefined, 'outbound_complete of every job');
    for (const j of jobs) {
      const recs = rx.forJob(j.job_id);
      const delivered = recs.findIndex((r) => typeOf(r) === 'job.inbound_complete' && r.answered === 200);
      const firstOut = recs.findIndex((r) => typeOf(r) === 'job.outbound_complete');
      assert.ok(delivered >= 0, `inbound_complete of ${j.job_id} was delivered`);
      assert.ok(firstOut > delivered, `${j.job_id}: outbound_complete (#${firstOut}) before inbound_complete was delivered (#${delivered}): ${recs.map((r) => `${typeOf(r)}:${r.answered}`).join(', ')}`);
      assert.equal(recs.filter((r) => typeOf(r) === 'job.inbound_complete').length, 3, 'inbound attempts: 500, 500, 200');
      for (const r of recs) assertEvent(r, { secret: j.webhook_secret, jobId: j.job_id });
    }
    for (const j of jobs) {
      const g = await c.waitJob(j.job_id, (x) => x.status === 'completed' && x.webhook_delivery?.status === 'delivered' && x.outbound_result, 'completed');
      assertDelivery(g.webhook_delivery, { url, status: 'delivered', attempts: 1, responseCode: 200 });
    }
  });

  test('one slow job does not hold back the events of other jobs', async () => {
    const pStuck = rx.path('stuck');
    const stuckUrl = rx.plan(pStuck, 500);
    const pFast = rx.path('fast');
    const fastUrl = rx.url(pFast);
    const stuck = await c.createJob({ message: 'stuck', webhook_url: stuckUrl });
    await rx.waitFor(() => rx.on(pStuck).length >= 1, undefined, 'first attempt of the stuck job');
    const fast = await Promise.all(Array.from({ length: 5 }, (_, i) => c.createJob({ message: `fast ${i}`, webhook_url: fastUrl })));
    for (const f of fast) await rx.waitEvents(f.job_id, 1);
    await c.waitJob(stuck.job_id, (j) => j.webhook_delivery?.status === 'failed', 'stuck job exhausted');
  });
});

describe('webhook_delivery while the first attempt is in flight', () => {
  test('status delivering, no next_attempt_at; then delivered', async () => {
    // A new event goes to the sender through memory and its row says
    // pending until the attempt is recorded: GET showed pending, with a
    // next attempt time in the past, while the receiver held the request.
    const p = rx.path('in-flight-status');
    const url = rx.plan(p, { status: 200, delayMs: 1500 });
    const job = await c.createJob({ message_input: 'slow receiver', inbound_only: true, webhook_url: url });
    await rx.waitFor(() => rx.on(p).length >= 1, undefined, 'the attempt reached the receiver');
    const during = await c.get(`/v1/jobs/${job.job_id}`);
    assert.equal(during.status, 200, during.text);
    assertDelivery(during.json.webhook_delivery, { url, status: 'delivering', attempts: 0 });
    assert.equal(during.json.webhook_delivery.next_attempt_at, null, JSON.stringify(during.json.webhook_delivery));
    const got = await c.waitDelivered(job.job_id);
    assertDelivery(got.webhook_delivery, { url, status: 'delivered', attempts: 1, responseCode: 200 });
  });
});

describe('redeliver', () => {
  test('unknown job → 404 not_found', async () => {
    assertError(await c.post('/v1/jobs/job_01ARZ3NDEKTSV4RRFFQ69G5FAV/redeliver', {}), 404, 'not_found');
    assertError(await c.post('/v1/jobs/bogus/redeliver', {}), 404, 'not_found');
  });

  test('re-sends the event with the same webhook-id as a new attempt', async () => {
    const p = rx.path('redeliver');
    const url = rx.url(p);
    const job = await c.createJob({ message_input: 'redeliver me', inbound_only: true, webhook_url: url });
    await c.waitDelivered(job.job_id);
    assert.equal(rx.on(p).length, 1);
    const r = await c.post(`/v1/jobs/${job.job_id}/redeliver`, {});
    assert.ok(r.status >= 200 && r.status < 300, `redeliver: ${r.status} ${r.text}`);
    await rx.waitFor(() => rx.on(p).length >= 2, undefined, 'redelivered event');
    const [first, second] = rx.on(p);
    assert.equal(second.headers['webhook-id'], first.headers['webhook-id'], 'same webhook-id');
    assert.equal(second.json.type, 'job.inbound_complete');
    assert.deepEqual(second.json.data, first.json.data, 'same event data');
    assertEvent(second, { secret: job.webhook_secret, jobId: job.job_id, type: 'job.inbound_complete' });
    const got = await c.waitJob(job.job_id, (j) => j.webhook_delivery?.status === 'delivered' && j.webhook_delivery.attempts === 2, 'attempts 2');
    assertDelivery(got.webhook_delivery, { url, status: 'delivered', attempts: 2, responseCode: 200 });
  });

  test('redeliver of an event waiting for its retry sends it now', async () => {
    // On the slow server the second retry is an hour away: only redeliver
    // can send the event before that.
    const c4 = slow.client('slow');
    const p = rx.path('redeliver-retrying');
    let up = false;
    const url = rx.plan(p, () => (up ? 200 : 503));
    const job = await c4.createJob({ message: 'retry later', webhook_url: url });
    const mid = await c4.waitJob(job.job_id, (j) => j.webhook_delivery?.status === 'retrying' && j.webhook_delivery.attempts === 2, 'retrying after 2 attempts');
    assertDelivery(mid.webhook_delivery, { url, status: 'retrying', attempts: 2, responseCode: 503 });
    up = true;
    const r = await c4.post(`/v1/jobs/${job.job_id}/redeliver`, {});
    assert.ok(r.status >= 200 && r.status < 300, `redeliver: ${r.status} ${r.text}`);
    const got = await c4.waitDelivered(job.job_id);
    assertDelivery(got.webhook_delivery, { url, status: 'delivered', attempts: 3, responseCode: 200 });
    const recs = rx.on(p);
    assert.equal(recs.length, 3);
    assert.equal(new Set(recs.map((x) => x.headers['webhook-id'])).size, 1);
  });

  test('while an event of the job is in flight → 409 conflict; afterwards all of them, in order', async () => {
    // Redelivering the delivered inbound event while the outbound one was
    // in flight sent them to the receiver out of order, two at once.
    const p = rx.path('redeliver-in-flight');
    const url = rx.plan(p, (rec, n) => (n === 1 ? { status: 200, delayMs: 1500 } : 200));
    const job = await c.createJob({ message_input: 'question', message_output: 'answer', webhook_url: url });
    await rx.waitFor(() => rx.on(p).length >= 2, undefined, 'outbound event in flight');
    assert.deepEqual(rx.on(p).map(typeOf), ['job.inbound_complete', 'job.outbound_complete']);
    assertError(await c.post(`/v1/jobs/${job.job_id}/redeliver`, {}), 409, 'conflict');
    await c.waitDelivered(job.job_id);
    const r = await c.post(`/v1/jobs/${job.job_id}/redeliver`, {});
    assert.equal(r.status, 202, r.text);
    assert.equal(r.json.events, 2, r.text);
    await rx.waitFor(() => rx.on(p).length >= 4, undefined, 'both events redelivered');
    assert.deepEqual(rx.on(p).map(typeOf), ['job.inbound_complete', 'job.outbound_complete', 'job.inbound_complete', 'job.outbound_complete']);
  });

  test('re-sends all of a job’s events, in order, after a failed delivery', async () => {
    const p = rx.path('redeliver-two');
    let healthy = false;
    const url = rx.plan(p, () => (healthy ? 200 : 500));
    const job = await c.createJob({ message_input: 'two events', message_output: 'reply', webhook_url: url });
    // Both events exhaust their retries while the receiver is down.
    await rx.waitFor(() => rx.on(p).filter((r) => typeOf(r) === 'job.outbound_complete').length >= MAX_ATTEMPTS, undefined, 'outbound exhausted');
    await c.waitJob(job.job_id, (j) => j.webhook_delivery?.status === 'failed', 'outbound delivery failed');
    const before = rx.on(p).length;
    const ids = [...new Set(rx.on(p).map((r) => r.headers['webhook-id']))];
    assert.equal(ids.length, 2);
    healthy = true;
    const r = await c.post(`/v1/jobs/${job.job_id}/redeliver`, {});
    assert.ok(r.status >= 200 && r.status < 300, `redeliver: ${r.status} ${r.text}`);
    await rx.waitFor(() => rx.on(p).slice(before).filter((x) => x.answered === 200).length >= 2, undefined, 'both events redelivered');
    const again = rx.on(p).slice(before);
    assert.deepEqual(again.map((x) => x.headers['webhook-id']), ids, 'same ids, original order');
    assert.deepEqual(again.map(typeOf), ['job.inbound_complete', 'job.outbound_complete']);
    for (const x of again) assertEvent(x, { secret: job.webhook_secret, jobId: job.job_id });
    const got = await c.waitDelivered(job.job_id);
    assertDelivery(got.webhook_delivery, { url, status: 'delivered', responseCode: 200 });
    assert.equal(got.webhook_delivery.attempts, MAX_ATTEMPTS + 1, 'attempts include the redelivery');
  });
});

test('SIGTERM → both servers exit 0', async () => {
  await env.stop();
  await slow.stop();
});

