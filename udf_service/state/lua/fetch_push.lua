-- Queue leads unless queued; return each key's round, in ARGV order.
-- KEYS: items (hash key -> payload), rounds (hash key -> round), prio (hash key -> priority),
--       ready (zset key -> priority * 1e13 + round), counter (the last round given out).
-- ARGV: priority, key1, payload1, key2, payload2, ...
-- A queued key keeps its payload and round; a more urgent (lower) priority replaces its own.
local priority = tonumber(ARGV[1])
local rounds = {}
for i = 2, #ARGV, 2 do
  local key = ARGV[i]
  local round = redis.call('HGET', KEYS[2], key)
  if round then
    local old = tonumber(redis.call('HGET', KEYS[3], key))
    if old and priority < old then
      redis.call('HSET', KEYS[3], key, priority)
      if redis.call('ZSCORE', KEYS[4], key) then
        redis.call('ZADD', KEYS[4], priority * 1e13 + tonumber(round), key)
      end
    end
  else
    round = redis.call('INCR', KEYS[5])
    redis.call('HSET', KEYS[1], key, ARGV[i + 1])
    redis.call('HSET', KEYS[2], key, round)
    redis.call('HSET', KEYS[3], key, priority)
    redis.call('ZADD', KEYS[4], priority * 1e13 + round, key)
  end
  rounds[#rounds + 1] = tonumber(round)
end
return rounds
