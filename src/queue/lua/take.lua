--[[
take: hands a client its completed, never-taken tickets, oldest completion first. Popping and
reading happen in one atomic step, so two concurrent callers never get the same ticket.
Ids whose ticket has expired meanwhile are dropped.

KEYS[1]  the client's pending list (calcmesh:pending:{client})
ARGV[1]  limit
ARGV[2]  ticket key prefix (calcmesh:ticket:)

Returns: up to `limit` tickets, each as its HGETALL (flat field, value list).
]]
local limit = tonumber(ARGV[1])
local out = {}
while #out < limit do
  local id = redis.call('LPOP', KEYS[1])
  if not id then break end
  local ticket = redis.call('HGETALL', ARGV[2] .. id)
  if #ticket > 0 then out[#out + 1] = ticket end
end
return out
