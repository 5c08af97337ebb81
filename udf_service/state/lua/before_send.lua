-- One read before a paid call. KEYS: 1 cache entry, 2 leased, 3 owners, 4 epoch, then flag keys.
-- ARGV: key, owner. Returns {cached 0|1, held 0|1, epoch or '', flag1 0|1, ...}.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local lease = redis.call('ZSCORE', KEYS[2], ARGV[1])
local held = 0
if lease and tonumber(lease) > now and redis.call('HGET', KEYS[3], ARGV[1]) == ARGV[2] then
  held = 1
end
local out = {redis.call('EXISTS', KEYS[1]), held, redis.call('GET', KEYS[4]) or ''}
for i = 5, #KEYS do
  out[#out + 1] = redis.call('EXISTS', KEYS[i])
end
return out
