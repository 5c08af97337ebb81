-- Redis expires keys by itself; this drops what the indexes still say about dead entries.
-- KEYS[1]: the cache index, KEYS[2]: the job lease index. ARGV[1]: the job key prefix.
local t = redis.call('TIME')
local now = string.format('%.6f', tonumber(t[1]) + tonumber(t[2]) / 1000000)
local dropped = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local key = ARGV[1] .. id
  if redis.call('EXISTS', key) == 0 or redis.call('HEXISTS', key, 'result') == 1 then
    redis.call('ZREM', KEYS[2], id)
    dropped = dropped + 1
  end
end
return dropped
