"""The 6sense side: the HTTP client, its retry policy, and flattening answers (pure)."""
