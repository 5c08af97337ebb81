-- How many cache entries are fresh. KEYS[1]: the cache index (zset: key -> expiry).
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.6f', now))
return redis.call('ZCARD', KEYS[1])
