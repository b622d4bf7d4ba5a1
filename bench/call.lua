-- wrk script: the same MCP tools/call on one session (MCP_SESSION), every answer checked.
-- An answer counts as good only if it is HTTP 200 and its body holds the expected result
-- (EXPECT, e.g. "text":"65000.12") and "isError":false; the rest are counted, never hidden.

local session = os.getenv("MCP_SESSION") or error("MCP_SESSION is not set")
local expect = os.getenv("EXPECT") or error("EXPECT is not set")

wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":7,"method":"tools/call",'
  .. '"params":{"name":"get_price","arguments":{"symbol":"BTCUSDT"}}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
wrk.headers["MCP-Protocol-Version"] = "2025-06-18"
wrk.headers["Mcp-Session-Id"] = session

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  good, bad_status, bad_body = 0, 0, 0
  first_bad = ""
end

function response(status, headers, body)
  if status ~= 200 then
    bad_status = bad_status + 1
    if first_bad == "" then first_bad = "HTTP " .. status .. " " .. string.sub(body or "", 1, 200) end
  elseif string.find(body, expect, 1, true) and string.find(body, '"isError":false', 1, true) then
    good = good + 1
  else
    bad_body = bad_body + 1
    if first_bad == "" then first_bad = string.sub(body or "", 1, 200) end
  end
end

function done(summary, latency, requests)
  local good_n, bad_status_n, bad_body_n, sample = 0, 0, 0, ""
  for _, thread in ipairs(threads) do
    good_n = good_n + thread:get("good")
    bad_status_n = bad_status_n + thread:get("bad_status")
    bad_body_n = bad_body_n + thread:get("bad_body")
    if sample == "" then sample = thread:get("first_bad") end
  end
  local e = summary.errors
  -- One machine-readable line for bench/run; wrk's own report is printed above it.
  io.write(string.format(
    "RESULT requests=%d good=%d bad_status=%d bad_body=%d socket_errors=%d duration_us=%d "
      .. "p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f\n",
    summary.requests, good_n, bad_status_n, bad_body_n,
    e.connect + e.read + e.write + e.timeout, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
  if sample ~= "" then
    io.write("FIRST_BAD " .. string.gsub(sample, "\n", " ") .. "\n")
  end
end
