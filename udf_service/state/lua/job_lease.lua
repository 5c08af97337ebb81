-- Take or renew the lease on an unfinished job. KEYS[1]: the job hash, KEYS[2]: the lease
-- index (zset: job id -> lease_until). ARGV: job id, owner, lease_s. 1 when leased, else 0.
local job = redis.call('HMGET', KEYS[1], 'owner', 'lease_until', 'payload')
if not job[3] or redis.call('HEXISTS', KEYS[1], 'result') == 1 then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
if job[1] ~= ARGV[2] and tonumber(job[2]) > now then
  return 0
end
local lease_until = string.format('%.6f', now + tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'lease_until', lease_until)
redis.call('ZADD', KEYS[2], lease_until, ARGV[1])
return 1
