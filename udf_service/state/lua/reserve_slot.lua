-- GCRA with a burst of one. KEYS[1]: the limiter's tat (server-clock seconds, as text).
-- ARGV: interval_s, max_wait_s. Returns the wait in seconds (text), or nil when it exceeds
-- max_wait_s (then nothing changes). The key expires when its tat has passed.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local start = math.max(tonumber(redis.call('GET', KEYS[1])) or now, now)
if start - now > tonumber(ARGV[2]) then
  return nil
end
local tat = start + tonumber(ARGV[1])
local ttl_ms = math.max(1, math.ceil((tat - now) * 1000))
redis.call('SET', KEYS[1], string.format('%.6f', tat), 'PX', ttl_ms)
return string.format('%.6f', start - now)
