"""Technology adapters: database, cache, security, HTTP client."""
