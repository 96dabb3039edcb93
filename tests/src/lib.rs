//! Device simulators and helpers for the end-to-end tests.
