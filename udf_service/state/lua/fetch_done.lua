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
--! include _take
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
if limit <= 0 then
  return {}
end
local q = {items = KEYS[2], rounds = KEYS[3], prio = KEYS[4], ready = KEYS[5], leased = KEYS[6],
           owners = KEYS[7], record = KEYS[8]}
return take_ready(q, now, limit, tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], nil)
