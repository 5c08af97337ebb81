-- send_check: the read before a paid call, for before_send and reserve_slot alike (the loader
-- puts this text where a script says `--! include _check`). k: {cache = the lead's cache entry,
-- leased, owners = the queue's, epoch}; flag_keys: a list; now: the server clock.
-- Returns {cached 0|1, held 0|1, epoch or '', flag1 0|1, ...}.
local function send_check(k, flag_keys, key, owner, now)
  local lease = redis.call('ZSCORE', k.leased, key)
  local held = 0
  if lease and tonumber(lease) > now and redis.call('HGET', k.owners, key) == owner then
    held = 1
  end
  local out = {redis.call('EXISTS', k.cache), held, redis.call('GET', k.epoch) or ''}
  for _, flag in ipairs(flag_keys) do
    out[#out + 1] = redis.call('EXISTS', flag)
  end
  return out
end
