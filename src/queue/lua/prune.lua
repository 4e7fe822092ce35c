--[[
prune: forgets the consumers of the op's group that hold nothing and have been idle for long.
Every service process claims under its own consumer name (op-host-pid), so without this the
group would keep one consumer per process that ever ran. Only consumers with no pending entries
are deleted (XGROUP DELCONSUMER drops a consumer's pending entries with it); a dead consumer's
entries are first reclaimed by a live one once their lease is over (claim.lua), and then it goes.
A consumer that was only paused is created again by its next read: nothing it holds is lost.

KEYS[1]  the op's stream
ARGV[1]  consumer group        ARGV[2]  idle, ms, after which an empty consumer goes
ARGV[3]  the caller's own consumer, never deleted

Returns: the number of consumers deleted.
]]
local stream, group, idle, own = KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3]
local deleted = 0
local consumers = redis.pcall('XINFO', 'CONSUMERS', stream, group)
-- No stream or no group (Redis lost its data): nothing to prune; the claim recreates the group.
if type(consumers) ~= 'table' or consumers.err then return 0 end
for _, flat in ipairs(consumers) do
  local c = {}
  for i = 1, #flat, 2 do c[flat[i]] = flat[i + 1] end
  if c.pending == 0 and c.idle > idle and c.name ~= own then
    redis.call('XGROUP', 'DELCONSUMER', stream, group, c.name)
    deleted = deleted + 1
  end
end
return deleted
