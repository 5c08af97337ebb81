-- Queue leads unless queued; then, optionally, lease ready items to the pusher (as fetch_take
-- does without keys), so a worker queues a batch's misses and claims its share in one write.
-- KEYS: 1 items (hash key -> payload), 2 rounds (hash key -> round), 3 prio (hash key ->
--       priority), 4 ready (zset key -> priority * 1e13 + round), 5 counter (the last round
--       given out), 6 leased, 7 owners, 8 the take's record (a list, see fetch_reclaim).
-- ARGV: 1 priority, 2 take limit (0: take nothing), 3 lease_s, 4 record_s, 5 owner, then
--       key1, payload1, key2, payload2, ...
-- A queued key keeps its payload and round; a more urgent (lower) priority replaces its own.
-- Returns {each key's round in ARGV order, the items taken flat: key, payload, round, ...}.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local priority = tonumber(ARGV[1])
local rounds = {}
for i = 6, #ARGV, 2 do
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
local limit = tonumber(ARGV[2])
local taken = {}
if limit <= 0 then
  return {rounds, taken}
end
-- the take, as fetch_take.lua without keys: expired leases back to ready, then most urgent first
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', string.format('%.6f', now))) do
  redis.call('ZREM', KEYS[6], key)
  redis.call('HDEL', KEYS[7], key)
  local round = redis.call('HGET', KEYS[2], key)
  if round then
    redis.call('ZADD', KEYS[4], tonumber(redis.call('HGET', KEYS[3], key)) * 1e13 + tonumber(round), key)
  end
end
local deadline = string.format('%.6f', now + tonumber(ARGV[3]))
for _, key in ipairs(redis.call('ZRANGE', KEYS[4], 0, limit - 1)) do
  redis.call('ZREM', KEYS[4], key)
  redis.call('ZADD', KEYS[6], deadline, key)
  redis.call('HSET', KEYS[7], key, ARGV[5])
  redis.call('RPUSH', KEYS[8], key)
  taken[#taken + 1] = key
  taken[#taken + 1] = redis.call('HGET', KEYS[1], key)
  taken[#taken + 1] = redis.call('HGET', KEYS[2], key)
end
if #taken > 0 then  -- kept a while, so a caller who never got this answer can claim the items
  redis.call('PEXPIRE', KEYS[8], math.max(1, math.floor(tonumber(ARGV[4]) * 1000)))
end
return {rounds, taken}
