//! The API from the outside: a real server on loopback over a fresh database
//! (SQLite, or PostgreSQL with `KEPLER_TEST_BACKEND=postgres`),
//! driven over HTTP, checked against API.md §3–§10.

mod admission;
mod auth;
mod encoding;
mod engine;
mod idempotency;
mod input;
mod jobs;
mod limits;
mod nodes;
mod ops;
mod restart;
mod sandbox;
mod support;
mod usage;
