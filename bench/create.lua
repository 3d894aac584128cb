-- wrk script: POST /v1/jobs with a 1 KB message_input (inbound_only).
-- Key and webhook URL come from the environment (bench/run.sh sets them).
local key = os.getenv("COLLIE_KEY")
local hook = os.getenv("WEBHOOK_URL") or "http://127.0.0.1:9901/hook"
local filler = string.rep("The quick brown fox jumps over the lazy dog. ", 23) -- ~1 KB
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. key
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"message_input":"' .. filler .. '","webhook_url":"' .. hook .. '","inbound_only":true}'

-- No response() callback: wrk counts 4xx and 5xx answers itself
-- (summary.errors.status), and a Lua call per response is load-generator
-- CPU taken from the server on this shared machine.
done = function(summary, latency, requests)
  io.write(string.format("requests/s: %.0f\n", summary.requests / (summary.duration / 1e6)))
  io.write(string.format("latency p50: %.2f ms  p99: %.2f ms  max: %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("4xx/5xx: %d  socket errors: %d\n", summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
