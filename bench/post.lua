-- wrk script for scripts/bench: POSTs Segment deliveries (one track event, or a batch of
-- them) with Basic auth, each event with a messageId never sent before, because segfn
-- answers a repeated messageId from its deduplication store without running the
-- function. Prints wrk's summary as one JSON line when done.
--
--   wrk ... -s bench/post.lua URL -- PREFIX BATCH AUTHORIZATION TEMPLATE [HEADER]
--   PREFIX         unique per run, so runs never repeat each other's messageIds
--   BATCH          0: one message per request; N: {"batch": [N events]}
--   AUTHORIZATION  the Authorization header value
--   TEMPLATE       file with the event's JSON on one line, its messageId "@@ID@@" (or,
--                  for a webhook, whatever field makes each body new)
--   HEADER         optional: one more header, "Name: value" (a webhook's event header)

local threads = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

local counter = 0
local prefix, batch, head, tail, headers

function init(args)
  prefix = args[1]
  batch = tonumber(args[2])
  local file = assert(io.open(args[4], "rb"))
  local text = file:read("*a")
  file:close()
  local at = assert(text:find("@@ID@@", 1, true), "the template has no @@ID@@")
  head = text:sub(1, at - 1)
  tail = text:sub(at + 6)
  headers = { ["Content-Type"] = "application/json", ["Authorization"] = args[3] }
  if args[5] then
    local name, value = args[5]:match("^([^:]+):%s*(.*)$")
    headers[name] = value
  end
  prefix = prefix .. "-" .. tostring(tid or 0) .. "-"
end

function request()
  counter = counter + 1
  local body
  if batch == 0 then
    body = head .. prefix .. counter .. tail
  else
    local events = {}
    local id = prefix .. counter .. "-"
    for i = 1, batch do
      events[i] = head .. id .. i .. tail
    end
    body = '{"batch":[' .. table.concat(events, ",") .. "]}"
  end
  return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"non2xx":%d,"timeouts":%d,"p50_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(99), latency.mean, latency.max))
end
