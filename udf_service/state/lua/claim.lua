-- Take the claim KEYS[1] for owner ARGV[1] for ARGV[2] ms: 1 when free or already ours, else 0.
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
