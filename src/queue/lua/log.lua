--[[
log: moves a client's completed, never-taken tickets into its delivery log (the event stream's
source), in one atomic step: an id popped here is never also handed out by take.lua, and
whatever moves is in the log before anyone can read it. The log's entry ids are its cursors
(growing, assigned by Redis); entries older than the result TTL, or beyond the cap, are trimmed.
Only ids move: the tickets are read afterwards by the caller (a completed ticket never changes).

KEYS[1]  the client's pending list   (calcmesh:pending:<client>; tagged, that of one tag)
KEYS[2]  the client's delivery log   (calcmesh:log:<client>, a stream; tagged, beside KEYS[1])
ARGV[1]  limit
ARGV[2]  result TTL, seconds
ARGV[3]  log entries kept at most (approximate trim)

Returns: how many ids moved.
]]
local ids = redis.call('LPOP', KEYS[1], tonumber(ARGV[1]))
if not ids then return 0 end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local oldest = now - tonumber(ARGV[2]) * 1000
for _, id in ipairs(ids) do
  redis.call('XADD', KEYS[2], 'MINID', '~', oldest, '*', 'ticket', id)
end
redis.call('XTRIM', KEYS[2], 'MAXLEN', '~', ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return #ids
