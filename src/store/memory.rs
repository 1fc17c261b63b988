//! The in-process store (moka): bounded by bytes and TTL; the default for a single instance.
