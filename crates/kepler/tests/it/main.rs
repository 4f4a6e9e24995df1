//! The `kepler` binary from the outside; `scaleout` runs several of them on one
//! PostgreSQL database (`cluster` starts the processes, `private_pg` a cluster
//! of its own to stop and start).

mod cluster;
mod private_pg;
mod scaleout;
mod score;
mod support;
