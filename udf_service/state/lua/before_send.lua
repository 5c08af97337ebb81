-- One read before a paid call. KEYS: 1 cache entry, 2 leased, 3 owners, 4 epoch, then flag keys.
-- ARGV: key, owner. Returns {cached 0|1, held 0|1, epoch or '', flag1 0|1, ...}.
--! include _check
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local flags = {}
for i = 5, #KEYS do
  flags[#flags + 1] = KEYS[i]
end
return send_check({cache = KEYS[1], leased = KEYS[2], owners = KEYS[3], epoch = KEYS[4]}, flags, ARGV[1], ARGV[2], now)
