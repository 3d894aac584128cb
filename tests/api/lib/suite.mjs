// The set-up most suites share: a webhook receiver and one collie with the
// given projects, started before the suite's tests and stopped after them.

import { before, after } from 'node:test';

import { startCollie } from './server.mjs';
import { startReceiver } from './receiver.mjs';

/**
 * Registers a before hook that starts both and then awaits setUp({ env, rx })
 * (env from startCollie(opts), rx the receiver), and an after hook that
 * stops them.
 */
export function useCollie(opts, setUp) {
  const suite = { env: null, rx: null };
  before(async () => {
    suite.rx = await startReceiver();
    suite.env = await startCollie(opts);
    await setUp(suite);
  });
  after(async () => {
    if (suite.env && !suite.env.server.exited) await suite.env.server.kill();
    if (suite.rx) await suite.rx.close();
  });
}
