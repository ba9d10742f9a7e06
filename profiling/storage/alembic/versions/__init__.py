"""The store's schema revisions, one per change, oldest first (0001 ... ); the number is the
store's schema version."""
