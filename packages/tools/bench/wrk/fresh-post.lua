-- wrk script: the form POST of form-post.lua with something that must be new for every request,
-- made beforehand (wrk cannot sign), one a line in a file: a DPoP proof (RFC 9449), as a DPoP
-- client sends, or the whole body (a platform token seen for the first time, for federated_jwt).
--   BENCH_BODY, BENCH_AUTHORIZATION, BENCH_MAX_REQUESTS   as in form-post.lua
--   BENCH_DPOP_FILE     proofs, one a line: each request sends the next one as its DPoP header
--   BENCH_BODY_FILE     bodies, one a line: each request sends the next one as its body
--                       (with either file, each line is good once: wrk stops its thread when they
--                       run out, rather than send one again)
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

local function nonEmpty(name)
  local v = os.getenv(name)
  if v and v ~= "" then return v end
  return nil
end

function init(args)
  local dpopFile, bodyFile = nonEmpty("BENCH_DPOP_FILE"), nonEmpty("BENCH_BODY_FILE")
  local file = dpopFile or bodyFile
  if not file then return end
  requests = {}
  local headers = {}
  for k, v in pairs(wrk.headers) do headers[k] = v end
  for line in io.lines(file) do
    if line ~= "" then
      if dpopFile then
        headers["DPoP"] = line
        requests[#requests + 1] = wrk.format(nil, nil, headers)
      else
        requests[#requests + 1] = wrk.format(nil, nil, headers, line)
      end
    end
  end
end

function request()
  if requests == nil then return wrk.format() end
  local r = requests[nextRequest]
  if r == nil then
    -- Nothing is sent again: an empty request writes no bytes, and the thread stops.
    wrk.thread:stop()
    return ""
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
