-- wrk script: every request is a POST of the JSON body in the WRK_BODY environment variable
-- (bench/load.ts sets it), by default the evaluator case's expression.
local body = os.getenv("WRK_BODY")
if body == nil or body == "" then
  body = '{"expression":"(6+7)*3 - 8/2"}'
end
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
