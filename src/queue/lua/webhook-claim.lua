--[[
webhook-claim: up to `max` webhook deliveries for one gateway, in one step. The stream's consumer
group makes each completion one gateway's at a time; an entry stays pending until acknowledged,
so a failed attempt (or a gateway that died) is simply not acknowledged and is handed out again
once it has been idle for its backoff: max(attempt time, retry * 2^(attempts-1), capped at 60 s).
An entry handed out maxAttempts times already goes to the webhook dead letters instead.

KEYS[1]  the webhook stream               KEYS[2]  the webhook dead-letter stream
ARGV[1]  consumer group     ARGV[2]  consumer        ARGV[3]  max deliveries
ARGV[4]  maxAttempts        ARGV[5]  retry, ms       ARGV[6]  attempt time, ms
ARGV[7]  dead letters kept (exact trim)

Returns: five per delivery: entry id, ticket id, client, url, attempt (1 on the first).
]]
local stream, group, consumer = KEYS[1], ARGV[1], ARGV[2]
local max, maxAttempts = tonumber(ARGV[3]), tonumber(ARGV[4])
local retry, attemptMs = tonumber(ARGV[5]), tonumber(ARGV[6])

-- The group starts at 0 so that completions stored before any gateway ran are delivered.
redis.pcall('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')

local function backoff(attempts)
  local wait = math.min(retry * 2 ^ (attempts - 1), 60000)
  return math.max(wait, attemptMs)
end

local function fields(flat)
  local f = {}
  for i = 1, #flat, 2 do f[flat[i]] = flat[i + 1] end
  return f
end

local out = {}
for _, p in ipairs(redis.call('XPENDING', stream, group, 'IDLE', attemptMs, '-', '+', 100)) do
  if #out >= max * 5 then break end
  local id, idle, count = p[1], tonumber(p[3]), tonumber(p[4])
  if idle >= backoff(count) then
    local found = redis.call('XRANGE', stream, id, id)
    if #found == 0 then
      redis.call('XACK', stream, group, id)
    else
      local f = fields(found[1][2])
      if count >= maxAttempts then
        redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[7], '*', 'ticket', f.ticket, 'client', f.client,
          'url', f.url, 'attempts', count)
        redis.call('XACK', stream, group, id)
        redis.call('XDEL', stream, id)
      elseif #redis.call('XCLAIM', stream, group, consumer, 0, id) == 1 then
        local n = #out
        out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5] = id, f.ticket, f.client, f.url, count + 1
      end
    end
  end
end

local want = max - #out / 5
if want > 0 then
  local read = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', want, 'STREAMS', stream, '>')
  if read then
    for _, entry in ipairs(read[1][2]) do
      local f = fields(entry[2])
      local n = #out
      out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5] = entry[1], f.ticket, f.client, f.url, 1
    end
  end
end
return out
