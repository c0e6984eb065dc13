//! SQLite storage: the only code in the server that speaks SQL.

pub mod kv;
