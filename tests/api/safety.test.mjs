// SPEC 3.1 / 6 (safety): outside dev mode, http:// webhook URLs are refused,
// and targets resolving to loopback, private, link-local or cloud-metadata
// addresses are never called.

import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';

import { startCollie } from './lib/server.mjs';
import { assertError } from './lib/client.mjs';

describe('webhook target safety outside dev mode', () => {
  let env3;

  before(async () => {
    env3 = await startCollie({ projects: ['prod'], dev: false });
  });

  after(async () => {
    if (env3 && !env3.server.exited) await env3.server.kill();
  });

  test('http:// webhook_url → 422 webhook_url', async () => {
    const r = await env3.client('prod').post('/v1/jobs', { message: 'x', webhook_url: 'http://example.com/hook' });
    assertError(r, 422, 'validation_error', { field: 'webhook_url' });
  });

  // A raw TCP listener on a loopback address: if Collie ever connected to
  // it (the TLS handshake would fail, but the connection is the leak), the
  // listener sees it.
  async function tcpTrap(host) {
    const conns = [];
    const srv = net.createServer((sock) => {
      conns.push(sock.remoteAddress);
      sock.destroy();
    });
    await new Promise((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(0, host, resolve);
    });
    return { port: srv.address().port, conns, close: () => new Promise((r) => srv.close(() => r())) };
  }

  async function refused(target, trap) {
    const c3 = env3.client('prod');
    const r = await c3.post('/v1/jobs', { message: 'x', webhook_url: target });
    if (r.status === 422) {
      assertError(r, 422, 'validation_error', { field: 'webhook_url' });
      return;
    }
    assert.equal(r.status, 202, r.text);
    const got = await c3.waitJob(r.json.job_id, (j) => j.webhook_delivery?.status === 'failed', 'delivery refused');
    assert.equal(got.webhook_delivery.response_code, null, 'no HTTP response from a refused target');
    if (trap) assert.deepEqual(trap.conns, [], `Collie connected to the refused target ${target}`);
  }

  for (const [host, name] of [['127.0.0.1', '127.0.0.1'], ['127.0.0.1', 'localhost'], ['::1', '[::1]']]) {
    test(`https://${name}:PORT is refused: 422, or failed without ever connecting`, async (t) => {
      let trap;
      try {
        trap = await tcpTrap(host);
      } catch {
        t.skip(`cannot listen on ${host}`);
        return;
      }
      try {
        await refused(`https://${name}:${trap.port}/hook`, trap);
      } finally {
        await trap.close();
      }
    });
  }

  // One per refused class: cloud metadata, RFC 1918 (three ranges), link-local
  // (v4, v6), unique-local (RFC 4193), CGNAT, multicast, unspecified, and a
  // loopback address written as IPv4-mapped IPv6.
  for (const target of ['https://169.254.169.254/latest/meta-data/', 'https://10.0.0.1/hook',
    'https://172.16.5.4/hook', 'https://192.168.1.1/hook', 'https://169.254.10.10/hook',
    'https://[fe80::1]/hook', 'https://[fd12:3456::1]/hook', 'https://100.64.0.1/hook',
    'https://224.0.0.251/hook', 'https://[ff02::1]/hook', 'https://0.0.0.0/hook',
    'https://[::ffff:127.0.0.1]/hook']) {
    test(`${target} is refused (422 at create, or failed without a response)`, () => refused(target));
  }

  test('SIGTERM → non-dev server exits 0', async () => {
    await env3.stop();
  });
});

