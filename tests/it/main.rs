//! The one integration-test binary: the real `auditlake` binary against real temp dirs.

mod chain;
mod cli;
mod cloudhsm;
mod clouds;
mod cluster;
mod common;
mod convert;
mod exactly_once;
mod faults;
mod fetch;
mod findings;
mod index;
mod lock;
mod manifest;
mod query;
mod remote;
mod report;
mod serve;
mod status;
mod upkeep;
mod verify;
