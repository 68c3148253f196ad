//! The status HTTP server every process runs: `/healthz` (the process is
//! up), `/readyz` (it is ready to serve) and `/metrics` (Prometheus text
//! format from the process's single registry).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Called before each scrape so gauges show current values.
pub type ScrapeHook = Arc<dyn Fn() + Send + Sync>;

#[derive(Clone)]
struct StatusState {
    registry: Arc<Mutex<Registry>>,
    ready: Arc<AtomicBool>,
    before_scrape: Option<ScrapeHook>,
}

/// Routes for health, readiness and metrics. Components may merge more
/// routes into the returned router.
pub fn status_router(
    registry: Arc<Mutex<Registry>>,
    ready: Arc<AtomicBool>,
    before_scrape: Option<ScrapeHook>,
) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(StatusState {
            registry,
            ready,
            before_scrape,
        })
}

async fn readyz(State(s): State<StatusState>) -> impl IntoResponse {
    if s.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn metrics(State(s): State<StatusState>) -> impl IntoResponse {
    if let Some(hook) = &s.before_scrape {
        hook();
    }
    let mut body = String::new();
    let encoded = match s.registry.lock() {
        Ok(registry) => prometheus_client::encoding::text::encode(&mut body, &registry),
        Err(_) => Err(std::fmt::Error),
    };
    match encoded {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics encoding failed\n",
        )
            .into_response(),
    }
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
