-- wrk script: replays the SigV4-signed BatchMeterUsage requests of bench/signed_requests.py
-- (BENCH_SIGNED: the file, BENCH_HOST: the host:port it was signed for; one request per line: x-amz-date, Authorization, body, tab-separated).
local requests = {}
local counter = 0

function init(args)
  for line in io.lines(os.getenv("BENCH_SIGNED")) do
    local date, authorization, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
    requests[#requests + 1] = wrk.format("POST", "/", {
      ["Host"] = os.getenv("BENCH_HOST"),
      ["Content-Type"] = "application/x-amz-json-1.1",
      ["X-Amz-Target"] = "AWSMPMeteringService.BatchMeterUsage",
      ["X-Amz-Date"] = date,
      ["Authorization"] = authorization,
    }, body)
  end
end

function request()
  counter = counter + 1
  if counter > #requests then
    counter = 1  -- out of signed requests: re-sent ones are replays (the ledger check says so)
  end
  return requests[counter]
end
