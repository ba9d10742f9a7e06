"""Storage: the SQLite store (WAL, content-addressed traces), its migrations and the JSON bundles runs travel in."""
