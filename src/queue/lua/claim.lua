--[[
claim: up to `max` tasks for one consumer in one round trip, without waiting (a blocking read,
when this finds nothing, is the caller's second step on its own connection). The caller runs
it once its last run on the stream is sweepEveryMs (100 ms) old, and whenever a plain
XREADGROUP of new entries finds none; the claims in between are that plain read.
  1. Tasks given back with retryLater whose delay has passed go back into the stream.
  2. Entries whose consumer held them longer than the lease are claimed for this consumer,
     unless they were delivered maxDeliveries times already: those go to the dead-letter
     stream and their ticket fails (pending for its client, like any completion).
  3. New entries fill the rest (XREADGROUP >, which never blocks inside a script).
An entry whose task JSON cannot be decoded is dead-lettered as it is met, so that it never
fails the claims of its operation: new entries are decoded by the caller (one JSON parse per
task, not two), which names the ones it could not decode in its next call (ARGV[12…]); those
still held by this consumer are dead-lettered first. Reclaimed entries are checked here. Every call records its time as the op's last claim
(so the last claim is at most sweepEveryMs old while a consumer claims).
Deliveries of an entry = its field `b` (deliveries before a retryLater re-added it) + the
group's delivery counter. The dead-letter reason repeats deadLetterReason() of errors.ts.

KEYS[1]  the op's stream
KEYS[2]  the op's dead-letter stream
KEYS[3]  the op's delayed zset (score: due time, ms of server time)
KEYS[4]  the op's last-claim string (set to ARGV[9], the caller's clock, as stats reads it)
KEYS[5]  the webhook stream of the op's tag (a dead-lettered ticket with a `callback` is delivered there)
ARGV[1]  consumer group        ARGV[2]  consumer           ARGV[3]  lease, ms
ARGV[4]  max entries           ARGV[5]  maxDeliveries      ARGV[6]  ticket key prefix
ARGV[7]  pending list prefix   ARGV[8]  result TTL, s      ARGV[9]  completedAt, ms
ARGV[10] error code for a dead-lettered ticket
ARGV[11] dead letters kept, the newest (trimmed exactly: one entry per dead letter, cheap)
ARGV[12…] entries of this consumer's last claim whose task JSON the caller could not decode

Returns: { ms until the next delayed task is due (-1: none),
           then six per claimed entry: entry id, task JSON, enqueuedAt, deliveries, retries,
           the group's delivery counter of the entry (for the receipt) }
]]
local stream, group, consumer = KEYS[1], ARGV[1], ARGV[2]
local lease, max, maxDeliveries = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

redis.call('SET', KEYS[4], ARGV[9])

local function fields(flat)
  local f = {}
  for i = 1, #flat, 2 do f[flat[i]] = flat[i + 1] end
  return f
end

local function deadLetter(id, f, deliveries, reason)
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[11], '*', 'id', f.id or '', 't', f.t or '', 'at', f.at or '',
    'deliveries', deliveries, 'reason', reason)
  redis.call('XACK', stream, group, id)
  redis.call('XDEL', stream, id)
  if not f.id then return end
  local key = ARGV[6] .. f.id
  if redis.call('HGET', key, 'status') == 'queued' then
    redis.call('HSET', key, 'status', 'failed', 'errorCode', ARGV[10], 'errorMessage', reason,
      'completedAt', ARGV[9])
    redis.call('EXPIRE', key, ARGV[8])
    local client = redis.call('HGET', key, 'client')
    local callback = redis.call('HGET', key, 'callback')
    if callback then
      -- Webhooks (#15): as in complete.lua, the webhook is this ticket's delivery channel.
      redis.call('XADD', KEYS[5], '*', 'ticket', f.id, 'client', client, 'url', callback)
    else
      local pending = ARGV[7] .. client
      redis.call('RPUSH', pending, f.id)
      redis.call('EXPIRE', pending, ARGV[8])
    end
  end
end

-- The task JSON as the TS side will read it: an object with a string id, and its enqueue time.
local function decodable(f)
  if type(f.t) ~= 'string' or tonumber(f.at) == nil then return false end
  local ok, task = pcall(cjson.decode, f.t)
  return ok and type(task) == 'table' and type(task.id) == 'string'
end
local UNDECODABLE = 'the stored task cannot be decoded'

for i = 12, #ARGV do
  local id = ARGV[i]
  local p = redis.call('XPENDING', stream, group, id, id, 1)
  if #p == 1 and p[1][2] == consumer then
    local found = redis.call('XRANGE', stream, id, id)
    if #found == 1 then
      local f = fields(found[1][2])
      deadLetter(id, f, tonumber(f.b or '0') + tonumber(p[1][4]), UNDECODABLE)
    else
      redis.call('XACK', stream, group, id)
    end
  end
end
if max <= 0 then return { -1 } end

for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, max)) do
  local d = cjson.decode(member)
  redis.call('XADD', stream, '*', 'id', d.id, 't', d.t, 'at', d.at, 'b', d.b, 'r', d.r)
  redis.call('ZREM', KEYS[3], member)
end

local out = { -1 }
for _, p in ipairs(redis.call('XPENDING', stream, group, 'IDLE', lease, '-', '+', max)) do
  local id, count = p[1], tonumber(p[4])
  local found = redis.call('XRANGE', stream, id, id)
  if #found == 0 then
    redis.call('XACK', stream, group, id)
  else
    local f = fields(found[1][2])
    local deliveries = tonumber(f.b or '0') + count
    if not decodable(f) then
      deadLetter(id, f, deliveries, UNDECODABLE)
    elseif deliveries >= maxDeliveries then
      deadLetter(id, f, deliveries, 'gave up after ' .. deliveries .. ' deliveries: each consumer lost its lease (crashed or hung)')
    elseif #redis.call('XCLAIM', stream, group, consumer, lease, id) == 1 then
      local n = #out
      out[n + 1], out[n + 2], out[n + 3] = id, f.t, f.at
      out[n + 4], out[n + 5], out[n + 6] = deliveries + 1, f.r or '0', count + 1
    end
  end
end

local want = max - (#out - 1) / 6
if want > 0 then
  local read = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', want, 'STREAMS', stream, '>')
  if read then
    for _, entry in ipairs(read[1][2]) do
      local f = fields(entry[2])
      -- Its JSON is the caller's to decode (see the header); the rest is checked here.
      if type(f.t) == 'string' and tonumber(f.at) ~= nil then
        local n = #out
        out[n + 1], out[n + 2], out[n + 3] = entry[1], f.t, f.at
        out[n + 4], out[n + 5], out[n + 6] = tonumber(f.b or '0') + 1, f.r or '0', 1
      else
        deadLetter(entry[1], f, tonumber(f.b or '0') + 1, UNDECODABLE)
      end
    end
  end
end

local next = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
if #next == 2 then out[1] = math.max(0, tonumber(next[2]) - now) end
return out
