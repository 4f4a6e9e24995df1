//! A cold run of `strong.test` at several test-network latencies: wall time,
//! and wall time divided by the latency (round trips on the critical path).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use kepler_core::Domain;
use kepler_engine::Engine;
use kepler_testnet::{Testnet, TestnetOptions};

use crate::EngineArgs;

/// The figures at one latency.
#[derive(Debug, Clone)]
pub struct EngineResult {
    pub latency: Duration,
    /// Every measured run, sorted.
    pub walls: Vec<Duration>,
    pub grade: String,
}

impl EngineResult {
    pub fn median(&self) -> Duration {
        self.walls[self.walls.len() / 2]
    }
}

pub async fn run(args: &EngineArgs) -> anyhow::Result<Vec<EngineResult>> {
    anyhow::ensure!(args.runs > 0, "--runs must be at least 1");
    let domain = Domain::parse("strong.test").context("fixture domain")?;
    let mut results = Vec::new();
    for &latency in &args.latencies {
        let dir = tempfile::tempdir().context("temp dir")?;
        let net = Testnet::start(TestnetOptions {
            latency,
            ..TestnetOptions::in_dir(dir.path())
        })
        .await
        .context("starting the test network")?;
        let settings = net.engine_settings();
        let mut walls = Vec::with_capacity(args.runs);
        let mut grade = String::new();
        // One warm-up run (page cache, allocator), then the measured ones.
        // Each run gets a new engine so that no resolver cache carries over:
        // every run is as cold as a customer's first request.
        for i in 0..=args.runs {
            let engine = Arc::new(Engine::new(&settings).context("engine")?);
            let started = Instant::now();
            let record = engine
                .score(&domain)
                .await
                .map_err(|reason| anyhow::anyhow!("strong.test failed: {reason:?}"))?;
            let wall = started.elapsed();
            if i > 0 {
                walls.push(wall);
            }
            grade = record.grade;
        }
        walls.sort();
        eprintln!(
            "engine: latency {} ms, median {} ms",
            latency.as_millis(),
            walls[walls.len() / 2].as_millis()
        );
        results.push(EngineResult {
            latency,
            walls,
            grade,
        });
        net.shutdown().await;
    }
    Ok(results)
}
