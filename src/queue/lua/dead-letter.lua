--[[
dead-letter: an operator's action on one dead letter of an operation, found by its ticket id
(a scan of the dead-letter stream, oldest first: operator actions are rare, the stream is capped).
  find    returns the entry
  replay  moves its task back into the op's stream as a new entry (first delivery again)
  purge   deletes it
Replay and purge are atomic: two operators acting at once move or delete a dead letter once.
The ticket is not touched here (it lives under another key): replaying resets it first.

KEYS[1]  the op's dead-letter stream
KEYS[2]  the op's stream
ARGV[1]  'find' | 'replay' | 'purge'
ARGV[2]  ticket id

Returns: find: { entry id, flat fields } or {}; replay and purge: 1 when done, 0 when not found.
]]
local dead, action, wanted = KEYS[1], ARGV[1], ARGV[2]
local start = '-'
while true do
  local batch = redis.call('XRANGE', dead, start, '+', 'COUNT', 500)
  if #batch == 0 then break end
  for _, entry in ipairs(batch) do
    local flat = entry[2]
    local f = {}
    for i = 1, #flat, 2 do f[flat[i]] = flat[i + 1] end
    if f.id == wanted then
      if action == 'find' then return { entry[1], flat } end
      if action == 'replay' then
        redis.call('XADD', KEYS[2], '*', 'id', f.id, 't', f.t, 'at', f.at)
      end
      redis.call('XDEL', dead, entry[1])
      return 1
    end
  end
  start = '(' .. batch[#batch][1]
end
if action == 'find' then return {} end
return 0
