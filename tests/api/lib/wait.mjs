// Polling helpers. Tests never assert on timing: deadlines here only keep a
// broken server from hanging the suite.

export const DEFAULT_TIMEOUT_MS = Number(process.env.COLLIE_TEST_TIMEOUT_MS || 30000);

/**
 * Calls fn (may be async) every intervalMs until it returns a truthy value,
 * which is returned. Throws after timeoutMs with describe() in the message.
 */
export async function waitUntil(fn, { timeoutMs = DEFAULT_TIMEOUT_MS, intervalMs = 25, what = 'condition', describe } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      let extra = '';
      try {
        extra = describe ? `\n${await describe()}` : '';
      } catch {
        /* ignore */
      }
      const lastText = last instanceof Error ? `last error: ${last.message}` : `last value: ${JSON.stringify(last)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${lastText})${extra}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
