-- Give leased items back, ready at once. KEYS: rounds, prio, ready, leased, owners.
-- ARGV: owner, key1, key2, ... (keys the owner does not hold are left alone)
for i = 2, #ARGV do
  local key = ARGV[i]
  if redis.call('HGET', KEYS[5], key) == ARGV[1] and redis.call('ZSCORE', KEYS[4], key) then
    redis.call('ZREM', KEYS[4], key)
    redis.call('HDEL', KEYS[5], key)
    local round = redis.call('HGET', KEYS[1], key)
    if round then
      redis.call('ZADD', KEYS[3], tonumber(redis.call('HGET', KEYS[2], key)) * 1e13 + tonumber(round), key)
    end
  end
end
return 0
