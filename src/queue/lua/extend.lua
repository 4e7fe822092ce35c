--[[
extend: a heartbeat. Resets the idle time of deliveries this consumer still holds, so that no
other consumer reclaims them while they are being worked on. Per entry and only for the exact
delivery named (same consumer, same delivery counter): an entry reclaimed by another consumer
meanwhile is left alone. XCLAIM … JUSTID resets the idle time without counting a delivery.

KEYS[1]  the op's stream
ARGV[1]  consumer group   ARGV[2]  consumer
ARGV[3…] two per delivery: entry id, the group's delivery counter at that delivery

Returns: how many deliveries were extended.
]]
local stream, group, consumer = KEYS[1], ARGV[1], ARGV[2]
local extended = 0
for i = 3, #ARGV, 2 do
  local entry = ARGV[i]
  local p = redis.call('XPENDING', stream, group, entry, entry, 1)
  if #p == 1 and p[1][2] == consumer and tonumber(p[1][4]) == tonumber(ARGV[i + 1]) then
    redis.call('XCLAIM', stream, group, consumer, 0, entry, 'JUSTID')
    extended = extended + 1
  end
end
return extended
