// SPEC 3.1 / 3.4 / 3.5 / 3.8: every error status, its error.code and (for
// 422) error.field; hostile inputs never produce a 5xx.

import { test, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';

import { assertError, request } from './lib/client.mjs';
import { assertCreated } from './lib/spec.mjs';
import { useCollie } from './lib/suite.mjs';

const MAX_MESSAGE = 1024;
const MAX_BODY = 64 * 1024;

let env;
let rx;
let c;
let hook;

useCollie({ projects: ['a'], maxBodyBytes: MAX_BODY, maxMessageBytes: MAX_MESSAGE }, (suite) => {
  ({ env, rx } = suite);
  hook = rx.url(rx.path('validation'));
  c = env.client('a');
});

const post = (body, opts) => c.post('/v1/jobs', body, opts);
const V = 'validation_error';

async function expect422(body, field, what) {
  const r = await post(body);
  assertError(r, 422, V, { field });
  return r;
}

// Sends text over a fresh TCP connection and resolves with everything the
// server sent until it closed (for requests the HTTP client would not send
// as they are). what names the request in the timeout error.
function rawExchange(text, what) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(new URL(env.server.url).port), '127.0.0.1', () => sock.write(text, 'latin1'));
    const chunks = [];
    sock.setTimeout(20000, () => sock.destroy(new Error(`no answer to ${what}`)));
    sock.on('data', (d) => chunks.push(d));
    sock.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    sock.on('error', reject);
  });
}

// The JSON body of a raw HTTP answer.
const rawJson = (raw) => JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4));

async function assertAlive() {
  const r = await request(env.server.url, 'GET', '/healthz');
  assert.equal(r.status, 200, 'server still alive');
}

describe('POST /v1/jobs: message fields', () => {
  test('message together with message_input → 400 invalid_request', async () => {
    const r = await post({ message: 'a', message_input: 'b', webhook_url: hook });
    assertError(r, 400, 'invalid_request');
  });

  test('message together with message_output → 400 invalid_request', async () => {
    const r = await post({ message: 'a', message_output: 'b', webhook_url: hook });
    assertError(r, 400, 'invalid_request');
  });

  test('no message field → 422', async () => {
    const r = await post({ webhook_url: hook, metadata: { a: 1 } });
    assertError(r, 422, V);
  });

  test('message over max_message_bytes → 422 naming the field', async () => {
    await expect422({ message_input: 'x'.repeat(MAX_MESSAGE + 1), webhook_url: hook }, 'message_input');
    await expect422({ message_output: 'x'.repeat(MAX_MESSAGE + 1), webhook_url: hook }, 'message_output');
    await expect422({ message: 'x'.repeat(MAX_MESSAGE + 1), webhook_url: hook }, 'message');
  });

  test('the limit counts bytes, not characters', async () => {
    // 513 × "é" = 513 characters but 1026 bytes.
    await expect422({ message_input: 'é'.repeat(513), inbound_only: true, webhook_url: hook }, 'message_input');
  });

  test('a message of exactly max_message_bytes is accepted', async () => {
    const r = await post({ message_input: 'y'.repeat(MAX_MESSAGE), inbound_only: true, webhook_url: hook });
    assert.equal(r.status, 202, r.text);
    assertCreated(r.json);
  });

  test('string containing NUL → 422 naming the field', async () => {
    await expect422({ message_input: 'before\u0000after', webhook_url: hook }, 'message_input');
    await expect422({ message: '\u0000', webhook_url: hook }, 'message');
    await expect422({ message_output: 'abc\u0000', webhook_url: hook }, 'message_output');
  });

  test('NUL inside metadata → 422', async () => {
    const r = await post({ message_input: 'hi', webhook_url: hook, metadata: { k: 'v\u0000' } });
    assertError(r, 422, V);
  });

  test('empty message string is a message (202) or rejected as 422 — never 5xx', async () => {
    const r = await post({ message_input: '', inbound_only: true, webhook_url: hook });
    assert.ok(r.status === 202 || r.status === 422, `got ${r.status}: ${r.text}`);
    if (r.status === 422) assertError(r, 422, V);
  });
});

describe('POST /v1/jobs: webhook_url', () => {
  test('missing → 422 webhook_url', () => expect422({ message_input: 'hi' }, 'webhook_url'));
  test('not a URL → 422 webhook_url', () => expect422({ message_input: 'hi', webhook_url: 'not a url' }, 'webhook_url'));
  test('relative URL → 422 webhook_url', () => expect422({ message_input: 'hi', webhook_url: '/hooks/x' }, 'webhook_url'));
  test('ftp:// → 422 webhook_url', () => expect422({ message_input: 'hi', webhook_url: 'ftp://example.com/hook' }, 'webhook_url'));
  test('over 2048 bytes → 422 webhook_url', () =>
    expect422({ message_input: 'hi', webhook_url: `${hook}?pad=${'a'.repeat(2100)}` }, 'webhook_url'));
  test('not a string → 422 webhook_url', () => expect422({ message_input: 'hi', webhook_url: 42 }, 'webhook_url'));
  test('empty string → 422 webhook_url, also right after an accepted URL', async () => {
    await expect422({ message_input: 'hi', webhook_url: '' }, 'webhook_url');
    const r = await post({ message_input: 'hi', inbound_only: true, webhook_url: hook });
    assert.equal(r.status, 202, r.text);
    await expect422({ message_input: 'hi', webhook_url: '' }, 'webhook_url');
    await expect422({ message_input: 'hi', webhook_url: `${hook}\u0000` }, 'webhook_url');
  });
  test('exactly 2048 bytes is accepted', async () => {
    const base = `${hook}?pad=`;
    const url = base + 'a'.repeat(2048 - base.length);
    assert.equal(Buffer.byteLength(url), 2048);
    const r = await post({ message_input: 'hi', inbound_only: true, webhook_url: url });
    assert.equal(r.status, 202, r.text);
  });
});

describe('POST /v1/jobs: metadata', () => {
  test('not an object → 422 metadata', async () => {
    await expect422({ message_input: 'hi', webhook_url: hook, metadata: 'str' }, 'metadata');
    await expect422({ message_input: 'hi', webhook_url: hook, metadata: [1, 2] }, 'metadata');
    await expect422({ message_input: 'hi', webhook_url: hook, metadata: 7 }, 'metadata');
  });

  test('over 50 keys → 422 metadata; 50 keys accepted', async () => {
    const mk = (n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]));
    await expect422({ message_input: 'hi', webhook_url: hook, metadata: mk(51) }, 'metadata');
    const r = await post({ message_input: 'hi', inbound_only: true, webhook_url: hook, metadata: mk(50) });
    assert.equal(r.status, 202, r.text);
  });

  test('a key over 64 bytes → 422 metadata; 64 bytes accepted', async () => {
    await expect422({ message_input: 'hi', webhook_url: hook, metadata: { ['k'.repeat(65)]: 1 } }, 'metadata');
    // 33 × "é" = 66 bytes but 33 characters.
    await expect422({ message_input: 'hi', webhook_url: hook, metadata: { ['é'.repeat(33)]: 1 } }, 'metadata');
    const r = await post({ message_input: 'hi', inbound_only: true, webhook_url: hook, metadata: { ['k'.repeat(64)]: 1 } });
    assert.equal(r.status, 202, r.text);
  });

  test('over 16 KiB serialized → 422 metadata', () =>
    expect422({ message_input: 'hi', webhook_url: hook, metadata: { big: 'm'.repeat(17 * 1024) } }, 'metadata'));

  test('null metadata is "no metadata" (202) or a 422 — never 5xx', async () => {
    const r = await post({ message_input: 'hi', inbound_only: true, webhook_url: hook, metadata: null });
    assert.ok(r.status === 202 || r.status === 422, `got ${r.status}: ${r.text}`);
  });
});

describe('POST /v1/jobs: other fields', () => {
  test('inbound_only with message_output → 422', async () => {
    const r = await post({ message_input: 'a', message_output: 'b', inbound_only: true, webhook_url: hook });
    assertError(r, 422, V, { field: ['inbound_only', 'message_output'] });
  });

  for (const [v, why] of [[59, 'below 60'], [604801, 'above 604800'], ['60', 'a string'], [1.5, 'not an integer'], [0, 'zero'], [-60, 'negative'], [true, 'a boolean']]) {
    test(`expires_in_seconds ${JSON.stringify(v)} (${why}) → 422`, () =>
      expect422({ message_input: 'hi', webhook_url: hook, expires_in_seconds: v }, 'expires_in_seconds'));
  }

  test('expires_in_seconds 60 and 604800 are accepted', async () => {
    for (const v of [60, 604800]) {
      const r = await post({ message_input: 'hi', inbound_only: true, webhook_url: hook, expires_in_seconds: v });
      assert.equal(r.status, 202, `${v}: ${r.text}`);
      const d = Date.parse(r.json.expires_at) - Date.parse(r.json.created_at);
      assert.ok(Math.abs(d - v * 1000) <= 1000, `expires_at - created_at = ${v} s, got ${d} ms`);
    }
  });

  test('wrong JSON types → 422 naming the field', async () => {
    await expect422({ message: 5, webhook_url: hook }, 'message');
    await expect422({ message_input: ['x'], webhook_url: hook }, 'message_input');
    await expect422({ message_output: { a: 1 }, webhook_url: hook }, 'message_output');
    await expect422({ message_input: 'hi', webhook_url: hook, inbound_only: 'yes' }, 'inbound_only');
    await expect422({ message_input: 'hi', webhook_url: hook, inbound_only: 1 }, 'inbound_only');
  });

  test('unknown fields are ignored (202)', async () => {
    const r = await post({ message_input: 'hi', inbound_only: true, webhook_url: hook, colour: 'blue', nested: { x: [1, 2] }, priority: 9 });
    assert.equal(r.status, 202, r.text);
    assertCreated(r.json);
  });
});

describe('POST /v1/jobs: body and content type', () => {
  test('body over max_body_bytes → 413 payload_too_large', async () => {
    const body = JSON.stringify({ message_input: 'hi', webhook_url: hook, padding: 'p'.repeat(MAX_BODY + 100) });
    const r = await post(body);
    assertError(r, 413, 'payload_too_large');
    await assertAlive();
  });

  // A declared length over the cap is refused before the body is sent:
  // no "100 Continue", a 413 at once, and the connection closed (the server
  // does not read what it refused). Raw TCP, since the client would
  // otherwise send the body.
  test('Content-Length over max_body_bytes → 413 before any body is sent, no 100 Continue', async () => {
    for (const length of [MAX_BODY + 1, 1e15]) {
      const head =
        `POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${c.key}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${length}\r\nExpect: 100-continue\r\n\r\n`;
      const raw = await rawExchange(head, `a ${length}-byte declaration`);
      assert.doesNotMatch(raw, /100 Continue/i, raw);
      assert.match(raw, /^HTTP\/1\.1 413 /, raw);
      assert.equal(rawJson(raw).error.code, 'payload_too_large', raw);
    }
    await assertAlive();
  });

  test('a transfer coding other than chunked → 400 invalid_request at once, not a wait for the close', async () => {
    const raw = await rawExchange(
      `POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${c.key}\r\n` +
        'Content-Type: application/json\r\nTransfer-Encoding: gzip\r\n\r\n{"message":',
      'Transfer-Encoding: gzip',
    );
    assert.match(raw, /^HTTP\/1\.1 400 /, raw);
    const body = rawJson(raw);
    assert.equal(body.error.code, 'invalid_request');
    assert.match(body.error.message, /gzip/);
  });

  test('a chunked body that grows past max_body_bytes → 413 payload_too_large', async () => {
    const payload = Buffer.from(JSON.stringify({ message_input: 'hi', webhook_url: hook, padding: 'p'.repeat(MAX_BODY) }));
    let chunked = '';
    for (let i = 0; i < payload.length; i += 8192) {
      const part = payload.subarray(i, i + 8192);
      chunked += `${part.length.toString(16)}\r\n${part.toString('latin1')}\r\n`;
    }
    chunked += '0\r\n\r\n';
    const raw = await rawExchange(
      `POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${c.key}\r\nConnection: close\r\n` +
        `Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}`,
      'an oversized chunked body',
    );
    assert.match(raw, /^HTTP\/1\.1 413 /, raw);
    assert.equal(rawJson(raw).error.code, 'payload_too_large');
  });

  test('body not JSON → 400 invalid_json', async () => {
    assertError(await post('{"message_input": "hi", '), 400, 'invalid_json');
    assertError(await post('hello'), 400, 'invalid_json');
    assertError(await post('{"message_input":"hi","webhook_url":"x"} trailing'), 400, 'invalid_json');
  });

  test('empty body → 400', async () => {
    const r = await post('');
    assertError(r, 400);
  });

  test('invalid UTF-8 bytes in the body → 400', async () => {
    const head = Buffer.from(`{"message_input":"bad `);
    const tail = Buffer.from(`","inbound_only":true,"webhook_url":"${hook}"}`);
    for (const bad of [[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xf8, 0x88, 0x80, 0x80, 0x80]]) {
      const r = await post(Buffer.concat([head, Buffer.from(bad), tail]));
      assertError(r, 400);
    }
  });

  test('a lone UTF-16 surrogate escape (\\ud800) → 400, never stored', async () => {
    const r = await post(`{"message_input":"a\\ud800b","inbound_only":true,"webhook_url":"${hook}"}`);
    assertError(r, 400);
  });

  test('NUL in a metadata key → 422 (valid JSON, a value refused); in webhook_url → 422 webhook_url', async () => {
    let r = await post(`{"message_input":"x","webhook_url":"${hook}","metadata":{"a\\u0000b":1}}`);
    const e = assertError(r, 422, V);
    assert.match(e.message, /NUL/);
    r = await post({ message_input: 'x', webhook_url: `${hook}\u0000evil` });
    assertError(r, 422, V, { field: 'webhook_url' });
  });

  test('Content-Type text/plain → 415 unsupported_media_type', async () => {
    const r = await post(JSON.stringify({ message_input: 'hi', webhook_url: hook }), { headers: { 'content-type': 'text/plain' } });
    assertError(r, 415, 'unsupported_media_type');
  });

  test('Content-Type application/x-www-form-urlencoded → 415', async () => {
    const r = await post('message_input=hi', { headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assertError(r, 415, 'unsupported_media_type');
  });

  test('Content-Type application/json; charset=utf-8 is accepted', async () => {
    const r = await post(JSON.stringify({ message_input: 'hi', inbound_only: true, webhook_url: hook }), {
      headers: { 'content-type': 'application/json; charset=utf-8' },
    });
    assert.equal(r.status, 202, r.text);
  });

  test('a JSON array body → 4xx error body, not 5xx', async () => {
    const r = await post(JSON.stringify([{ message_input: 'hi', webhook_url: hook }]));
    assert.ok(r.status === 400 || r.status === 422, `got ${r.status}: ${r.text}`);
    assertError(r, r.status);
  });

  test('JSON scalars as body → 400 "must be a JSON object", not "not JSON"', async () => {
    for (const b of ['null', '"string"', '42', 'true']) {
      const r = await post(b);
      const e = assertError(r, 400, 'invalid_request');
      assert.match(e.message, /must be a JSON object/, b);
    }
  });

  test('deeply nested JSON → 4xx, server stays up', async () => {
    const depth = 30000; // 60 KB: under max_body_bytes
    const nestedArr = '['.repeat(depth) + ']'.repeat(depth);
    let r = await post(nestedArr);
    assert.ok(r.status >= 400 && r.status < 500, `nested arrays: got ${r.status}`);
    assertError(r, r.status);
    const nestedMeta = `{"message_input":"hi","webhook_url":"${hook}","metadata":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`;
    r = await post(nestedMeta);
    assert.ok(r.status === 400 || r.status === 422, `nested metadata: got ${r.status}: ${r.text.slice(0, 200)}`);
    assertError(r, r.status);
    await assertAlive();
  });

  test('numbers out of range are valid JSON: 422, naming the field where the number is an integer', async () => {
    const base = `"message_input":"hi","webhook_url":"${hook}"`;
    const cases = [
      [`{${base},"expires_in_seconds":99999999999999999999999999999}`, 'expires_in_seconds'],
      [`{${base},"expires_in_seconds":-99999999999999999999999999999}`, 'expires_in_seconds'],
      [`{${base},"expires_in_seconds":9223372036854775807}`, 'expires_in_seconds'], // fits: range check
      [`{${base},"metadata":{"deep":[1,{"n":9223372036854775808}]}}`, 'metadata'],
      [`{${base},"expires_in_seconds":1e400}`, undefined], // beyond a double: no field to name
      [`{${base},"metadata":{"n":1e400}}`, undefined],
    ];
    for (const [b, field] of cases) {
      const r = await post(b);
      const e = assertError(r, 422, V, { field });
      if (field === undefined) assert.match(e.message, /out of range \(line 1, column \d+\)/, b);
    }
    await assertAlive();
  });

  test('duplicate keys in the JSON object do not crash the server', async () => {
    const r = await post(`{"message_input":"a","message_input":"b","inbound_only":true,"webhook_url":"${hook}"}`);
    assert.ok(r.status < 500, `got ${r.status}: ${r.text}`);
  });
});

describe('POST /v1/jobs/{id}/response', () => {
  let awaiting;

  before(async () => {
    const created = await c.createJob({ message_input: 'a question', webhook_url: hook });
    await c.waitStatus(created.job_id, 'awaiting_response');
    awaiting = created.job_id;
  });

  test('missing response → 422 response', async () => {
    const r = await c.post(`/v1/jobs/${awaiting}/response`, {});
    assertError(r, 422, V, { field: 'response' });
  });

  test('non-string response → 422 response', async () => {
    for (const v of [5, null, ['x'], { a: 1 }, true]) {
      const r = await c.post(`/v1/jobs/${awaiting}/response`, { response: v });
      assertError(r, 422, V, { field: 'response' });
    }
  });

  test('response over max_message_bytes → 422 response', async () => {
    const r = await c.respond(awaiting, 'r'.repeat(MAX_MESSAGE + 1));
    assertError(r, 422, V, { field: 'response' });
  });

  test('response containing NUL → 422 response', async () => {
    const r = await c.respond(awaiting, 'a\u0000b');
    assertError(r, 422, V, { field: 'response' });
  });

  test('response body not JSON → 400 invalid_json', async () => {
    const r = await c.post(`/v1/jobs/${awaiting}/response`, '{"response":');
    assertError(r, 400, 'invalid_json');
  });

  test('response with Content-Type text/plain → 415', async () => {
    const r = await c.post(`/v1/jobs/${awaiting}/response`, JSON.stringify({ response: 'x' }), { headers: { 'content-type': 'text/plain' } });
    assertError(r, 415, 'unsupported_media_type');
  });

  test('response body over max_body_bytes → 413 payload_too_large', async () => {
    const r = await c.post(`/v1/jobs/${awaiting}/response`, JSON.stringify({ response: 'x', padding: 'p'.repeat(MAX_BODY + 10) }));
    assertError(r, 413, 'payload_too_large');
  });

  test('the job is still awaiting_response after the rejected submissions', async () => {
    const job = await c.getJob(awaiting);
    assert.equal(job.status, 'awaiting_response');
    assert.equal(job.message_output, null);
  });

  test('second submission → 400 invalid_job_state', async () => {
    const r1 = await c.respond(awaiting, 'first answer');
    assert.equal(r1.status, 202, r1.text);
    assert.deepEqual(r1.json, { job_id: awaiting, status: 'processing_outbound' });
    const r2 = await c.respond(awaiting, 'second answer');
    assertError(r2, 400, 'invalid_job_state');
    const job = await c.waitStatus(awaiting, 'completed');
    assert.equal(job.message_output, 'first answer', 'the first response is kept');
  });

  test('inbound_only job → 400 invalid_job_state', async () => {
    const created = await c.createJob({ message_input: 'x', inbound_only: true, webhook_url: hook });
    assertError(await c.respond(created.job_id, 'y'), 400, 'invalid_job_state');
    await c.waitStatus(created.job_id, 'completed');
    assertError(await c.respond(created.job_id, 'y'), 400, 'invalid_job_state');
  });

  test('message_output job → 400 invalid_job_state', async () => {
    const created = await c.createJob({ message_output: 'x', webhook_url: hook });
    assertError(await c.respond(created.job_id, 'y'), 400, 'invalid_job_state');
  });

  test('legacy message job → 400 invalid_job_state', async () => {
    const created = await c.createJob({ message: 'x', webhook_url: hook });
    await c.waitStatus(created.job_id, 'completed');
    assertError(await c.respond(created.job_id, 'y'), 400, 'invalid_job_state');
  });

  test('unknown job → 404 not_found', async () => {
    assertError(await c.respond('job_01ARZ3NDEKTSV4RRFFQ69G5FAV', 'y'), 404, 'not_found');
    assertError(await c.respond('nonsense', 'y'), 404, 'not_found');
  });
});

describe('GET /v1/jobs/{id}', () => {
  test('unknown job → 404 not_found', async () => {
    assertError(await c.get('/v1/jobs/job_01ARZ3NDEKTSV4RRFFQ69G5FAV'), 404, 'not_found');
    assertError(await c.get('/v1/jobs/not-a-job-id'), 404, 'not_found');
    assertError(await c.get(`/v1/jobs/${'j'.repeat(5000)}`), 404, 'not_found');
  });
});

describe('GET /v1/jobs query validation', () => {
  for (const q of ['page=0', 'page=-1', 'page=abc', 'page=1.5', 'page=', 'page_size=0', 'page_size=101', 'page_size=abc', 'page_size=-5', 'status_filter=bogus', 'status_filter=COMPLETED', 'page=99999999999999999999999']) {
    test(`?${q} → 422`, async () => {
      const r = await c.get(`/v1/jobs?${q}`);
      assertError(r, 422, V);
    });
  }

  for (const q of ['status_filter=completed%00', 'page=1%00', 'page_size=10%00x', 'status_filter=%00']) {
    test(`?${q} (embedded NUL) → 422, not silently truncated`, async () => {
      const r = await c.get(`/v1/jobs?${q}`);
      assertError(r, 422, V);
    });
  }

  test('a parameter given twice → 422 naming it (which one counts would be a guess)', async () => {
    for (const [q, field] of [['page=1&page=2', 'page'], ['page_size=5&x=1&page_size=5', 'page_size'], ['status_filter=completed&status_filter=failed', 'status_filter']]) {
      const e = assertError(await c.get(`/v1/jobs?${q}`), 422, V, { field });
      assert.match(e.message, /more than once/, q);
    }
  });

  test('valid boundaries are accepted: page_size=1, page_size=100', async () => {
    for (const q of ['page_size=1', 'page_size=100', 'page=1', 'status_filter=processing', 'status_filter=completed']) {
      const r = await c.get(`/v1/jobs?${q}`);
      assert.equal(r.status, 200, `${q}: ${r.text}`);
    }
  });
});

describe('routing', () => {
  test('unknown route → 404 not_found', async () => {
    assertError(await c.get('/v1/nothing-here'), 404, 'not_found');
    assertError(await c.get('/nothing-here'), 404, 'not_found');
    assertError(await c.post('/v1/jobs/job_x/nothing', {}), 404, 'not_found');
  });

  test('wrong method → 405 method_not_allowed with Allow', async () => {
    let r = await c.req('DELETE', '/v1/jobs');
    assertError(r, 405, 'method_not_allowed');
    const allow = String(r.headers.allow || '').toUpperCase();
    assert.ok(allow.includes('GET') && allow.includes('POST'), `Allow for /v1/jobs must list GET and POST, got ${JSON.stringify(r.headers.allow)}`);
    assert.ok(!allow.includes('DELETE'), 'Allow must not list DELETE');

    r = await c.req('PUT', '/v1/jobs', { body: {} });
    assertError(r, 405, 'method_not_allowed');
    assert.ok(r.headers.allow, 'Allow header');

    r = await c.req('GET', '/v1/jobs/job_01ARZ3NDEKTSV4RRFFQ69G5FAV/response');
    assertError(r, 405, 'method_not_allowed');
    assert.ok(String(r.headers.allow || '').toUpperCase().includes('POST'), `Allow for …/response must list POST: ${r.headers.allow}`);

    r = await c.req('POST', '/healthz', { body: {} });
    assert.equal(r.status, 405, `POST /healthz: ${r.text}`);
    assert.ok(String(r.headers.allow || '').toUpperCase().includes('GET'), `Allow for /healthz: ${r.headers.allow}`);
  });

  test('HEAD is GET without the body; Allow lists HEAD beside GET', async () => {
    let r = await request(env.server.url, 'HEAD', '/healthz');
    assert.equal(r.status, 200);
    assert.equal(r.text, '');
    r = await c.req('HEAD', '/v1/jobs?page_size=1');
    assert.equal(r.status, 200);
    assert.equal(r.text, '');
    assert.ok(Number(r.headers['content-length']) > 0, 'the length GET would send');
    assert.equal((await c.req('HEAD', '/v1/jobs/job_01ARZ3NDEKTSV4RRFFQ69G5FAV')).status, 404);
    r = await c.req('HEAD', '/v1/jobs/job_01ARZ3NDEKTSV4RRFFQ69G5FAV/response');
    assert.equal(r.status, 405);
    r = await c.req('DELETE', '/v1/jobs');
    assert.match(String(r.headers.allow), /\bHEAD\b/, `Allow: ${r.headers.allow}`);
  });

  test('errors are JSON with a non-empty message (spot check of content type)', async () => {
    const r = await c.get('/v1/nothing-here');
    assert.match(String(r.headers['content-type']), /^application\/json/i);
  });

  test('%00 in the path is not a terminator: /v1/jobs/{id}%00x is not that job', async () => {
    const created = await c.createJob({ message: 'nul path', webhook_url: hook });
    assert.equal((await c.get(`/v1/jobs/${created.job_id}`)).status, 200);
    assertError(await c.get(`/v1/jobs/${created.job_id}%00x`), 404, 'not_found');
    assertError(await c.get(`/v1/jobs%00/${created.job_id}`), 404, 'not_found');
    const r = await c.post(`/v1/jobs/${created.job_id}%00/redeliver`, {});
    assert.equal(r.status, 404, `POST …%00/redeliver: ${r.status} ${r.text.slice(0, 200)}`);
  });

  test('a very long path → 4xx JSON error, never 5xx', async () => {
    const r = await c.get(`/v1/jobs/${'j'.repeat(20000)}`);
    assert.ok(r.status >= 400 && r.status < 500, `got ${r.status}`);
    assertError(r, r.status);
  });

  test('an oversized header → 4xx with the JSON error body (SPEC 3.8: every error body)', async () => {
    const r = await c.get('/v1/jobs', { headers: { 'x-big': 'x'.repeat(60000) } });
    assert.ok(r.status >= 400 && r.status < 500, `got ${r.status}`);
    assertError(r, r.status);
  });

  test('headers: 20 KiB pass; 33 KiB and 60 KiB → 431 invalid_request (docs/api.md)', async () => {
    const ok = await c.get('/v1/jobs', { headers: { 'x-pad': 'p'.repeat(20 * 1024) } });
    assert.equal(ok.status, 200, ok.text.slice(0, 200));
    for (const kib of [33, 60]) {
      const r = await c.get('/v1/jobs', { headers: { 'x-pad': 'p'.repeat(kib * 1024) } });
      assertError(r, 431, 'invalid_request');
    }
  });

  // Messages quote the path, an id, a query value or a header; a quote can
  // hold any byte, and a cut at a byte limit can split a character. The
  // answer is still the 4xx, as valid JSON (invalid bytes become "?").
  test('error messages that quote invalid UTF-8 stay 4xx JSON errors', async () => {
    let r = await c.get('/v1/%FF');
    assertError(r, 404, 'not_found');
    assert.match(r.json.error.message, /\/v1\/\?/);
    assertError(await c.get(`/v1/${'%C3%A9'.repeat(300)}`), 404, 'not_found');
    assertError(await c.get('/v1/jobs/%FF'), 404, 'not_found');
    assertError(await c.get('/v1/jobs/%C3'), 404, 'not_found');
    assertError(await c.post('/v1/jobs/%FF/response', { response: 'x' }), 404, 'not_found');
    assertError(await c.post('/v1/jobs/%FF/redeliver', {}), 404, 'not_found');
    r = await c.get(`/v1/jobs?page=${'a'.repeat(31)}%C3%A9`);
    assertError(r, 422, V, { field: 'page' });
    r = await c.get(`/v1/jobs?page_size=${'9'.repeat(31)}%C3%A9`);
    assertError(r, 422, V);
    r = await post('{}', { headers: { 'content-type': 'text/\xff' } });
    assertError(r, 415, 'unsupported_media_type');
    // a metadata key of 67 bytes, cut at 64 in the middle of an "é"
    await expect422({ message_input: 'hi', webhook_url: hook, metadata: { ['a'.repeat(63) + 'éé']: 1 } }, 'metadata');
    r = await c.req('PUT', '/v1/policy', { body: { inbound: [{ id: 'r', type: 'keywords', keywords: ['x'], action: 'a' + 'é'.repeat(40) }] } });
    assertError(r, 422, V);
    r = await c.req('PUT', '/v1/policy', { body: { inbound: [{ id: 'r', type: 't' + 'é'.repeat(40), action: 'flag' }] } });
    assertError(r, 422, V);
  });

  test('the server is still healthy after all hostile input', assertAlive);
});

describe('HTTP framing and repeated headers (RFC 9112)', () => {
  const port = () => new URL(env.server.url).port;
  const job = JSON.stringify({ message_input: 'hi', inbound_only: true, webhook_url: 'http://127.0.0.1:1/x' });
  const head = (extra) => `POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:${port()}\r\nAuthorization: Bearer ${env.keys.a}\r\n${extra}\r\n`;

  // Each refusal is one JSON 400 and the connection closed: nothing after
  // the headers is read as a request.
  function assertRefused(raw, what, message) {
    const answers = raw.match(/^HTTP\/1\.1 /gm) || [];
    assert.equal(answers.length, 1, `${what}: one answer, got ${answers.length}: ${raw}`);
    assert.match(raw, /^HTTP\/1\.1 400 /, what);
    assert.match(raw, /\r\nConnection: close\r\n/i, what);
    const e = rawJson(raw).error;
    assert.equal(e.code, 'invalid_request', what);
    assert.match(e.message, message, what);
  }

  test('two Content-Length headers → 400, and the body is not read as a second request', async () => {
    const smuggled = `GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n`;
    const body = '{}' + smuggled;
    const raw = await rawExchange(
      head(`Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: ${body.length}\r\n`) + body,
      'two Content-Length headers',
    );
    assertRefused(raw, 'two Content-Length', /more than one Content-Length header/);
    assert.doesNotMatch(raw, /"status":"ok"/);
  });

  test('Content-Length with Transfer-Encoding → 400', async () => {
    const chunked = `${job.length.toString(16)}\r\n${job}\r\n0\r\n\r\n`;
    const raw = await rawExchange(
      head(`Content-Type: application/json\r\nContent-Length: ${job.length}\r\nTransfer-Encoding: chunked\r\n`) + chunked,
      'CL and TE',
    );
    assertRefused(raw, 'CL and TE', /both Content-Length and Transfer-Encoding/);
  });

  test('a repeated Authorization, Content-Type or Idempotency-Key header → 400 naming it', async () => {
    const cases = [
      [`Authorization: Bearer ${env.keys.a}\r\n`, /more than one Authorization header/],
      ['Content-Type: application/json\r\nContent-Type: text/plain\r\n', /more than one Content-Type header/],
      ['Idempotency-Key: one\r\nidempotency-key: two\r\n', /more than one Idempotency-Key header/],
    ];
    for (const [extra, message] of cases) {
      const ct = /Content-Type/.test(extra) ? '' : 'Content-Type: application/json\r\n';
      const raw = await rawExchange(head(`${ct}${extra}Content-Length: ${job.length}\r\n`) + job, String(message));
      assertRefused(raw, String(message), message);
    }
  });

  test('HTTP/1.1 without Host → 400; HTTP/1.0 needs none', async () => {
    let raw = await rawExchange('GET /healthz HTTP/1.1\r\n\r\n', 'no Host');
    assertRefused(raw, 'no Host', /needs a Host header/);
    raw = await rawExchange('GET /healthz HTTP/1.0\r\n\r\n', 'HTTP/1.0');
    assert.match(raw, /^HTTP\/1\.1 200 /, raw);
  });
});

describe('routing: ids of any length', () => {
  // A path segment too long to be an id still matches its route, so the
  // method and the key are judged first, as for any other id.
  const long = 'x'.repeat(300);
  test('wrong method → 405 with Allow; no key → 401; with a key → 404 not_found', async () => {
    let r = await request(env.server.url, 'DELETE', `/v1/jobs/${long}`, { headers: { authorization: `Bearer ${env.keys.a}` } });
    assertError(r, 405, 'method_not_allowed');
    assert.equal(r.headers.allow, 'GET, HEAD');
    r = await request(env.server.url, 'GET', `/v1/jobs/${long}`);
    assertError(r, 401, 'unauthorized');
    r = await c.get(`/v1/jobs/${long}`);
    assertError(r, 404, 'not_found');
    r = await c.post(`/v1/jobs/${long}/response`, { response: 'x' });
    assertError(r, 404, 'not_found');
  });
});

test('SIGTERM → server exits 0', async () => {
  await env.stop();
});
