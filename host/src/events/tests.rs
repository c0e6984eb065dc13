//! Tests of the event mapping.
