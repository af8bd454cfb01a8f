-- wrk script: MeterUsage from many simulated instances of the bench catalog's AMI buyer
-- (bench/make_catalog.py: access key AKIABENCHBUYER000001, product bench-ami, vcpu_hours).
-- Every request names its own instance (session token i-<now>-<thread>-<n>), so each one bills
-- a new record (the hourly key is product, instance, dimension, hour).
local counter = 0
thread_id = 0  -- a global: setup() sets it per thread (a local would shadow it)
local now = 0

function setup(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end

function init(args)
  now = tonumber(os.getenv("BENCH_NOW") or tostring(os.time()))  -- instances are new per run
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-amz-json-1.1"
  wrk.headers["X-Amz-Target"] = "AWSMPMeteringService.MeterUsage"
  wrk.headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=AKIABENCHBUYER000001/20261123/"
    .. "us-east-1/aws-marketplace/aws4_request, SignedHeaders=host;x-amz-date, Signature=0"
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"ProductCode":"bench-ami","Timestamp":%d,"UsageDimension":"vcpu_hours","UsageQuantity":%d}',
    now - 60, (counter % 97) + 1)
  local headers = {}  -- wrk.format uses these instead of wrk.headers: copy them
  for name, value in pairs(wrk.headers) do headers[name] = value end
  headers["X-Amz-Security-Token"] = string.format("i-%d-%d-%d", now, thread_id, counter)
  return wrk.format(nil, "/", headers, body)
end
