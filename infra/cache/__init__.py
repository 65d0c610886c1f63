"""Cache adapter: the Redis connection pool behind Litestar's stores."""
