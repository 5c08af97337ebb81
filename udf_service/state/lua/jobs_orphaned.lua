-- Ids of unfinished, live jobs whose lease expired, oldest lease first, at most ARGV[2].
-- KEYS[1]: the lease index; ARGV[1]: the job key prefix. Drops index entries of dead jobs.
local t = redis.call('TIME')
local now = string.format('%.6f', tonumber(t[1]) + tonumber(t[2]) / 1000000)
local limit = tonumber(ARGV[2])
local found = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  local key = ARGV[1] .. id
  if redis.call('EXISTS', key) == 0 or redis.call('HEXISTS', key, 'result') == 1 then
    redis.call('ZREM', KEYS[1], id)
  elseif #found < limit then
    found[#found + 1] = id
  else
    break
  end
end
return found
