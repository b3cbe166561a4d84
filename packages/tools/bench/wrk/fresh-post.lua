-- wrk script: the form POST of form-post.lua with a DPoP header (RFC 9449), as a DPoP client does.
--   BENCH_BODY, BENCH_AUTHORIZATION, BENCH_MAX_REQUESTS   as in form-post.lua
--   BENCH_DPOP_FILE     proofs, one a line: each request sends the next one (each is good once);
--                       wrk stops its thread when they run out, rather than send a replay
--   BENCH_DPOP_HEADER   or one DPoP value for every request (a server that does not check it)

wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or error("BENCH_BODY is not set")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"

local authorization = os.getenv("BENCH_AUTHORIZATION")
if authorization and authorization ~= "" then
  wrk.headers["Authorization"] = authorization
end

local constant = os.getenv("BENCH_DPOP_HEADER")
if constant and constant ~= "" then
  wrk.headers["DPoP"] = constant
end

local requests = nil
local nextRequest = 1

function init(args)
  local file = os.getenv("BENCH_DPOP_FILE")
  if not file or file == "" then return end
  requests = {}
  local headers = {}
  for k, v in pairs(wrk.headers) do headers[k] = v end
  for line in io.lines(file) do
    if line ~= "" then
      headers["DPoP"] = line
      requests[#requests + 1] = wrk.format(nil, nil, headers)
    end
  end
end

function request()
  if requests == nil then return wrk.format() end
  local r = requests[nextRequest]
  if r == nil then
    wrk.thread:stop()
    return requests[#requests]
  end
  nextRequest = nextRequest + 1
  return r
end

local limit = tonumber(os.getenv("BENCH_MAX_REQUESTS") or "")
if limit then
  local count = 0
  function response(status, headers, body)
    count = count + 1
    if count >= limit then
      wrk.thread:stop()
    end
  end
end
