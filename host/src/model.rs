//! Chat records.
