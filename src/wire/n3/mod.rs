//! Neo N3 wire codec.
