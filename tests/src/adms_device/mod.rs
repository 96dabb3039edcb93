//! A ZKTeco ADMS ("iclock" push) terminal simulator: its wire formats ([`protocol`]) and its
//! memory with the execution of server commands ([`terminal`]).
pub mod protocol;
pub mod terminal;
