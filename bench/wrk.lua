-- wrk script for bench/run.sh.
--
-- WRK_BODY (read when the script loads) picks the requests:
--   unset   the request given on wrk's command line (GET / or GET /ping);
--   unique  POST /send with a value no other request of the run sends:
--           WRK_TAG, the thread's number and a per-thread counter;
--   hot     POST /send with the same value, "hot", every time.
-- At the end one line starting with "BENCH" sums the run up for run.sh.

local body_mode = os.getenv("WRK_BODY")
local tag = os.getenv("WRK_TAG") or "run"

local next_thread = 0

-- Runs once per wrk thread, before the run: numbers the threads so that
-- their values differ.
function setup(thread)
  thread:set("thread_number", next_thread)
  next_thread = next_thread + 1
end

if body_mode == "unique" or body_mode == "hot" then
  local headers = { ["Content-Type"] = "application/json" }
  local hot_request = wrk.format("POST", "/send", headers, '{"value":"hot"}')
  local sent = 0

  function request()
    if body_mode == "hot" then
      return hot_request
    end
    sent = sent + 1
    local value = string.format("%s-%d-%d", tag, thread_number, sent)
    return wrk.format("POST", "/send", headers, '{"value":"' .. value .. '"}')
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d " ..
    "connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
