-- Seconds (text) from now until the next free slot of the limiter KEYS[1].
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1])) or now
return string.format('%.6f', math.max(tat - now, 0))
