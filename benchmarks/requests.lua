-- wrk script: rotate through requests (path TAB body, one per line; a body means POST JSON)
-- and bearer tokens (one per line), so each request carries its own Authorization header.
-- Files: $BENCH_REQUESTS and $BENCH_TOKENS. Prints one "BENCH_RESULT {json}" line at the end.

local requests, tokens = {}, {}
local next_request, next_token = 0, 0

local function lines(path)
  local found = {}
  for line in io.lines(path) do
    if line ~= "" then found[#found + 1] = line end
  end
  return found
end

function init(args)
  for _, line in ipairs(lines(os.getenv("BENCH_REQUESTS"))) do
    local tab = line:find("\t", 1, true)
    requests[#requests + 1] = { path = line:sub(1, tab - 1), body = line:sub(tab + 1) }
  end
  tokens = lines(os.getenv("BENCH_TOKENS"))
  -- Threads start at different places so they do not ask in lockstep.
  next_request = math.random(#requests) - 1
  next_token = math.random(#tokens) - 1
end

function request()
  local r = requests[next_request % #requests + 1]
  local token = tokens[next_token % #tokens + 1]
  next_request = next_request + 1
  next_token = next_token + 1
  local headers = { ["Authorization"] = "Bearer " .. token, ["Accept"] = "application/json" }
  if r.body ~= "" then
    headers["Content-Type"] = "application/json"
    return wrk.format("POST", r.path, headers, r.body)
  end
  return wrk.format("GET", r.path, headers)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
