-- Lease ready items. KEYS: items, rounds, prio, ready, leased (zset key -> lease deadline),
-- owners (hash key -> owner), this take's record (a list, see fetch_reclaim). ARGV: limit,
-- lease_s, record_s, owner, then optionally the only keys to take.
-- Expired leases go back to ready first. Returns a flat list: key, payload, round, ...
--! include _take
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local keys
if #ARGV > 4 then
  keys = {}
  for i = 5, #ARGV do
    keys[#keys + 1] = ARGV[i]
  end
end
local q = {items = KEYS[1], rounds = KEYS[2], prio = KEYS[3], ready = KEYS[4], leased = KEYS[5],
           owners = KEYS[6], record = KEYS[7]}
return take_ready(q, now, tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], keys)
