// A real webhook receiver: node:http on 127.0.0.1 recording every request
// and answering according to a per-path plan.

import http from 'node:http';
import crypto from 'node:crypto';

import { waitUntil } from './wait.mjs';

/**
 * Plans: receiver.plan(path, plan) where plan is
 *  - a number: always answer that status;
 *  - an array of numbers / {status, delayMs}: answered in order for the
 *    requests to that path, the last entry repeating afterwards;
 *  - a function (record, n) => status | {status, delayMs, headers, body}, n = 0-based count
 *    of earlier requests to that path.
 * Unplanned paths answer 200.
 */
export class Receiver {
  constructor() {
    this.records = [];
    this.plans = new Map();
    this.counts = new Map();
    this.sockets = new Set();
    this.timers = new Set();
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  async listen() {
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', resolve);
    });
    this.port = this.server.address().port;
    return this;
  }

  get base() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** A fresh unique path (and its URL) for one test. */
  path(name = 'hook') {
    return `/${name}/${crypto.randomUUID()}`;
  }

  url(p) {
    return this.base + p;
  }

  plan(p, plan) {
    this.plans.set(p, plan);
    return this.url(p);
  }

  answerFor(record, n) {
    const plan = this.plans.get(record.path);
    let a;
    if (plan === undefined) a = 200;
    else if (typeof plan === 'number') a = plan;
    else if (Array.isArray(plan)) a = plan[Math.min(n, plan.length - 1)];
    else if (typeof plan === 'function') a = plan(record, n);
    else a = plan;
    if (typeof a === 'number') return { status: a, delayMs: 0, headers: {} };
    return { status: a.status ?? 200, delayMs: a.delayMs ?? 0, headers: a.headers ?? {}, body: a.body };
  }

  handle(req, res) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body = raw.toString('utf8');
      let json = null;
      try {
        json = JSON.parse(body);
      } catch {
        json = null;
      }
      const pathOnly = req.url.split('?')[0];
      const n = this.counts.get(pathOnly) || 0;
      this.counts.set(pathOnly, n + 1);
      const record = {
        index: this.records.length,
        method: req.method,
        path: pathOnly,
        url: req.url,
        headers: { ...req.headers },
        raw,
        body,
        json,
        receivedAt: Date.now(),
        answered: null,
      };
      let answer;
      try {
        answer = this.answerFor(record, n);
      } catch {
        answer = { status: 500, delayMs: 0, headers: {} };
      }
      record.answered = answer.status;
      this.records.push(record);
      const send = () => {
        if (res.destroyed) return;
        res.writeHead(answer.status, { 'content-type': 'text/plain', ...answer.headers });
        res.end(answer.body ?? `status ${answer.status}`);
      };
      if (answer.delayMs > 0) {
        const t = setTimeout(() => {
          this.timers.delete(t);
          send();
        }, answer.delayMs);
        this.timers.add(t);
      } else send();
    });
  }

  /** Records for a path (all when p is omitted). */
  on(p) {
    return p === undefined ? this.records.slice() : this.records.filter((r) => r.path === p);
  }

  /** Records whose event data.job_id is jobId. */
  forJob(jobId) {
    return this.records.filter((r) => r.json && r.json.data && r.json.data.job_id === jobId);
  }

  /** Distinct events (first record per webhook-id) of a job, in arrival order. */
  eventsOf(jobId) {
    const seen = new Set();
    const out = [];
    for (const r of this.forJob(jobId)) {
      const id = r.headers['webhook-id'];
      if (seen.has(id)) continue;
      seen.add(id);
      out.push(r);
    }
    return out;
  }

  /** Polls until pred(records) is truthy; returns its value. */
  waitFor(pred, timeoutMs, what = 'receiver condition') {
    return waitUntil(() => pred(this.records), {
      timeoutMs,
      what,
      describe: () =>
        `receiver got ${this.records.length} request(s): ` +
        JSON.stringify(
          this.records.slice(-20).map((r) => ({ path: r.path, id: r.headers['webhook-id'], type: r.json?.type, job: r.json?.data?.job_id, answered: r.answered })),
        ),
    });
  }

  /** Waits until the job has at least n distinct events; returns them. */
  waitEvents(jobId, n, timeoutMs) {
    return this.waitFor(
      () => {
        const ev = this.eventsOf(jobId);
        return ev.length >= n ? ev : null;
      },
      timeoutMs,
      `${n} event(s) for ${jobId}`,
    );
  }

  /** Waits until some record satisfies pred; returns it. */
  waitRecord(pred, timeoutMs, what) {
    return this.waitFor((recs) => recs.find(pred), timeoutMs, what);
  }

  async close() {
    for (const t of this.timers) clearTimeout(t);
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(() => r()));
  }
}

export async function startReceiver() {
  const r = new Receiver();
  return r.listen();
}
