-- wrk script: BatchMeterUsage with 25 records of distinct keys per request.
-- Keys: customers c<i> of product bench-saas, dimensions d0..d<D-1>, the last 5 hours.
-- Each wrk thread walks its own slice of the key space, so no two requests share a key.
-- Timestamps count back from one instant, BENCH_NOW (epoch seconds, the same for every wrk
-- process of a run): read per request, a run crossing minute 1 of an hour moved the last
-- hour's records into the hour before, where the next hour index's records billed them again.
local buyers = tonumber(os.getenv("BENCH_BUYERS") or "20000")
local dims = tonumber(os.getenv("BENCH_DIMS") or "10")
local counter = 0
thread_id = 0  -- a global: setup() sets it per thread (a local would shadow it)
local threads_total = 1
local offset = 0
local now = 0

function setup(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end

function init(args)
  -- BENCH_THREADS: the stride (all threads of all wrk processes sharing one key space);
  -- BENCH_OFFSET: this wrk's first slot in it, when several wrk processes run at once.
  threads_total = tonumber(os.getenv("BENCH_THREADS") or "1")
  offset = tonumber(os.getenv("BENCH_OFFSET") or "0")
  now = tonumber(os.getenv("BENCH_NOW") or tostring(os.time()))
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-amz-json-1.1"
  wrk.headers["X-Amz-Target"] = "AWSMPMeteringService.BatchMeterUsage"
  -- signed-looking (marketmeter's open auth ignores it; moto routes by its credential scope)
  wrk.headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/aws-marketplace/aws4_request, SignedHeaders=host;x-amz-target, Signature=0"
end

function request()
  local n = counter * threads_total + offset + thread_id
  counter = counter + 1
  local per_hour = buyers / 25
  local slot = n % per_hour
  local rest = math.floor(n / per_hour)
  local dim = rest % dims
  local hour = math.floor(rest / dims) % 5
  local ts = now - 60 - hour * 3600
  local parts = {}
  for i = 0, 24 do
    parts[#parts + 1] = string.format(
      '{"Timestamp":%d,"CustomerIdentifier":"c%d","Dimension":"d%d","Quantity":%d}',
      ts, slot * 25 + i, dim, (n % 97) + 1)
  end
  local body = '{"ProductCode":"bench-saas","UsageRecords":[' .. table.concat(parts, ",") .. ']}'
  return wrk.format(nil, "/", nil, body)
end
