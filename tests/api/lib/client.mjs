// A small HTTP client for the Collie API built on node:http, so tests control
// every byte and header (no automatic Content-Type, raw bodies allowed).

import http from 'node:http';
import assert from 'node:assert/strict';

import { waitUntil } from './wait.mjs';

/**
 * One HTTP request. body: undefined (none), a Buffer/string (sent as is) or
 * any other value (JSON-encoded). headers: added; a header set to null is
 * omitted. Resolves {status, headers, text, json} (json null when the body
 * is not JSON). If the server answers early (e.g. 413) and the upload then
 * fails, the answer still counts.
 */
export function request(baseUrl, method, path, { body, headers = {}, timeoutMs = 30000 } = {}) {
  const url = new URL(path, baseUrl);
  let payload;
  const h = {};
  if (body !== undefined) {
    if (Buffer.isBuffer(body) || typeof body === 'string') payload = Buffer.from(body);
    else payload = Buffer.from(JSON.stringify(body));
    h['content-type'] = 'application/json';
    h['content-length'] = String(payload.length);
  }
  for (const [k, v] of Object.entries(headers)) {
    if (v === null || v === undefined) delete h[k.toLowerCase()];
    else h[k.toLowerCase()] = v;
  }
  return new Promise((resolve, reject) => {
    let settled = false;
    const req = http.request(
      { host: url.hostname, port: url.port, method, path: url.pathname + url.search, headers: h, agent: false },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', (e) => {
          if (!settled) {
            settled = true;
            reject(e);
          }
        });
        res.on('end', () => {
          if (settled) return;
          settled = true;
          const text = Buffer.concat(chunks).toString('utf8');
          let json = null;
          try {
            json = text.length ? JSON.parse(text) : null;
          } catch {
            json = null;
          }
          resolve({ status: res.statusCode, headers: res.headers, text, json });
        });
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => {
      // An early answer (e.g. 413) may be followed by EPIPE/ECONNRESET on
      // the upload; the response handler settles the promise in that case.
      setTimeout(() => {
        if (!settled) {
          settled = true;
          reject(e);
        }
      }, 200);
    });
    if (payload) req.end(payload);
    else req.end();
  });
}

export class Client {
  constructor(baseUrl, key) {
    this.baseUrl = baseUrl;
    this.key = key;
  }

  req(method, path, { body, headers = {}, ...rest } = {}) {
    const h = {};
    if (this.key) h.authorization = `Bearer ${this.key}`;
    return request(this.baseUrl, method, path, { body, headers: { ...h, ...headers }, ...rest });
  }

  get(path, opts) {
    return this.req('GET', path, opts);
  }

  post(path, body, opts = {}) {
    return this.req('POST', path, { ...opts, body });
  }

  put(path, body, opts = {}) {
    return this.req('PUT', path, { ...opts, body });
  }

  /** POST /v1/jobs, asserting 202. Returns the response body. */
  async createJob(body, opts = {}) {
    const r = await this.post('/v1/jobs', body, opts);
    assert.equal(r.status, 202, `POST /v1/jobs expected 202, got ${r.status}: ${r.text}`);
    return r.json;
  }

  /** GET /v1/jobs/{id}, asserting 200. */
  async getJob(id) {
    const r = await this.get(`/v1/jobs/${encodeURIComponent(id)}`);
    assert.equal(r.status, 200, `GET /v1/jobs/${id} expected 200, got ${r.status}: ${r.text}`);
    return r.json;
  }

  /** Polls GET /v1/jobs/{id} until pred(job) holds; returns the job. */
  async waitJob(id, pred, what = 'job condition', timeoutMs) {
    let last;
    return waitUntil(
      async () => {
        last = await this.getJob(id);
        return pred(last) ? last : null;
      },
      { what: `${id}: ${what}`, timeoutMs, describe: () => `last GET: ${JSON.stringify(last)}` },
    );
  }

  waitStatus(id, status, timeoutMs) {
    const want = Array.isArray(status) ? status : [status];
    return this.waitJob(id, (j) => want.includes(j.status), `status ${want.join('|')}`, timeoutMs);
  }

  /** Waits until the latest event of the job is delivered (per GET). */
  waitDelivered(id, timeoutMs) {
    return this.waitJob(
      id,
      (j) => j.webhook_delivery && j.webhook_delivery.status === 'delivered',
      'webhook_delivery.status delivered',
      timeoutMs,
    );
  }

  /** POST /v1/jobs/{id}/response. */
  respond(id, response) {
    return this.post(`/v1/jobs/${encodeURIComponent(id)}/response`, { response });
  }
}

/** Asserts the SPEC 3.8 error shape and returns the error object. */
export function assertError(r, status, code, { field } = {}) {
  const text = r.text.length > 600 ? r.text.slice(0, 600) + '…' : r.text;
  r = { ...r, text };
  assert.equal(r.status, status, `expected HTTP ${status} (${code}), got ${r.status}: ${r.text}`);
  assert.ok(r.json && typeof r.json === 'object', `error body must be JSON, got ${JSON.stringify(r.text)}`);
  const e = r.json.error;
  assert.ok(e && typeof e === 'object', `error body must be {"error":{…}}, got ${r.text}`);
  if (code !== undefined) {
    const codes = Array.isArray(code) ? code : [code];
    assert.ok(codes.includes(e.code), `expected error.code ${codes.join('|')}, got ${JSON.stringify(e.code)} (${r.text})`);
  } else {
    assert.equal(typeof e.code, 'string');
    assert.ok(e.code.length > 0);
  }
  assert.equal(typeof e.message, 'string', `error.message must be a string: ${r.text}`);
  assert.ok(e.message.length > 0, `error.message must not be empty: ${r.text}`);
  if (field !== undefined) {
    const fields = Array.isArray(field) ? field : [field];
    assert.ok(fields.includes(e.field), `expected error.field ${fields.join('|')}, got ${JSON.stringify(e.field)} (${r.text})`);
  }
  if (e.field !== undefined && e.field !== null) assert.equal(typeof e.field, 'string');
  return e;
}

/** Content-Type of JSON replies: application/json (charset optional). */
export function assertJsonContentType(r) {
  assert.match(String(r.headers['content-type'] || ''), /^application\/json\b/i, `content-type of ${r.status} reply`);
}
