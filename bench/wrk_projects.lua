-- wrk script for bench/load.py: one file, three modes (environment variable BENCH_MODE).
--
--   BENCH_MODE=get   GET /projects/{id}, cycling through the ids listed in BENCH_IDS_FILE
--   BENCH_MODE=list  GET /projects?limit=20
--   BENCH_MODE=post  POST /projects with a unique name per request:
--                    BENCH_TAG (random, per wrk run) .. thread number .. counter
--
-- Every request carries "Authorization: Bearer $BENCH_TOKEN".
-- done() prints one line "BENCH_JSON {...}" that bench/load.py parses.

local mode = os.getenv("BENCH_MODE") or "list"
local token = os.getenv("BENCH_TOKEN") or ""
local tag = os.getenv("BENCH_TAG") or tostring(os.time())

local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_no", thread_count)
end

local ids = {}
local id_count = 0
local next_id = 0
local counter = 0
local prefix = ""

function init(args)
  wrk.headers["Authorization"] = "Bearer " .. token
  prefix = tag .. "-" .. tostring(thread_no or 0) .. "-"
  if mode == "get" then
    local path = os.getenv("BENCH_IDS_FILE")
    local file = assert(io.open(path, "r"), "BENCH_IDS_FILE not readable")
    for line in file:lines() do
      if #line > 0 then
        id_count = id_count + 1
        ids[id_count] = line
      end
    end
    file:close()
    assert(id_count > 0, "BENCH_IDS_FILE is empty")
    -- threads start at different places in the list
    next_id = ((thread_no or 1) * 7919) % id_count
  elseif mode == "post" then
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
  end
end

function request()
  if mode == "get" then
    next_id = next_id % id_count + 1
    return wrk.format("GET", "/projects/" .. ids[next_id])
  elseif mode == "post" then
    counter = counter + 1
    local body = '{"name":"bench ' .. prefix .. tostring(counter) .. '","description":"load test"}'
    return wrk.format("POST", "/projects", nil, body)
  end
  return wrk.format("GET", "/projects?limit=20")
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors_connect":%d,"errors_read":%d,"errors_write":%d,"errors_status":%d,"errors_timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
