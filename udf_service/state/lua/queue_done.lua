-- KEYS: items, seqs, ready, leased. ARGV: the keys to remove from the queue.
for _, key in ipairs(ARGV) do
  redis.call('HDEL', KEYS[1], key)
  redis.call('HDEL', KEYS[2], key)
  redis.call('ZREM', KEYS[3], key)
  redis.call('ZREM', KEYS[4], key)
end
return 0
