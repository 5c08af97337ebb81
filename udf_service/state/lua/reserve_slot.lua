-- GCRA with a burst of one, counted. KEYS: 1 the limiter's tat (server-clock seconds, as text),
-- 2 the epoch, 3 the cap counter (or a placeholder), then the counters to add 1 to.
-- ARGV: interval_s, max_wait_s, epoch candidate, cap limit ('' none), then each counter's ttl_ms.
-- Returns {wait (text) or false, epoch, capped 0|1}: false when the wait exceeds max_wait_s
-- (nothing changes); capped when the cap counter is at its limit (nothing changes).
redis.call('SET', KEYS[2], ARGV[3], 'NX')
local epoch = redis.call('GET', KEYS[2])
if ARGV[4] ~= '' and (tonumber(redis.call('GET', KEYS[3])) or 0) >= tonumber(ARGV[4]) then
  return {false, epoch, 1}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local start = math.max(tonumber(redis.call('GET', KEYS[1])) or now, now)
if start - now > tonumber(ARGV[2]) then
  return {false, epoch, 0}
end
local tat = start + tonumber(ARGV[1])
local ttl_ms = math.max(1, math.ceil((tat - now) * 1000))
redis.call('SET', KEYS[1], string.format('%.6f', tat), 'PX', ttl_ms)
for i = 4, #KEYS do
  local existed = redis.call('EXISTS', KEYS[i])
  redis.call('INCR', KEYS[i])
  local ttl = ARGV[i + 1]
  if existed == 0 and ttl ~= nil and ttl ~= '' then
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
end
return {string.format('%.6f', start - now), epoch, 0}
