-- Add ARGV[1] to the integer KEYS[1]; ARGV[2] (ms, or '') sets the expiry only on creation.
local existed = redis.call('EXISTS', KEYS[1])
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if existed == 0 and ARGV[2] ~= '' then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return value
