--[[
takeover: moves an Idempotency-Key to a new holder only if it still holds the one the caller
saw (compare-and-set), keeping its expiry. Of many retries taking a dead holder over, one wins.

KEYS[1]  the key's string   calcmesh:idem:{client}:{key}
ARGV[1]  the holder the caller saw   ARGV[2]  the new holder

Returns: 1 when moved, 0 when the key holds something else now (or expired).
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1
