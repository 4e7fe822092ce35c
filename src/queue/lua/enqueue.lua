--[[
enqueue: stores a new task and its queued ticket in one atomic step. A second enqueue of the
same ticket id (a retried request) adds nothing, so a task is never stored twice.

KEYS[1]  ticket hash      calcmesh:ticket:{id}
KEYS[2]  the op's stream  calcmesh:stream:{op}
ARGV[1]  ticket id
ARGV[2]  task JSON (NewTask)
ARGV[3]  enqueuedAt, ms since the epoch
ARGV[4…] ticket hash fields: name, value, name, value…

Returns: an empty array when stored now, else the stored ticket (HGETALL, flat).
The queued ticket gets no expiry: it lives as long as its task (complete sets the TTL).
]]
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HGETALL', KEYS[1])
end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('XADD', KEYS[2], '*', 'id', ARGV[1], 't', ARGV[2], 'at', ARGV[3])
return {}
