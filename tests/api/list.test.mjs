// SPEC 3.5: GET /v1/jobs — pagination, ordering, status_filter; and the
// webhook_secret never appears in GET or list.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { assertTimestamp } from './lib/spec.mjs';
import { useCollie } from './lib/suite.mjs';

let env;
let rx;
let c;
const created = []; // in creation order: {job_id, kind, webhook_secret, metadata}

const N_COMPLETED = 5;
const N_AWAITING = 3;

useCollie({ projects: ['lister', 'other'] }, async (suite) => {
  ({ env, rx } = suite);
  c = env.client('lister');
  const hook = rx.url(rx.path('list'));
  // Interleave the two kinds; one at a time so creation order is defined,
  // and on distinct milliseconds so "newest first" is unambiguous.
  const kinds = ['done', 'wait', 'done', 'done', 'wait', 'done', 'wait', 'done'];
  for (let i = 0; i < kinds.length; i++) {
    const t0 = Date.now();
    while (Date.now() === t0) await new Promise((r) => setImmediate(r));
    const metadata = { i, kind: kinds[i] };
    const body = kinds[i] === 'done'
      ? { message_input: `list job ${i}`, inbound_only: true, webhook_url: hook, metadata }
      : { message_input: `list job ${i}`, webhook_url: hook, metadata };
    const r = await c.createJob(body);
    created.push({ ...r, kind: kinds[i], metadata });
  }
  for (const j of created) await c.waitStatus(j.job_id, j.kind === 'done' ? 'completed' : 'awaiting_response');
});

const newestFirst = () => created.map((j) => j.job_id).reverse();

test('default page: page 1, page_size 20, total, newest first', async () => {
  const r = await c.get('/v1/jobs');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.page, 1);
  assert.equal(r.json.page_size, 20);
  assert.equal(r.json.total, N_COMPLETED + N_AWAITING);
  assert.deepEqual(r.json.jobs.map((j) => j.job_id), newestFirst(), 'newest first');
});

test('summaries have exactly job_id, status, created_at, completed_at, metadata', async () => {
  const r = await c.get('/v1/jobs');
  for (const s of r.json.jobs) {
    assert.deepEqual(Object.keys(s).sort(), ['completed_at', 'created_at', 'job_id', 'metadata', 'status'], JSON.stringify(s));
    const mine = created.find((j) => j.job_id === s.job_id);
    assert.deepEqual(s.metadata, mine.metadata, 'metadata passes through');
    assertTimestamp(s.created_at);
    assert.equal(Date.parse(s.created_at), Date.parse(mine.created_at));
    if (mine.kind === 'done') {
      assert.equal(s.status, 'completed');
      assertTimestamp(s.completed_at);
    } else {
      assert.equal(s.status, 'awaiting_response');
      assert.equal(s.completed_at, null);
    }
  }
});

test('pagination: disjoint pages that together list every job in order', async () => {
  const seen = [];
  for (let page = 1; page <= 3; page++) {
    const r = await c.get(`/v1/jobs?page=${page}&page_size=3`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.page, page);
    assert.equal(r.json.page_size, 3);
    assert.equal(r.json.total, 8, 'total counts all jobs, not the page');
    assert.equal(r.json.jobs.length, page < 3 ? 3 : 2);
    seen.push(...r.json.jobs.map((j) => j.job_id));
  }
  assert.equal(new Set(seen).size, seen.length, 'pages are disjoint');
  assert.deepEqual(seen, newestFirst());
  const past = await c.get('/v1/jobs?page=4&page_size=3');
  assert.equal(past.status, 200, past.text);
  assert.deepEqual(past.json.jobs, []);
  assert.equal(past.json.total, 8);
  const far = await c.get('/v1/jobs?page=1000');
  assert.equal(far.status, 200, far.text);
  assert.deepEqual(far.json.jobs, []);
});

test('page_size 1 walks one job at a time', async () => {
  const ids = [];
  for (let page = 1; page <= 8; page++) {
    const r = await c.get(`/v1/jobs?page=${page}&page_size=1`);
    assert.equal(r.json.jobs.length, 1);
    ids.push(r.json.jobs[0].job_id);
  }
  assert.deepEqual(ids, newestFirst());
});

test('status_filter=completed and =awaiting_response', async () => {
  const done = await c.get('/v1/jobs?status_filter=completed');
  assert.equal(done.status, 200, done.text);
  assert.equal(done.json.total, N_COMPLETED);
  assert.deepEqual(done.json.jobs.map((j) => j.job_id), created.filter((j) => j.kind === 'done').map((j) => j.job_id).reverse());
  assert.ok(done.json.jobs.every((j) => j.status === 'completed'));

  const wait = await c.get('/v1/jobs?status_filter=awaiting_response');
  assert.equal(wait.status, 200, wait.text);
  assert.equal(wait.json.total, N_AWAITING);
  assert.deepEqual(wait.json.jobs.map((j) => j.job_id), created.filter((j) => j.kind === 'wait').map((j) => j.job_id).reverse());

  const paged = await c.get('/v1/jobs?status_filter=completed&page=2&page_size=2');
  assert.equal(paged.json.total, N_COMPLETED);
  assert.deepEqual(paged.json.jobs.map((j) => j.job_id), created.filter((j) => j.kind === 'done').map((j) => j.job_id).reverse().slice(2, 4));
});

test('status_filter for statuses with no jobs: empty, total 0', async () => {
  for (const s of ['pending', 'processing_inbound', 'processing_outbound', 'processing', 'failed', 'expired']) {
    const r = await c.get(`/v1/jobs?status_filter=${s}`);
    assert.equal(r.status, 200, `${s}: ${r.text}`);
    assert.equal(r.json.total, 0, `${s}: ${r.text}`);
    assert.deepEqual(r.json.jobs, []);
  }
});

test('status_filter=processing matches jobs in processing_outbound (and processing_inbound)', async () => {
  // Processing is transient, so no job can be held there from outside; what
  // must hold at any instant is that every job listed under "processing" has
  // a processing_* status (and none of another status is listed).
  const waiting = created.filter((j) => j.kind === 'wait');
  const submitted = await Promise.all(waiting.map((j) => c.respond(j.job_id, `answer for ${j.metadata.i}`)));
  for (const r of submitted) assert.equal(r.status, 202, r.text);
  for (let k = 0; k < 20; k++) {
    const r = await c.get('/v1/jobs?status_filter=processing');
    assert.equal(r.status, 200, r.text);
    for (const j of r.json.jobs) assert.match(j.status, /^processing_(inbound|outbound)$/, JSON.stringify(j));
    assert.equal(r.json.total, r.json.jobs.length);
  }
  for (const j of waiting) {
    await c.waitStatus(j.job_id, 'completed');
    j.kind = 'done';
  }
  const done = await c.get('/v1/jobs?status_filter=completed');
  assert.equal(done.json.total, N_COMPLETED + N_AWAITING);
  const proc = await c.get('/v1/jobs?status_filter=processing');
  assert.equal(proc.json.total, 0);
});

test('webhook_secret never appears in GET or list', async () => {
  const list = await c.get('/v1/jobs?page_size=100');
  assert.ok(!list.text.includes('webhook_secret'), 'list must not carry webhook_secret');
  assert.ok(!list.text.includes('whsec_'), 'list must not carry a secret');
  for (const j of created) {
    const r = await c.get(`/v1/jobs/${j.job_id}`);
    assert.equal(r.status, 200);
    assert.ok(!r.text.includes('webhook_secret'), 'GET must not carry webhook_secret');
    assert.ok(!r.text.includes(j.webhook_secret.slice(6)), 'GET must not carry the secret');
    assert.ok(!r.text.includes('whsec_'), 'GET must not carry a secret');
  }
});

test("another project's list is empty", async () => {
  const r = await env.client('other').get('/v1/jobs');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.total, 0);
  assert.deepEqual(r.json.jobs, []);
});

test('SIGTERM → server exits 0', async () => {
  await env.stop();
});
