-- KEYS[1]: the job hash, KEYS[2]: the lease index (zset: job id -> lease_until).
-- ARGV: job id, payload, owner, lease_s, ttl_ms. 1 when created, 0 when the job exists.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local lease_until = string.format('%.6f', now + tonumber(ARGV[4]))
redis.call('HSET', KEYS[1], 'payload', ARGV[2], 'owner', ARGV[3],
  'lease_until', lease_until, 'created_at', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], lease_until, ARGV[1])
return 1
