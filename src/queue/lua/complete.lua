--[[
complete: records the outcomes of a batch of deliveries and removes their stream entries, in
one atomic step. Only a ticket still `queued` takes the outcome, so a duplicate delivery (a
lease lost and reclaimed) never overwrites the first answer; its entry is removed either way.
Per task three commands (HMGET, HSET, EXPIRE); per batch one XACK and one XDEL of all entries,
and one RPUSH and one EXPIRE per client's pending list (its ids in the batch's order).

KEYS[1]  the op's stream
KEYS[2]  the webhook stream of the op's tag (a ticket with a `callback` is delivered there, not to its client's
         pending list: webhooks are its delivery channel)
ARGV[1]  consumer group
ARGV[2]  ticket key prefix   (calcmesh:ticket:)
ARGV[3]  pending list prefix (calcmesh:pending:)
ARGV[4]  result TTL, seconds
ARGV[5]  completedAt, ms since the epoch
ARGV[6…] per completion: entry id, ticket id, then 'done', result (four in all) or 'failed', error code,
         error message (five): a done outcome, the common one, sends no empty fields

Returns: how many tickets took their outcome now (duplicates excluded).
]]
local prefix, ttl, completedAt = ARGV[2], ARGV[4], ARGV[5]
local completed = 0
local entries = {}
local pendingIds, pendingKeys = {}, {}
local i = 6
while i <= #ARGV do
  local id, done = ARGV[i + 1], ARGV[i + 2] == 'done'
  local key = prefix .. id
  local h = redis.call('HMGET', key, 'status', 'client', 'callback')
  if h[1] == 'queued' then
    if done then
      redis.call('HSET', key, 'status', 'done', 'result', ARGV[i + 3], 'completedAt', completedAt)
    else
      redis.call('HSET', key, 'status', 'failed', 'errorCode', ARGV[i + 3], 'errorMessage', ARGV[i + 4],
        'completedAt', completedAt)
    end
    redis.call('EXPIRE', key, ttl)
    if h[3] then
      -- Webhooks (#15): one gateway of the group POSTs it (webhook-claim.lua).
      redis.call('XADD', KEYS[2], '*', 'ticket', id, 'client', h[2], 'url', h[3])
    else
      local pending = ARGV[3] .. h[2]
      local ids = pendingIds[pending]
      if not ids then
        ids = {}
        pendingIds[pending] = ids
        pendingKeys[#pendingKeys + 1] = pending
      end
      ids[#ids + 1] = id
    end
    completed = completed + 1
  end
  entries[#entries + 1] = ARGV[i]
  i = i + (done and 4 or 5)
end
for _, pending in ipairs(pendingKeys) do
  redis.call('RPUSH', pending, unpack(pendingIds[pending]))
  redis.call('EXPIRE', pending, ttl)
end
if #entries > 0 then
  redis.call('XACK', KEYS[1], ARGV[1], unpack(entries))
  redis.call('XDEL', KEYS[1], unpack(entries))
end
return completed
