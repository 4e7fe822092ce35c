--[[
history: adds a ticket to its client's history index (GET /v1/results) and forgets the entries
older than the result TTL, in one command. Members are "<13-digit createdAt>:<ticket id>" under
one score, so lexical order is (time, id) order and a cursor is a member.

KEYS[1]  the client's history zset   (calcmesh:history:<client>)
ARGV[1]  the member                  ARGV[2]  members below this are forgotten ("<13-digit ms>")
ARGV[3]  result TTL, seconds

Returns: 1.
]]
redis.call('ZADD', KEYS[1], 0, ARGV[1])
redis.call('ZREMRANGEBYLEX', KEYS[1], '-', '(' .. ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
