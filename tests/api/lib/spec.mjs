// Assertions that encode the contract (SPEC.md): shapes of jobs, results,
// deliveries and webhook events, and Standard Webhooks signature checks.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Webhook } from 'standardwebhooks';

export const RFC3339_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;
export const STATUSES = ['pending', 'processing_inbound', 'awaiting_response', 'processing_outbound', 'completed', 'failed', 'expired'];
export const TERMINAL = ['completed', 'failed', 'expired'];
export const DELIVERY_STATUSES = ['pending', 'delivering', 'delivered', 'retrying', 'failed'];
export const DECISIONS = ['pass', 'flag', 'redact', 'block'];

export function assertTimestamp(v, what = 'timestamp') {
  assert.equal(typeof v, 'string', `${what} must be an RFC 3339 string, got ${JSON.stringify(v)}`);
  assert.match(v, RFC3339_Z, `${what} must be RFC 3339 UTC with Z, got ${v}`);
  assert.ok(!Number.isNaN(Date.parse(v)), `${what} must parse: ${v}`);
}

/** Per SPEC 6: base64(HMAC-SHA256(base64decode(secret sans whsec_), "{id}.{ts}.{body}")). */
export function sign(secret, id, timestamp, body) {
  assert.ok(secret.startsWith('whsec_'), `secret must start with whsec_: ${secret}`);
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const mac = crypto.createHmac('sha256', key).update(`${id}.${timestamp}.`).update(Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8')).digest('base64');
  return `v1,${mac}`;
}

/** Our own check of a received request's signature; returns true/false. */
export function verifyOwn(secret, headers, body) {
  const id = headers['webhook-id'];
  const ts = headers['webhook-timestamp'];
  const sigs = String(headers['webhook-signature'] || '').split(' ');
  const want = Buffer.from(sign(secret, id, ts, body));
  return sigs.some((s) => {
    const b = Buffer.from(s);
    return b.length === want.length && crypto.timingSafeEqual(b, want);
  });
}

/** Verification with the official standardwebhooks package; throws on failure. */
export function verifyStd(secret, headers, body) {
  const wh = new Webhook(secret);
  return wh.verify(body, {
    'webhook-id': headers['webhook-id'],
    'webhook-timestamp': headers['webhook-timestamp'],
    'webhook-signature': headers['webhook-signature'],
  });
}

/** Asserts a webhook_secret as SPEC 3.1/6 describes it: whsec_ + base64 of 32 bytes. */
export function assertSecret(secret) {
  assert.equal(typeof secret, 'string');
  assert.match(secret, /^whsec_[A-Za-z0-9+/]+={0,2}$/, `webhook_secret format: ${secret}`);
  const raw = secret.slice(6);
  assert.equal(raw.length % 4, 0, 'webhook_secret must be padded base64');
  assert.equal(Buffer.from(raw, 'base64').length, 32, 'webhook_secret must encode 32 bytes');
}

/** Asserts the 202 answer of POST /v1/jobs. */
export function assertCreated(body) {
  assert.ok(body && typeof body === 'object', 'create answer must be an object');
  assert.equal(typeof body.job_id, 'string');
  assert.match(body.job_id, /^job_\S+$/, `job_id: ${body.job_id}`);
  assert.equal(body.status, 'pending');
  assertSecret(body.webhook_secret);
  assertTimestamp(body.created_at, 'created_at');
  assertTimestamp(body.expires_at, 'expires_at');
}

/** Asserts a result object (SPEC 3.3) and returns it. */
export function assertResult(result, { decision, rulesEvaluated, policyVersion } = {}, what = 'result') {
  assert.ok(result && typeof result === 'object' && !Array.isArray(result), `${what} must be an object, got ${JSON.stringify(result)}`);
  for (const k of ['decision', 'rules_evaluated', 'rules_triggered', 'latency_ms', 'policy_version']) {
    assert.ok(k in result, `${what} must have ${k}: ${JSON.stringify(result)}`);
  }
  assert.ok(DECISIONS.includes(result.decision), `${what}.decision: ${result.decision}`);
  if (decision !== undefined) assert.equal(result.decision, decision, `${what}.decision (${JSON.stringify(result)})`);
  assert.ok(Number.isInteger(result.rules_evaluated) && result.rules_evaluated >= 0, `${what}.rules_evaluated: ${result.rules_evaluated}`);
  if (rulesEvaluated !== undefined) assert.equal(result.rules_evaluated, rulesEvaluated, `${what}.rules_evaluated`);
  assert.ok(Array.isArray(result.rules_triggered), `${what}.rules_triggered must be an array`);
  for (const t of result.rules_triggered) {
    assert.equal(typeof t.rule_id, 'string', `rules_triggered[].rule_id: ${JSON.stringify(t)}`);
    assert.equal(typeof t.type, 'string', `rules_triggered[].type: ${JSON.stringify(t)}`);
    assert.ok(['block', 'redact', 'flag'].includes(t.action), `rules_triggered[].action: ${JSON.stringify(t)}`);
    assert.ok(Array.isArray(t.matches), `rules_triggered[].matches: ${JSON.stringify(t)}`);
    for (const m of t.matches) {
      assert.ok(Number.isInteger(m.start) && Number.isInteger(m.end) && m.start >= 0 && m.end >= m.start, `match offsets: ${JSON.stringify(m)}`);
    }
  }
  if (result.decision === 'pass') assert.equal(result.rules_triggered.length, 0, `${what}: pass with triggered rules`);
  else assert.ok(result.rules_triggered.length > 0, `${what}: ${result.decision} without triggered rules`);
  assert.equal(typeof result.latency_ms, 'number', `${what}.latency_ms`);
  assert.ok(result.latency_ms >= 0, `${what}.latency_ms >= 0`);
  assert.ok(Number.isInteger(result.policy_version) && result.policy_version >= 0, `${what}.policy_version: ${result.policy_version}`);
  if (policyVersion !== undefined) assert.equal(result.policy_version, policyVersion, `${what}.policy_version`);
  return result;
}

export const JOB_FIELDS = [
  'job_id', 'status', 'created_at', 'completed_at', 'expires_at', 'metadata', 'message', 'message_input',
  'message_output', 'filtered_input', 'filtered_output', 'inbound_result', 'outbound_result', 'webhook_delivery', 'error',
];

/** Asserts GET /v1/jobs/{id} has every SPEC 3.3 field and no webhook_secret. */
export function assertJobShape(job) {
  for (const k of JOB_FIELDS) assert.ok(k in job, `GET job must have field ${k} (null when n/a): ${JSON.stringify(job)}`);
  assert.ok(STATUSES.includes(job.status), `status ${job.status}`);
  assert.ok(!('webhook_secret' in job), 'GET must never show webhook_secret');
  assert.ok(!JSON.stringify(job).includes('whsec_'), 'GET must never contain a whsec_ secret');
  assertTimestamp(job.created_at, 'created_at');
  assertTimestamp(job.expires_at, 'expires_at');
  if (TERMINAL.includes(job.status)) assertTimestamp(job.completed_at, 'completed_at');
  else assert.equal(job.completed_at, null, 'completed_at must be null until terminal');
  if (job.status !== 'failed') assert.equal(job.error, null, 'error must be null unless failed');
}

/** Asserts a webhook_delivery object (SPEC 3.3). */
export function assertDelivery(d, { url, status, attempts, responseCode } = {}) {
  assert.ok(d && typeof d === 'object', `webhook_delivery must be an object, got ${JSON.stringify(d)}`);
  for (const k of ['url', 'status', 'attempts', 'response_code', 'delivered_at', 'next_attempt_at']) {
    assert.ok(k in d, `webhook_delivery must have ${k}: ${JSON.stringify(d)}`);
  }
  assert.ok(DELIVERY_STATUSES.includes(d.status), `webhook_delivery.status: ${d.status}`);
  if (url !== undefined) assert.equal(d.url, url, 'webhook_delivery.url');
  if (status !== undefined) assert.equal(d.status, status, `webhook_delivery.status (${JSON.stringify(d)})`);
  assert.ok(Number.isInteger(d.attempts), 'webhook_delivery.attempts is an integer');
  if (attempts !== undefined) assert.equal(d.attempts, attempts, `webhook_delivery.attempts (${JSON.stringify(d)})`);
  if (responseCode !== undefined) assert.equal(d.response_code, responseCode, `webhook_delivery.response_code (${JSON.stringify(d)})`);
  if (d.status === 'delivered') {
    assertTimestamp(d.delivered_at, 'webhook_delivery.delivered_at');
    assert.equal(d.next_attempt_at, null, 'next_attempt_at must be null once delivered');
  }
  if (d.status === 'failed') {
    assert.equal(d.delivered_at, null, 'delivered_at must be null when failed');
    assert.equal(d.next_attempt_at, null, 'next_attempt_at must be null when failed');
  }
  if (d.status === 'retrying') assertTimestamp(d.next_attempt_at, 'webhook_delivery.next_attempt_at');
}

/**
 * Asserts one received webhook request is a valid, signed event of the
 * given job and type; returns the parsed body.
 */
export function assertEvent(rec, { secret, jobId, type }) {
  assert.equal(rec.method, 'POST', 'webhooks are POSTed');
  assert.match(String(rec.headers['content-type'] || ''), /^application\/json\b/i, 'webhook content-type');
  const id = rec.headers['webhook-id'];
  assert.ok(typeof id === 'string' && id.length > 0, 'webhook-id header');
  const ts = rec.headers['webhook-timestamp'];
  assert.match(String(ts), /^\d+$/, 'webhook-timestamp is unix seconds');
  assert.ok(Math.abs(Number(ts) - Date.now() / 1000) < 600, `webhook-timestamp ${ts} is the time of the attempt (seconds)`);
  assert.match(String(rec.headers['webhook-signature'] || ''), /(^| )v1,[A-Za-z0-9+/]+={0,2}( |$)/, 'webhook-signature v1,<base64>');
  if (secret) {
    assert.ok(verifyOwn(secret, rec.headers, rec.raw), `own HMAC check failed for ${id}`);
    assert.doesNotThrow(() => verifyStd(secret, rec.headers, rec.body), `standardwebhooks verify failed for ${id}`);
  }
  const ev = rec.json;
  assert.ok(ev && typeof ev === 'object', `webhook body must be JSON: ${rec.body}`);
  if (type) assert.equal(ev.type, type, `event type (${rec.body})`);
  assertTimestamp(ev.timestamp, 'event timestamp');
  assert.ok(ev.data && typeof ev.data === 'object', 'event data');
  for (const k of ['job_id', 'status', 'direction', 'metadata', 'filtered_content', 'result']) {
    assert.ok(k in ev.data, `event data must have ${k}: ${rec.body}`);
  }
  if (jobId) assert.equal(ev.data.job_id, jobId, 'event data.job_id');
  assert.ok(!rec.body.includes('whsec_'), 'webhook body must not contain the secret');
  return ev;
}

export function codePointIndex(text, jsIndex) {
  return Array.from(text.slice(0, jsIndex)).length;
}
