//! kepler-client against the real kepler-server on loopback: every method, every
//! error class, retries through a stub that fails on cue, and TLS with an extra CA.

mod errors;
mod retry;
mod score;
mod support;
mod tls;
