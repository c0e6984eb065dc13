//! `chathooks dev`: placeholder
