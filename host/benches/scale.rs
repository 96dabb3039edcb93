//! Scale scenarios with the load simulator (issue 7): being written.
fn main() {}
