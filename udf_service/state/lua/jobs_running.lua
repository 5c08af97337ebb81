-- How many jobs are unfinished and alive (leased or orphaned). KEYS[1]: the lease index (zset:
-- job id -> lease_until, unfinished jobs only); ARGV[1]: the job key prefix. Drops index entries
-- of jobs that expired or finished, like jobs_orphaned, so the count is exact.
local running = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[1] .. id
  if redis.call('EXISTS', key) == 0 or redis.call('HEXISTS', key, 'result') == 1 then
    redis.call('ZREM', KEYS[1], id)
  else
    running = running + 1
  end
end
return running
