-- Push the limiter KEYS[1] so no slot starts before ARGV[1] (server-clock seconds).
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1])) or now
local target = tonumber(ARGV[1])
if target > tat and target > now then
  local ttl_ms = math.max(1, math.ceil((target - now) * 1000))
  redis.call('SET', KEYS[1], string.format('%.6f', target), 'PX', ttl_ms)
end
return 0
