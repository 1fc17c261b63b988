//! The Redis store: standalone, Sentinel and Cluster, every call under a deadline and a breaker.
