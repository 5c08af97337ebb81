-- Queued items by priority: a flat list priority, count, ... KEYS: prio, ready, leased.
-- ARGV: the priorities to count. Ready items are counted by score range; leased ones (few:
-- those in flight) by their priority.
local out = {}
for i = 1, #ARGV do
  local p = tonumber(ARGV[i])
  local count = redis.call('ZCOUNT', KEYS[2], p * 1e13, '(' .. ((p + 1) * 1e13))
  out[p] = count
end
for _, key in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  local p = tonumber(redis.call('HGET', KEYS[1], key))
  if p and out[p] then
    out[p] = out[p] + 1
  end
end
local flat = {}
for i = 1, #ARGV do
  local p = tonumber(ARGV[i])
  flat[#flat + 1] = p
  flat[#flat + 1] = out[p]
end
return flat
