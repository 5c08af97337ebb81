-- Hand back the items of takes whose answer the caller never received (a timeout after the
-- script ran). KEYS: items, rounds, prio, ready, leased, owners, then the takes' records.
-- ARGV: owner, lease_s. Items still leased to the owner get a fresh lease and are returned
-- (flat: key, payload, round, ...); the records are deleted.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local deadline = string.format('%.6f', now + tonumber(ARGV[2]))
local back = {}
for r = 7, #KEYS do
  for _, key in ipairs(redis.call('LRANGE', KEYS[r], 0, -1)) do
    local lease = redis.call('ZSCORE', KEYS[5], key)
    if lease and tonumber(lease) > now and redis.call('HGET', KEYS[6], key) == ARGV[1] then
      redis.call('ZADD', KEYS[5], deadline, key)
      back[#back + 1] = key
      back[#back + 1] = redis.call('HGET', KEYS[1], key)
      back[#back + 1] = redis.call('HGET', KEYS[2], key)
    end
  end
  redis.call('DEL', KEYS[r])
end
return back
