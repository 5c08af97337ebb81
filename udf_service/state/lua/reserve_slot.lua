-- GCRA with a burst of one, counted. KEYS: 1 the limiter's tat (server-clock seconds, as text),
-- 2 the epoch, 3 the cap counter (or a placeholder), then the n counters to add 1 to, then, for
-- the check before the call, the lead's cache entry, the queue's leased and owners, and flags.
-- ARGV: interval_s, max_wait_s, epoch candidate, cap limit ('' none), n, each counter's ttl_ms,
-- then, for the check, the lead's key and the owner.
-- Returns {wait (text) or false, epoch, capped 0|1}: false when the wait exceeds max_wait_s
-- (nothing changes); capped when the cap counter is at its limit (nothing changes). With the
-- check and a slot reserved, send_check's answer comes fourth.
--! include _check
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
local n = tonumber(ARGV[5])
for i = 1, n do
  local key = KEYS[3 + i]
  local existed = redis.call('EXISTS', key)
  redis.call('INCR', key)
  local ttl = ARGV[5 + i]
  if existed == 0 and ttl ~= '' then
    redis.call('PEXPIRE', key, ttl)
  end
end
local out = {string.format('%.6f', start - now), epoch, 0}
if #ARGV > 5 + n then
  local c = 3 + n
  local flags = {}
  for i = c + 4, #KEYS do
    flags[#flags + 1] = KEYS[i]
  end
  local k = {cache = KEYS[c + 1], leased = KEYS[c + 2], owners = KEYS[c + 3], epoch = KEYS[2]}
  out[4] = send_check(k, flags, ARGV[6 + n], ARGV[7 + n], now)
end
return out
