-- Lease ready items. KEYS: items, rounds, prio, ready, leased (zset key -> lease deadline),
-- owners (hash key -> owner), this take's record (a list, see fetch_reclaim). ARGV: limit,
-- lease_s, record_s, owner, then optionally the only keys to take.
-- Expired leases go back to ready first. Returns a flat list: key, payload, round, ...
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', string.format('%.6f', now))) do
  redis.call('ZREM', KEYS[5], key)
  redis.call('HDEL', KEYS[6], key)
  local round = redis.call('HGET', KEYS[2], key)
  if round then
    redis.call('ZADD', KEYS[4], tonumber(redis.call('HGET', KEYS[3], key)) * 1e13 + tonumber(round), key)
  end
end
local limit = tonumber(ARGV[1])
local wanted
if #ARGV > 4 then
  wanted = {}
  for i = 5, #ARGV do
    if #wanted < limit and redis.call('ZSCORE', KEYS[4], ARGV[i]) then
      wanted[#wanted + 1] = ARGV[i]
    end
  end
else
  wanted = redis.call('ZRANGE', KEYS[4], 0, limit - 1)
end
local deadline = string.format('%.6f', now + tonumber(ARGV[2]))
local taken = {}
for _, key in ipairs(wanted) do
  redis.call('ZREM', KEYS[4], key)
  redis.call('ZADD', KEYS[5], deadline, key)
  redis.call('HSET', KEYS[6], key, ARGV[4])
  redis.call('RPUSH', KEYS[7], key)
  taken[#taken + 1] = key
  taken[#taken + 1] = redis.call('HGET', KEYS[1], key)
  taken[#taken + 1] = redis.call('HGET', KEYS[2], key)
end
if #taken > 0 then  -- kept a while, so a caller who never got this answer can claim the items
  redis.call('PEXPIRE', KEYS[7], math.max(1, math.floor(tonumber(ARGV[3]) * 1000)))
end
return taken
