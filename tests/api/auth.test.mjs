// SPEC 2: authentication and project isolation.

import { test, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { createProject, createKey, runCli } from './lib/server.mjs';
import { waitUntil } from './lib/wait.mjs';
import { Client, assertError, request } from './lib/client.mjs';
import { useCollie } from './lib/suite.mjs';

let env;
let rx;
let a;
let b;

useCollie({ projects: ['alpha', 'beta'] }, (suite) => {
  ({ env, rx } = suite);
  a = env.client('alpha');
  b = env.client('beta');
});

const ROUTES = [
  ['GET', '/v1/jobs', undefined],
  ['POST', '/v1/jobs', { message_input: 'hi', webhook_url: 'http://127.0.0.1:9/x' }],
  ['GET', '/v1/jobs/job_01ARZ3NDEKTSV4RRFFQ69G5FAV', undefined],
  ['POST', '/v1/jobs/job_01ARZ3NDEKTSV4RRFFQ69G5FAV/response', { response: 'x' }],
  ['POST', '/v1/jobs/job_01ARZ3NDEKTSV4RRFFQ69G5FAV/redeliver', {}],
  ['GET', '/v1/policy', undefined],
  ['POST', '/v1/filter', { direction: 'inbound', text: 'hi' }],
];

describe('401 unauthorized', () => {
  for (const [method, route, body] of ROUTES) {
    test(`missing Authorization: ${method} ${route}`, async () => {
      const r = await request(env.server.url, method, route, { body });
      assertError(r, 401, 'unauthorized');
      // RFC 9110: a 401 names the scheme that would do
      assert.equal(r.headers['www-authenticate'], 'Bearer');
    });
  }

  test('whitespace around the key is not part of it (RFC 9110)', async () => {
    for (const value of [`Bearer ${env.keys.alpha} `, `Bearer  ${env.keys.alpha}\t`]) {
      const r = await request(env.server.url, 'GET', '/v1/jobs', { headers: { authorization: value } });
      assert.equal(r.status, 200, `${JSON.stringify(value)}: ${r.text}`);
    }
  });

  const malformed = (key) => [
    ['empty header', ''],
    ['scheme only', 'Bearer'],
    ['scheme and space', 'Bearer '],
    ['Basic scheme', `Basic ${Buffer.from('user:pass').toString('base64')}`],
    ['no scheme', key],
    ['token without clai_ prefix', `Bearer ${key.slice('clai_'.length)}`],
    ['bare prefix', 'Bearer clai_'],
    ['Token scheme', `Token ${key}`],
  ];

  test('malformed Authorization headers → 401', async () => {
    for (const [what, value] of malformed(env.keys.alpha)) {
      const r = await request(env.server.url, 'GET', '/v1/jobs', { headers: { authorization: value } });
      assert.equal(r.status, 401, `${what}: expected 401, got ${r.status}: ${r.text}`);
      assertError(r, 401, 'unauthorized');
    }
  });

  test('unknown keys → 401', async () => {
    const key = env.keys.alpha;
    const unknown = [
      'clai_' + 'A'.repeat(43),
      'clai_definitely-not-a-key',
      key + 'x', // a valid key with a trailing character
      key.slice(0, -1), // a valid key missing its last character
      key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A'), // last character changed
      'clai_' + 'z'.repeat(4000),
    ];
    for (const k of unknown) {
      const r = await new Client(env.server.url, k).get('/v1/jobs');
      assertError(r, 401, 'unauthorized');
    }
  });

  test('a valid key is accepted on the same routes', async () => {
    const r = await a.get('/v1/jobs');
    assert.equal(r.status, 200, r.text);
  });

  test('401 happens before body validation (no information for anonymous callers)', async () => {
    const r = await request(env.server.url, 'POST', '/v1/jobs', { body: '{not json' });
    assertError(r, 401, 'unauthorized');
  });
});

describe('revoked keys', () => {
  test('collie key revoke → that key gets 401; the project’s other keys still work', async () => {
    createProject(env.db, 'revoker');
    const doomed = createKey(env.db, 'revoker');
    const kept = createKey(env.db, 'revoker');
    const cd = new Client(env.server.url, doomed);
    assert.equal((await cd.get('/v1/jobs')).status, 200, 'fresh key works');

    const list = runCli(['key', 'list', '--project', 'revoker', '--database', env.db]);
    assert.equal(list.code, 0, list.stderr);
    assert.ok(!list.stdout.includes(doomed), 'key list must not print whole keys');
    // The display prefix of the doomed key: the listed token that starts it.
    const prefix = list.stdout
      .split(/\s+/)
      .map((t) => t.replace(/(…|\.\.\.)$/, ''))
      .find((t) => t.startsWith('clai_') && t.length > 'clai_'.length && doomed.startsWith(t) && !kept.startsWith(t));
    assert.ok(prefix, `a prefix of the key in key list output: ${list.stdout}`);

    const rv = runCli(['key', 'revoke', '--project', 'revoker', prefix, '--database', env.db]);
    assert.equal(rv.code, 0, `key revoke: ${rv.stderr}${rv.stdout}`);
    // Revocation may reach a running server through a short cache; poll.
    let last;
    await waitUntil(async () => (last = await cd.get('/v1/jobs')).status === 401, {
      what: 'revoked key rejected',
      describe: () => `last: ${last?.status} ${last?.text}`,
    });
    assertError(last, 401, 'unauthorized');
    assert.equal((await new Client(env.server.url, kept).get('/v1/jobs')).status, 200, 'other key still works');
  });
});

describe('key storage', () => {
  test('keys are stored only as hashes: no database file contains a key', async () => {
    // Use every key once so any cache or log in the database is exercised.
    for (const k of Object.values(env.keys)) assert.equal((await new Client(env.server.url, k).get('/v1/jobs')).status, 200);
    const files = fs.readdirSync(env.dir).filter((f) => f.startsWith(path.basename(env.db)));
    assert.ok(files.length >= 1, `database files in ${env.dir}: ${fs.readdirSync(env.dir)}`);
    for (const f of files) {
      const bytes = fs.readFileSync(path.join(env.dir, f));
      for (const [name, k] of Object.entries(env.keys)) {
        const secret = k.slice('clai_'.length);
        assert.equal(bytes.indexOf(secret), -1, `${f} contains the key of project ${name}`);
        assert.equal(bytes.indexOf(Buffer.from(secret).toString('base64')), -1, `${f} contains the key (base64)`);
      }
    }
  });
});

describe('project isolation', () => {
  let jobA;

  before(async () => {
    const created = await a.createJob({ message_input: 'alpha secret question', webhook_url: rx.url(rx.path('alpha')), metadata: { owner: 'alpha' } });
    jobA = created.job_id;
    await a.waitStatus(jobA, 'awaiting_response');
  });

  test("B's key gets 404 not_found for A's job (GET)", async () => {
    const r = await b.get(`/v1/jobs/${jobA}`);
    assertError(r, 404, 'not_found');
    assert.ok(!r.text.includes('alpha secret'), 'no content leaks');
    const unknown = await b.get('/v1/jobs/job_01ARZ3NDEKTSV4RRFFQ69G5FAV');
    assertError(unknown, 404, 'not_found');
    assert.equal(r.json.error.code, unknown.json.error.code, 'same answer as for a job that does not exist');
  });

  test("B's key gets 404 for POST …/response on A's job, and A's job is unchanged", async () => {
    const r = await b.respond(jobA, 'hijack');
    assertError(r, 404, 'not_found');
    const job = await a.getJob(jobA);
    assert.equal(job.status, 'awaiting_response');
    assert.equal(job.message_output, null);
  });

  test("B's key gets 404 for POST …/redeliver on A's job", async () => {
    const r = await b.post(`/v1/jobs/${jobA}/redeliver`, {});
    assertError(r, 404, 'not_found');
  });

  test("B's list does not include A's jobs; A's does", async () => {
    const lb = await b.get('/v1/jobs?page_size=100');
    assert.equal(lb.status, 200, lb.text);
    assert.ok(!lb.json.jobs.some((j) => j.job_id === jobA), "A's job in B's list");
    assert.equal(lb.json.total, 0, 'B has no jobs');
    const la = await a.get('/v1/jobs?page_size=100');
    assert.equal(la.status, 200, la.text);
    assert.ok(la.json.jobs.some((j) => j.job_id === jobA), "A's job missing from A's list");
  });

  test("B's jobs are B's: A cannot see them, B can", async () => {
    const created = await b.createJob({ message: 'beta', webhook_url: rx.url(rx.path('beta')) });
    assertError(await a.get(`/v1/jobs/${created.job_id}`), 404, 'not_found');
    const job = await b.getJob(created.job_id);
    assert.equal(job.job_id, created.job_id);
    const la = await a.get('/v1/jobs?page_size=100');
    assert.ok(!la.json.jobs.some((j) => j.job_id === created.job_id));
  });

  test('A can still complete its own job', async () => {
    const r = await a.respond(jobA, 'the answer');
    assert.equal(r.status, 202, r.text);
    const job = await a.waitStatus(jobA, 'completed');
    assert.equal(job.message_output, 'the answer');
  });
});

describe('no auth on operations endpoints', () => {
  for (const p of ['/healthz', '/readyz', '/metrics']) {
    test(`GET ${p} without a key → 200`, async () => {
      const r = await request(env.server.url, 'GET', p);
      assert.equal(r.status, 200, `${p}: ${r.status} ${r.text}`);
    });
  }
});

test('SIGTERM → server exits 0', async () => {
  await env.stop();
});
