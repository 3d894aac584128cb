// SPEC 3.7 (operations endpoints) and SPEC 8 (command line): dev-mode key on
// first start, project/key creation before and while the server runs.

import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { makeTemp, rmTemp, runCli, createProject, createKey, startServer, startCollie } from './lib/server.mjs';
import { startReceiver } from './lib/receiver.mjs';
import { Client, request } from './lib/client.mjs';
import { waitUntil } from './lib/wait.mjs';

let rx;
let env; // a server with project "ops" (key created before the start)
let devDir;
let devDb;
let dev1; // first start of --dev on a fresh database

before(async () => {
  rx = await startReceiver();
  devDir = makeTemp();
  devDb = path.join(devDir, 'dev.db');
  // Server start-up is slow under sanitizers: start both at once.
  [env, dev1] = await Promise.all([startCollie({ projects: ['ops'] }), startServer({ db: devDb, dev: true })]);
});

after(async () => {
  for (const s of [env?.server, dev1]) if (s && !s.exited) await s.kill();
  if (rx) await rx.close();
  rmTemp(devDir);
});

describe('operations endpoints (no auth)', () => {
  test('GET /healthz → 200', async () => {
    const r = await request(env.server.url, 'GET', '/healthz');
    assert.equal(r.status, 200, r.text);
  });

  test('GET /readyz → 200 (storage reachable)', async () => {
    const r = await request(env.server.url, 'GET', '/readyz');
    assert.equal(r.status, 200, r.text);
  });

  test('GET /metrics → 200 Prometheus text with # TYPE lines', async () => {
    // Do some work first so that request/job counters exist.
    const c = env.client('ops');
    const job = await c.createJob({ message: 'metrics', webhook_url: rx.url(rx.path('metrics')) });
    await c.waitDelivered(job.job_id);
    const r = await request(env.server.url, 'GET', '/metrics');
    assert.equal(r.status, 200, r.text);
    assert.match(String(r.headers['content-type']), /^text\/plain/i, 'Prometheus text format content type');
    assert.match(r.text, /^# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped)$/m);
    // Every sample line is "name{labels} value".
    for (const line of r.text.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [-+]?([0-9.eE+-]+|NaN|Inf|\+Inf|-Inf)( \d+)?$/, `metric line: ${line}`);
    }
    // Request durations: every answer so far (the create, the polls) is
    // counted, each in a bucket no larger than +Inf's.
    const count = Number(/^collie_http_request_seconds_count (\d+)$/m.exec(r.text)?.[1]);
    const answered = Number(/^collie_http_requests_total (\d+)$/m.exec(r.text)?.[1]);
    assert.ok(count >= 2, `collie_http_request_seconds_count: ${count}`);
    assert.equal(count, answered, 'one duration per answered request');
    const inf = Number(/^collie_http_request_seconds_bucket\{le="\+Inf"\} (\d+)$/m.exec(r.text)?.[1]);
    assert.equal(inf, count);
  });

  test('operations endpoints ignore a bogus Authorization header', async () => {
    for (const p of ['/healthz', '/readyz', '/metrics']) {
      const r = await request(env.server.url, 'GET', p, { headers: { authorization: 'Bearer clai_nope' } });
      assert.equal(r.status, 200, `${p}: ${r.status}`);
    }
  });
});

describe('command line', () => {
  test('project create: exit 0; the same name again exits non-zero (while the server runs)', () => {
    const r1 = runCli(['project', 'create', 'acme', '--database', env.db]);
    assert.equal(r1.code, 0, r1.stderr);
    const r2 = runCli(['project', 'create', 'acme', '--database', env.db]);
    assert.notEqual(r2.code, 0, 'duplicate project name must fail');
    assert.ok((r2.stderr + r2.stdout).trim().length > 0, 'says why');
    const r3 = runCli(['project', 'create', 'ops', '--database', env.db]);
    assert.notEqual(r3.code, 0, 'a project created before the start is a duplicate too');
  });

  test('--help after any command prints the usage on stdout, exit 0', () => {
    for (const args of [['key', '--help'], ['policy', 'set', '-h'], ['project', '--help'], ['migrate', '--help']]) {
      const r = runCli(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, /collie key revoke --project NAME PREFIX/, args.join(' '));
    }
  });

  test('key create prints a clai_ key alone on stdout; keys are distinct', () => {
    const k1 = createKey(env.db, 'acme');
    const k2 = createKey(env.db, 'acme');
    assert.notEqual(k1, k2);
  });

  test('key create for an unknown project exits non-zero and prints no key', () => {
    const r = runCli(['key', 'create', '--project', 'nope', '--database', env.db]);
    assert.notEqual(r.code, 0);
    assert.ok(!/clai_/.test(r.stdout), 'no key printed');
  });

  test('keys created before and while the server runs both work', async () => {
    const s = env.server;
    let r = await new Client(s.url, env.keys.ops).get('/v1/jobs');
    assert.equal(r.status, 200, `key created before the start: ${r.text}`);

    // New project and key while the server is running.
    createProject(env.db, 'late');
    const late = createKey(env.db, 'late');
    const cl = new Client(s.url, late);
    r = await cl.get('/v1/jobs');
    assert.equal(r.status, 200, `key created while serving: ${r.text}`);
    const job = await cl.createJob({ message_input: 'late', inbound_only: true, webhook_url: rx.url(rx.path('late')) });
    await cl.waitStatus(job.job_id, 'completed');
    // … and it belongs to the new project only.
    r = await new Client(s.url, env.keys.ops).get(`/v1/jobs/${job.job_id}`);
    assert.equal(r.status, 404);
  });
});

describe('dev mode first start', () => {
  test('prints a working clai_ key on first start; the key still works after a restart', async () => {
    const s = dev1;
    let key;
    try {
      key = await waitUntil(() => (s.stdout.match(/clai_[A-Za-z0-9_\-]+/) || [])[0], {
        timeoutMs: 20000,
        what: 'a clai_ key on stdout',
        describe: () => `stdout: ${s.stdout}\nstderr: ${s.stderr}`,
      });
      const c = new Client(s.url, key);
      const r = await c.get('/v1/jobs');
      assert.equal(r.status, 200, `dev key must work: ${r.text}`);
      const job = await c.createJob({ message: 'dev key', webhook_url: rx.url(rx.path('dev')) });
      await rx.waitEvents(job.job_id, 1);
    } finally {
      await s.stop();
    }
    const s2 = await startServer({ db: devDb, dev: true });
    try {
      const r = await new Client(s2.url, key).get('/v1/jobs');
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.total, 1, 'the dev project keeps its job');
      assert.ok(!s2.stdout.includes(key), 'the key is shown only once (hashes are stored, not keys)');
    } finally {
      await s2.stop();
    }
  });
});

/** Scheduling policy (0 normal, 5 SCHED_IDLE) and nice of each thread named `name`. */
function threadsNamed(pid, name) {
  const out = [];
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    if (stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) !== name) continue;
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] is field 3
    out.push({ nice: Number(f[19 - 3]), policy: Number(f[41 - 3]) });
  }
  return out;
}

describe('--background (docs/operations.md, "Capacity and bursts")', () => {
  const SCHED_OTHER = 0;
  const SCHED_IDLE = 5;

  async function backgroundThreads(server) {
    return waitUntil(() => {
      const t = ['pipeline', 'webhook', 'sweeper'].map((n) => threadsNamed(server.proc.pid, n));
      return t.every((x) => x.length > 0) && t.flat();
    }, { what: 'the pipeline, webhook and sweeper threads' });
  }

  test('default: filtering, delivery and the sweeper run SCHED_IDLE; the HTTP threads do not', async () => {
    for (const t of await backgroundThreads(env.server)) assert.equal(t.policy, SCHED_IDLE);
    const http = threadsNamed(env.server.proc.pid, 'MHD-worker');
    assert.ok(http.length > 0);
    for (const t of http) assert.deepEqual(t, { nice: 0, policy: SCHED_OTHER });
  });

  test('--background nice: the same threads run at nice +10 instead', async () => {
    const e = await startCollie({ projects: ['nice'], extraArgs: ['--background', 'nice'] });
    try {
      for (const t of await backgroundThreads(e.server)) assert.deepEqual(t, { nice: 10, policy: SCHED_OTHER });
      // And they still do their work.
      const job = await e.client().createJob({ message: 'hello', webhook_url: rx.url(rx.path('nice')) });
      await rx.waitEvents(job.job_id, 1);
    } finally {
      await e.stop();
    }
  });

  test('--background with another value: exit non-zero, naming the flag', () => {
    const dir = makeTemp();
    try {
      const r = runCli(['serve', '--database', path.join(dir, 'x.db'), '--background', 'fast']);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /--background must be idle or nice, got 'fast'/);
    } finally {
      rmTemp(dir);
    }
  });
});

test('SIGTERM → exit 0', async () => {
  await env.stop();
});
