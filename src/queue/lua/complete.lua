--[[
complete: records the outcomes of a batch of deliveries and removes their stream entries, in
one atomic step. Only a ticket still `queued` takes the outcome, so a duplicate delivery (a
lease lost and reclaimed) never overwrites the first answer; its entry is removed either way.

KEYS[1]  the op's stream
KEYS[2]  the webhook stream of the op's tag (a ticket with a `callback` is delivered there, not to its client's
         pending list: webhooks are its delivery channel)
ARGV[1]  consumer group
ARGV[2]  ticket key prefix   (calcmesh:ticket:)
ARGV[3]  pending list prefix (calcmesh:pending:)
ARGV[4]  result TTL, seconds
ARGV[5]  completedAt, ms since the epoch
ARGV[6…] six per completion: entry id, ticket id, 'done'|'failed', result, error code, error message

Returns: how many tickets took their outcome now (duplicates excluded).
]]
local completed = 0
local entries = {}
for i = 6, #ARGV, 6 do
  local entry, id = ARGV[i], ARGV[i + 1]
  local key = ARGV[2] .. id
  if redis.call('HGET', key, 'status') == 'queued' then
    if ARGV[i + 2] == 'done' then
      redis.call('HSET', key, 'status', 'done', 'result', ARGV[i + 3], 'completedAt', ARGV[5])
    else
      redis.call('HSET', key, 'status', 'failed', 'errorCode', ARGV[i + 4], 'errorMessage', ARGV[i + 5],
        'completedAt', ARGV[5])
    end
    redis.call('EXPIRE', key, ARGV[4])
    local client = redis.call('HGET', key, 'client')
    local callback = redis.call('HGET', key, 'callback')
    if callback then
      -- Webhooks (#15): one gateway of the group POSTs it (webhook-claim.lua).
      redis.call('XADD', KEYS[2], '*', 'ticket', id, 'client', client, 'url', callback)
    else
      local pending = ARGV[3] .. client
      redis.call('RPUSH', pending, id)
      redis.call('EXPIRE', pending, ARGV[4])
    end
    completed = completed + 1
  end
  entries[#entries + 1] = entry
end
if #entries > 0 then
  redis.call('XACK', KEYS[1], ARGV[1], unpack(entries))
  redis.call('XDEL', KEYS[1], unpack(entries))
end
return completed
