// Starting and stopping the real collie binary for black-box tests.
//
// Every test file starts its own server(s) on a free port with a database in
// its own temporary directory, so files can run in parallel.

import { spawn, spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Client } from './client.mjs';
import { waitUntil } from './wait.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const API_DIR = path.resolve(here, '..');

/** Absolute path of the collie binary under test. */
export function collieBin() {
  const bin = process.env.COLLIE_BIN || path.resolve(API_DIR, '../../build/collie');
  return path.resolve(API_DIR, bin);
}

/** True when the binary exists (lets a file explain a missing build clearly). */
export function binaryExists() {
  return fs.existsSync(collieBin());
}

/** A new temporary directory; removed by the caller via rmTemp. */
export function makeTemp(prefix = 'collie-api-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function rmTemp(dir) {
  if (!dir || process.env.COLLIE_KEEP_TMP) return;
  try {
    fs.rmSync(dir, { recursive: true, force: true });
  } catch {
    /* best effort */
  }
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Runs `collie ARGS…` to completion: {code, signal, stdout, stderr}. */
export function runCli(args, { env = {}, timeoutMs = 60000 } = {}) {
  const r = spawnSync(collieBin(), args, {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: timeoutMs,
  });
  if (r.error) throw r.error;
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** `collie project create NAME --database DB`, asserting success. */
export function createProject(db, name) {
  const r = runCli(['project', 'create', name, '--database', db]);
  assert.equal(r.code, 0, `collie project create ${name} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r;
}

/** `collie key create --project NAME --database DB`: the key printed on stdout. */
export function createKey(db, project) {
  const r = runCli(['key', 'create', '--project', project, '--database', db]);
  assert.equal(r.code, 0, `collie key create for ${project} failed (${r.code}): ${r.stderr}${r.stdout}`);
  const key = r.stdout.trim();
  assert.match(key, /^clai_\S+$/, `key create must print the key alone on stdout, got ${JSON.stringify(r.stdout)}`);
  return key;
}

const live = new Set();
process.on('exit', () => {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

function tail(s, n = 6000) {
  return s.length > n ? '…' + s.slice(-n) : s;
}

/**
 * A running `collie serve`. Use start() to create one.
 */
export class Server {
  constructor(opts) {
    this.opts = opts;
    this.db = opts.db;
    this.stdout = '';
    this.stderr = '';
    this.exited = null; // {code, signal} once the process ended
    this.proc = null;
    this.port = 0;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  args() {
    const o = this.opts;
    const a = ['serve', '--listen', `127.0.0.1:${this.port}`, '--database', o.db];
    if (o.dev !== false) a.push('--dev');
    if (o.retrySchedule) a.push('--retry-schedule', o.retrySchedule);
    if (o.maxBodyBytes) a.push('--max-body-bytes', String(o.maxBodyBytes));
    if (o.maxMessageBytes) a.push('--max-message-bytes', String(o.maxMessageBytes));
    if (o.extraArgs) a.push(...o.extraArgs);
    return a;
  }

  async launch() {
    let lastErr;
    for (let attempt = 0; attempt < 3; attempt++) {
      this.port = this.opts.port || (await freePort());
      this.stdout = '';
      this.stderr = '';
      this.exited = null;
      const proc = spawn(collieBin(), this.args(), {
        env: { ...process.env, ...(this.opts.env || {}) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      this.proc = proc;
      live.add(proc);
      this.exitPromise = new Promise((resolve) => {
        proc.on('exit', (code, signal) => {
          live.delete(proc);
          this.exited = { code, signal };
          resolve(this.exited);
        });
      });
      proc.on('error', (e) => {
        this.stderr += `\n[spawn error] ${e.message}`;
      });
      proc.stdout.setEncoding('utf8');
      proc.stderr.setEncoding('utf8');
      proc.stdout.on('data', (d) => (this.stdout += d));
      proc.stderr.on('data', (d) => (this.stderr += d));
      try {
        await this.waitReady();
        return this;
      } catch (e) {
        lastErr = e;
        if (!this.exited) {
          proc.kill('SIGKILL');
          await this.exitPromise;
        }
        // Retry only when the port was taken meanwhile.
        if (!/address already in use|EADDRINUSE|bind/i.test(this.stderr + this.stdout)) break;
      }
    }
    throw lastErr;
  }

  async waitReady(timeoutMs = 60000) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.exited) {
        throw new Error(
          `collie serve exited before becoming ready (code ${this.exited.code}, signal ${this.exited.signal})\n` +
            `args: ${this.args().join(' ')}\nstdout:\n${tail(this.stdout)}\nstderr:\n${tail(this.stderr)}`,
        );
      }
      try {
        const res = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
        if (res.status === 200) return;
      } catch {
        /* not listening yet */
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(
      `collie serve did not answer GET /healthz with 200 within ${timeoutMs} ms\n` +
        `stdout:\n${tail(this.stdout)}\nstderr:\n${tail(this.stderr)}`,
    );
  }

  /** A client authenticating with key. */
  client(key) {
    return new Client(this.url, key);
  }

  /** Sends SIGTERM and asserts a clean exit (code 0, e.g. no ASan report). */
  async stop({ timeoutMs = 30000 } = {}) {
    if (!this.proc) return;
    if (!this.exited) {
      this.proc.kill('SIGTERM');
      let handle;
      const timer = new Promise((r) => {
        handle = setTimeout(r, timeoutMs, 'timeout');
      });
      const r = await Promise.race([this.exitPromise, timer]);
      clearTimeout(handle);
      if (r === 'timeout') {
        this.proc.kill('SIGKILL');
        await this.exitPromise;
        assert.fail(
          `collie serve did not exit within ${timeoutMs} ms of SIGTERM\nstderr:\n${tail(this.stderr)}`,
        );
      }
    }
    const { code, signal } = this.exited;
    assert.ok(
      code === 0 && signal === null,
      `collie serve must exit 0 after SIGTERM, got code ${code} signal ${signal}\n` +
        `stderr:\n${tail(this.stderr)}`,
    );
  }

  /** SIGKILL: only for the crash-durability test. */
  async kill() {
    if (!this.proc || this.exited) return;
    this.proc.kill('SIGKILL');
    await this.exitPromise;
  }
}

/** Starts `collie serve` (dev mode, millisecond retry schedule by default). */
export async function startServer(opts) {
  const s = new Server({ retrySchedule: '100ms,200ms,400ms', ...opts });
  await s.launch();
  return s;
}

/**
 * The usual fixture: a temp dir, a database with the given projects (each
 * with one key, created with the CLI before the server starts) and a server.
 * Returns {dir, db, server, keys, client(name), stop()}.
 */
export async function startCollie({ projects = ['a'], ...serverOpts } = {}) {
  const dir = makeTemp();
  const db = path.join(dir, 'collie.db');
  const keys = {};
  let server;
  try {
    for (const p of projects) {
      createProject(db, p);
      keys[p] = createKey(db, p);
    }
    server = await startServer({ db, ...serverOpts });
  } catch (e) {
    rmTemp(dir);
    throw e;
  }
  return {
    dir,
    db,
    server,
    keys,
    client: (name = projects[0]) => server.client(keys[name]),
    async stop() {
      try {
        await server.stop();
      } finally {
        rmTemp(dir);
      }
    },
  };
}

export { waitUntil };
