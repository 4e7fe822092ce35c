--[[
stats: one operation's backlog, read in one step so that the numbers agree with each other.

KEYS[1]  the op's stream
KEYS[2]  the op's dead-letter stream
KEYS[3]  the op's delayed zset
KEYS[4]  the op's last-claim string
ARGV[1]  consumer group

Returns: { depth (stream + delayed), in flight (the group's pending entries),
           enqueuedAt of the oldest task that is easy to find ('' when empty), dead letters,
           the last claim's time ('' when none) }
The oldest is the older of the stream's first entry and the delayed task due first: exact for
a backlog in arrival order, an approximation when retried tasks are mixed in.
]]
local depth = redis.call('XLEN', KEYS[1]) + redis.call('ZCARD', KEYS[3])
local inFlight = 0
local summary = redis.pcall('XPENDING', KEYS[1], ARGV[1])
if type(summary) == 'table' and not summary.err then inFlight = summary[1] end

local oldest = nil
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #first == 1 then
  local flat = first[1][2]
  for i = 1, #flat, 2 do
    if flat[i] == 'at' then oldest = tonumber(flat[i + 1]) end
  end
end
local due = redis.call('ZRANGE', KEYS[3], 0, 0)
if #due == 1 then
  local at = tonumber(cjson.decode(due[1]).at)
  if oldest == nil or at < oldest then oldest = at end
end
return { depth, inFlight, oldest and tostring(oldest) or '', redis.call('XLEN', KEYS[2]),
  redis.call('GET', KEYS[4]) or '' }
