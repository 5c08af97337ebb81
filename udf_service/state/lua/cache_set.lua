-- KEYS[1]: the cache index (zset: key -> expiry), KEYS[2..]: cache keys.
-- ARGV[1]: ttl in ms, ARGV[2..]: the values, in KEYS order. The index lets cache_count be exact.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local expires = string.format('%.6f', now + tonumber(ARGV[1]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.6f', now))
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], ARGV[i], 'PX', ARGV[1])
  redis.call('ZADD', KEYS[1], expires, KEYS[i])
end
return 0
