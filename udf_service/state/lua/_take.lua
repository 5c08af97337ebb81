-- take_ready: lease up to `limit` ready items to `owner`, as fetch_take, fetch_push and
-- fetch_done all do (the loader puts this text where a script says `--! include _take`).
-- q: the queue's key names {items, rounds, prio, ready, leased, owners, record}; `keys`: nil
-- (the most urgent first) or the only keys to take. Expired leases go back to ready first.
-- Returns a flat list: key, payload, round, ...
local function take_ready(q, now, limit, lease_s, record_s, owner, keys)
  for _, key in ipairs(redis.call('ZRANGEBYSCORE', q.leased, '-inf', string.format('%.6f', now))) do
    redis.call('ZREM', q.leased, key)
    redis.call('HDEL', q.owners, key)
    local round = redis.call('HGET', q.rounds, key)
    if round then
      redis.call('ZADD', q.ready, tonumber(redis.call('HGET', q.prio, key)) * 1e13 + tonumber(round), key)
    end
  end
  local wanted
  if keys then
    wanted = {}
    for _, key in ipairs(keys) do
      if #wanted < limit and redis.call('ZSCORE', q.ready, key) then
        wanted[#wanted + 1] = key
      end
    end
  else
    wanted = redis.call('ZRANGE', q.ready, 0, limit - 1)
  end
  local deadline = string.format('%.6f', now + lease_s)
  local taken = {}
  for _, key in ipairs(wanted) do
    redis.call('ZREM', q.ready, key)
    redis.call('ZADD', q.leased, deadline, key)
    redis.call('HSET', q.owners, key, owner)
    redis.call('RPUSH', q.record, key)
    taken[#taken + 1] = key
    taken[#taken + 1] = redis.call('HGET', q.items, key)
    taken[#taken + 1] = redis.call('HGET', q.rounds, key)
  end
  if #taken > 0 then  -- kept a while, so a caller who never got this answer can claim the items
    redis.call('PEXPIRE', q.record, math.max(1, math.floor(record_s * 1000)))
  end
  return taken
end
