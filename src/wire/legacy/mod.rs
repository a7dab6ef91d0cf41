//! NEO Legacy (2.x) wire codec.
