//! `biogate serve`: builds the gateway and serves HTTP until SIGINT or SIGTERM.
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
    let gateway = tokio::task::block_in_place(|| Gateway::build(config))?;
    let mqtt = match gateway.config.config.mqtt.clone() {
        Some(cfg) => Some(crate::ingress::mqtt::start(gateway.clone(), cfg, gateway.shutdown_signal())?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("listening on {listen}"))?;
    let local = listener.local_addr()?;
    tracing::info!(address = %local, data_dir = %gateway.config.data_dir().display(), "biogate listening");
    println!("biogate listening on http://{local}");
    let app = router(AppState { gateway: gateway.clone(), metrics, mqtt });
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
    gateway.shutdown();
    gateway.store.flush()?;
    Ok(())
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
