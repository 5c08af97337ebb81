-- KEYS: items, seqs, ready (zset by order), leased (zset by lease deadline).
-- ARGV: limit, lease_s. Returns expired leases to ready, then leases up to limit of the oldest:
-- a flat list key1, payload1, key2, payload2, ...
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', string.format('%.6f', now))) do
  redis.call('ZREM', KEYS[4], key)
  local seq = redis.call('HGET', KEYS[2], key)
  if seq then
    redis.call('ZADD', KEYS[3], seq, key)
  end
end
local deadline = string.format('%.6f', now + tonumber(ARGV[2]))
local taken = {}
for _, key in ipairs(redis.call('ZRANGE', KEYS[3], 0, tonumber(ARGV[1]) - 1)) do
  redis.call('ZREM', KEYS[3], key)
  redis.call('ZADD', KEYS[4], deadline, key)
  taken[#taken + 1] = key
  taken[#taken + 1] = redis.call('HGET', KEYS[1], key)
end
return taken
