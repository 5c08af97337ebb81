-- Store finished fetches and drop their items, atomically; then, optionally, lease the next
-- ready items to the writer (as fetch_take does), so finishing and refilling are one write.
-- KEYS: 1 cache index, 2 items, 3 rounds, 4 prio, 5 ready, 6 leased, 7 owners, 8 the take's
--       record (a list, see fetch_reclaim), then for each finished item its value key and its
--       lead key (cache entries), its outcome key, or one placeholder (nothing to store); then
--       the counter keys.
-- ARGV: 1 n (finished items), 2 take limit (0: take nothing), 3 lease_s, 4 record_s, 5 owner,
--       then per item: key, kind (1 cache, 0 outcome, - nothing to store), ttl_ms, round, value,
--       lead ('' none); then per counter: amount, ttl_ms ('' none).
-- An item is removed only while it is still the round that was fetched: a key queued again
-- since (a new round) stays queued for its own requesters.
-- Returns the items taken as a flat list: key, payload, round, ...
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local n = tonumber(ARGV[1])
local k = 9
for i = 0, n - 1 do
  local a = 6 + i * 6
  local key, ttl = ARGV[a], ARGV[a + 2]
  if ARGV[a + 1] == '-' then
    k = k + 1
  elseif ARGV[a + 1] == '1' then
    redis.call('SET', KEYS[k], ARGV[a + 4], 'PX', ttl)
    redis.call('ZADD', KEYS[1], string.format('%.6f', now + tonumber(ttl) / 1000), KEYS[k])
    if ARGV[a + 5] ~= '' then
      redis.call('SET', KEYS[k + 1], ARGV[a + 5], 'PX', ttl)
    else
      redis.call('DEL', KEYS[k + 1])
    end
    k = k + 2
  else
    redis.call('SET', KEYS[k], ARGV[a + 3] .. '\n' .. ARGV[a + 4], 'PX', ttl)
    k = k + 1
  end
  if redis.call('HGET', KEYS[3], key) == ARGV[a + 3] then
    redis.call('HDEL', KEYS[2], key)
    redis.call('HDEL', KEYS[3], key)
    redis.call('HDEL', KEYS[4], key)
    redis.call('ZREM', KEYS[5], key)
    redis.call('ZREM', KEYS[6], key)
    redis.call('HDEL', KEYS[7], key)
  end
end
local c = 6 + n * 6
while k <= #KEYS do
  local existed = redis.call('EXISTS', KEYS[k])
  redis.call('INCRBY', KEYS[k], ARGV[c])
  if existed == 0 and ARGV[c + 1] ~= '' then
    redis.call('PEXPIRE', KEYS[k], ARGV[c + 1])
  end
  k = k + 1
  c = c + 2
end
local limit = tonumber(ARGV[2])
local taken = {}
if limit <= 0 then
  return taken
end
-- the take, as fetch_take.lua without keys: expired leases back to ready, then most urgent first
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', string.format('%.6f', now))) do
  redis.call('ZREM', KEYS[6], key)
  redis.call('HDEL', KEYS[7], key)
  local round = redis.call('HGET', KEYS[3], key)
  if round then
    redis.call('ZADD', KEYS[5], tonumber(redis.call('HGET', KEYS[4], key)) * 1e13 + tonumber(round), key)
  end
end
local deadline = string.format('%.6f', now + tonumber(ARGV[3]))
for _, key in ipairs(redis.call('ZRANGE', KEYS[5], 0, limit - 1)) do
  redis.call('ZREM', KEYS[5], key)
  redis.call('ZADD', KEYS[6], deadline, key)
  redis.call('HSET', KEYS[7], key, ARGV[5])
  redis.call('RPUSH', KEYS[8], key)
  taken[#taken + 1] = key
  taken[#taken + 1] = redis.call('HGET', KEYS[2], key)
  taken[#taken + 1] = redis.call('HGET', KEYS[3], key)
end
if #taken > 0 then  -- kept a while, so a caller who never got this answer can claim the items
  redis.call('PEXPIRE', KEYS[8], math.max(1, math.floor(tonumber(ARGV[4]) * 1000)))
end
return taken
