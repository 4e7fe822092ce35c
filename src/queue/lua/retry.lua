--[[
retry: gives a delivery back, to be claimed again no sooner than a delay from now, without it
counting as a lost delivery. The entry leaves the stream and waits in the delayed zset; its
`b` remembers the deliveries so far minus this one. Nothing happens when the delivery is no
longer this consumer's (its lease expired and another consumer took the entry).

KEYS[1]  the op's stream
KEYS[2]  the op's delayed zset
ARGV[1]  consumer group   ARGV[2]  entry id   ARGV[3]  consumer
ARGV[4]  the group's delivery counter at this delivery   ARGV[5]  delay, ms

Returns: 1 when given back, 0 when the delivery was not this consumer's any more.
]]
local stream, entry = KEYS[1], ARGV[2]
local p = redis.call('XPENDING', stream, ARGV[1], entry, entry, 1)
if #p == 0 or p[1][2] ~= ARGV[3] or tonumber(p[1][4]) ~= tonumber(ARGV[4]) then
  return 0
end
local found = redis.call('XRANGE', stream, entry, entry)
if #found == 0 then return 0 end
local f = {}
local flat = found[1][2]
for i = 1, #flat, 2 do f[flat[i]] = flat[i + 1] end
local member = cjson.encode({
  id = f.id, t = f.t, at = f.at,
  b = tostring(tonumber(f.b or '0') + tonumber(ARGV[4]) - 1),
  r = tostring(tonumber(f.r or '0') + 1),
})
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('XACK', stream, ARGV[1], entry)
redis.call('XDEL', stream, entry)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), member)
return 1
