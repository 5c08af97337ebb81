-- KEYS: items (hash key -> payload), seqs (hash key -> order), ready (zset by order), counter.
-- ARGV: key1, payload1, key2, payload2, ... Adds keys not queued yet; returns how many.
local added = 0
for i = 1, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then
    local seq = redis.call('INCR', KEYS[4])
    redis.call('HSET', KEYS[2], ARGV[i], seq)
    redis.call('ZADD', KEYS[3], seq, ARGV[i])
    added = added + 1
  end
end
return added
