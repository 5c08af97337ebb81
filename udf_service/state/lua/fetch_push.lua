-- Queue leads unless queued; then, optionally, lease ready items to the pusher (as fetch_take
-- does without keys), so a worker queues a batch's misses and claims its share in one write.
-- KEYS: 1 items (hash key -> payload), 2 rounds (hash key -> round), 3 prio (hash key ->
--       priority), 4 ready (zset key -> priority * 1e13 + round), 5 counter (the last round
--       given out), 6 leased, 7 owners, 8 the take's record (a list, see fetch_reclaim).
-- ARGV: 1 priority, 2 take limit (0: take nothing), 3 lease_s, 4 record_s, 5 owner, then
--       key1, payload1, key2, payload2, ...
-- A queued key keeps its payload and round; a more urgent (lower) priority replaces its own.
-- Returns {each key's round in ARGV order, the items taken flat: key, payload, round, ...}.
--! include _take
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
if limit <= 0 then
  return {rounds, {}}
end
local q = {items = KEYS[1], rounds = KEYS[2], prio = KEYS[3], ready = KEYS[4], leased = KEYS[6],
           owners = KEYS[7], record = KEYS[8]}
return {rounds, take_ready(q, now, limit, tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], nil)}
