-- wrk script: POST an application/x-www-form-urlencoded body, as an OAuth client does.
--   BENCH_BODY            the form body (required)
--   BENCH_AUTHORIZATION   the Authorization header (optional; e.g. "Basic ...")
--   BENCH_MAX_REQUESTS    stop each wrk thread after this many responses (optional; a closed
--                         loop of N connections x M requests runs with -t1 and N*M here)

wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or error("BENCH_BODY is not set")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"

local authorization = os.getenv("BENCH_AUTHORIZATION")
if authorization and authorization ~= "" then
  wrk.headers["Authorization"] = authorization
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
