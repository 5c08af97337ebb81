-- Store the result of an unfinished job whose lease the owner holds, or nobody holds any more.
-- KEYS[1]: the job hash, KEYS[2]: the lease index. ARGV: job id, owner, result, payload ('' keep).
-- A finished job keeps its first result: a later finish returns 0 and changes nothing.
local job = redis.call('HMGET', KEYS[1], 'owner', 'lease_until', 'payload')
if not job[3] or redis.call('HEXISTS', KEYS[1], 'result') == 1 then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
if job[1] ~= ARGV[2] and tonumber(job[2]) > now then
  return 0
end
redis.call('HSET', KEYS[1], 'result', ARGV[3])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'payload', ARGV[4])
end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
