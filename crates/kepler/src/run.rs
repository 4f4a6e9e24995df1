//! `kepler serve` and `kepler worker`: open the store, build the engine, run
//! until SIGTERM or Ctrl-C, then shut down gracefully.

use std::sync::Arc;

use anyhow::Context;
use kepler_core::config::Config;
use kepler_server::{AppState, Scorer};
use kepler_store::Store;
use tokio_util::sync::CancellationToken;

use crate::cli::{ServeArgs, WorkerArgs};

pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let store = kepler_store::open(&config.database)
        .await
        .with_context(|| format!("cannot open the store at {}", config.database.url))?;
    store
        .migrate()
        .await
        .context("cannot create or upgrade the schema")?;
    Ok(store)
}

fn engine(config: &Config) -> anyhow::Result<Arc<dyn Scorer>> {
    let engine =
        kepler_engine::Engine::new(&config.engine).context("cannot set up the scoring engine")?;
    Ok(Arc::new(engine))
}

/// Cancels the token on SIGTERM or Ctrl-C. The handlers are registered before
/// this returns, so a signal sent as soon as the server answers is never lost
/// to the default action (which would skip the graceful hand-back).
fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::spawn(async move {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                    tracing::info!("shutting down");
                    trigger.cancel();
                });
            }
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(%error, "cannot watch SIGTERM/SIGINT; stop with SIGKILL");
            }
        }
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
        trigger.cancel();
    });
    token
}

pub async fn serve(mut config: Config, args: ServeArgs) -> anyhow::Result<()> {
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if args.no_workers {
        config.workers.enabled = false;
    }
    let shutdown = shutdown_on_signal();
    let store = open_store(&config).await?;
    let scorer = if config.workers.enabled {
        Some(engine(&config)?)
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let address = listener
        .local_addr()
        .context("cannot read the listening address")?;
    tracing::info!(%address, store = %config.database.url, workers = config.workers.enabled, "kepler is serving");
    let state = AppState::new(store.clone(), config);
    kepler_server::serve(state, listener, scorer, shutdown)
        .await
        .context("the server failed")?;
    store.close().await;
    Ok(())
}

pub async fn worker(config: Config, args: WorkerArgs) -> anyhow::Result<()> {
    let shutdown = shutdown_on_signal();
    let store = open_store(&config).await?;
    let scorer = engine(&config)?;
    let state = AppState::new(store.clone(), config);
    // Bound before the pool starts, so a taken port is an error at once, not a silent gap.
    let ops = match args.metrics_listen {
        Some(address) => {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address}"))?;
            tracing::info!(%address, "serving /metrics, /healthz and /readyz");
            Some(tokio::spawn(kepler_server::serve_ops(
                state.clone(),
                listener,
                shutdown.clone(),
            )))
        }
        None => None,
    };
    kepler_server::worker::run_pool(state, scorer, shutdown).await;
    if let Some(ops) = ops {
        match ops.await {
            Ok(Err(error)) => tracing::warn!(%error, "the metrics listener failed"),
            Err(error) => tracing::warn!(%error, "the metrics listener panicked"),
            Ok(Ok(())) => {}
        }
    }
    store.close().await;
    Ok(())
}
