-- Extend the owner's unexpired leases. KEYS: leased, owners. ARGV: owner, lease_s, key1, ...
-- Returns the keys still held.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local deadline = string.format('%.6f', now + tonumber(ARGV[2]))
local held = {}
for i = 3, #ARGV do
  local lease = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if lease and tonumber(lease) > now and redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[1] then
    redis.call('ZADD', KEYS[1], deadline, ARGV[i])
    held[#held + 1] = ARGV[i]
  end
end
return held
