//! RPC-shaped JSON views of N3 objects.
