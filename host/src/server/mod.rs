//! `biogate serve`: builds the gateway and serves HTTP until SIGINT or SIGTERM, through
//! its own listener (`listener`: connection caps, refusals; `connection`: the header, body
//! and idle clocks) after raising the open-file limit (`open_files`).
pub mod connection;
pub mod listener;
pub mod open_files;

use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusBuilder;

use crate::api::router;
use crate::config::LoadedConfig;
use crate::gateway::Gateway;
use crate::web::AppState;

/// Runs the gateway.
pub async fn serve(config: LoadedConfig) -> anyhow::Result<()> {
    let metrics = PrometheusBuilder::new().install_recorder().ok();
    if let Some(handle) = metrics.clone() {
        // Histograms keep every sample until drained: by a scrape of `/metrics`, or by
        // this upkeep. Without it, a gateway nobody scrapes grows by every sample.
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                every.tick().await;
                handle.run_upkeep();
            }
        });
    }
    let listen = config.config.server.listen;
    let open_file_limit = match open_files::raise_to_hard() {
        Ok(limits) => {
            tracing::info!(
                before = ?limits.before,
                soft = ?limits.soft,
                hard = ?limits.hard,
                "open-file limit (soft raised to hard; None: unlimited)"
            );
            limits.soft
        }
        Err(error) => {
            tracing::warn!(%error, "keeping the open-file limit");
            error.before
        }
    };
    let limits = listener_limits(&config.config.server).fitting(open_file_limit);
    let gateway = tokio::task::block_in_place(|| Gateway::build(config))?;
    let mqtt = match gateway.config.config.mqtt.clone() {
        Some(cfg) => Some(crate::ingress::mqtt::start(gateway.clone(), cfg, gateway.shutdown_signal())?),
        None => None,
    };
    let socket = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("listening on {listen}"))?;
    let local = socket.local_addr()?;
    tracing::info!(address = %local, data_dir = %gateway.config.data_dir().display(), "biogate listening");
    println!("biogate listening on http://{local}");
    let app = router(AppState { gateway: gateway.clone(), metrics, mqtt });
    listener::serve(socket, app, limits, shutdown_signal()).await?;
    gateway.shutdown();
    gateway.store.flush()?;
    Ok(())
}

/// The listener's limits from `[server]`.
fn listener_limits(server: &crate::config::ServerConfig) -> listener::Limits {
    let header = Duration::from_millis(server.header_timeout_ms);
    listener::Limits {
        timeouts: connection::Timeouts {
            header,
            body: Duration::from_millis(server.body_timeout_ms),
            idle: Duration::from_millis(server.idle_timeout_ms),
        },
        max_connections: server.max_connections,
        max_connections_per_ip: server.max_connections_per_ip,
        // Connections held by slow clients are closed within the header timeout.
        retry_after_secs: u32::try_from(header.as_secs().max(1)).unwrap_or(u32::MAX),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
