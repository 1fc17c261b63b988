//! The thin Pingora `ProxyHttp`: each phase moves data between the core, the store and headers.
