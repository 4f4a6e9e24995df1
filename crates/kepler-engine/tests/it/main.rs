//! The engine against the fixture network (`kepler-testnet`) on loopback.
//! One test binary; each test starts its own testnet on random ports.

mod docs;
mod fixtures;
mod lossy_dns;
