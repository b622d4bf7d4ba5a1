-- wrk script for bench/run and bench/growth: one POST body (BODY) on one session (MCP_SESSION),
-- every answer checked: HTTP 200, at least MIN_BYTES long, holding CONTAINS and no
-- "isError":true. Answers that fail are counted, never hidden. Prints one RESULT line.

local session = os.getenv("MCP_SESSION") or error("MCP_SESSION is not set")
wrk.method = "POST"
wrk.body = os.getenv("BODY") or error("BODY is not set")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2025-06-18"
wrk.headers["Mcp-Session-Id"] = session
local min_bytes = tonumber(os.getenv("MIN_BYTES") or "0")
local contains = os.getenv("CONTAINS") or ""

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  good, bad, bytes = 0, 0, 0
end

function response(status, headers, body)
  if status == 200 and #body >= min_bytes and string.find(body, contains, 1, true)
      and not string.find(body, '"isError":true', 1, true) then
    good = good + 1
    bytes = bytes + #body
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local good_n, bad_n, bytes_n = 0, 0, 0
  for _, thread in ipairs(threads) do
    good_n = good_n + thread:get("good")
    bad_n = bad_n + thread:get("bad")
    bytes_n = bytes_n + thread:get("bytes")
  end
  local e = summary.errors
  io.write(string.format("RESULT good=%d bad=%d bytes=%d socket_errors=%d duration_us=%d mean_us=%.1f p99_us=%.1f\n",
    good_n, bad_n, bytes_n, e.connect + e.read + e.write + e.timeout, summary.duration,
    latency.mean, latency:percentile(99)))
end
