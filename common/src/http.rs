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

/// Says why the process is not ready, when it knows (shown by `/readyz`).
pub type ReasonHook = Arc<dyn Fn() -> Option<String> + Send + Sync>;

#[derive(Clone)]
struct StatusState {
    registry: Arc<Mutex<Registry>>,
    ready: Arc<AtomicBool>,
    why_not_ready: Option<ReasonHook>,
    before_scrape: Option<ScrapeHook>,
}

/// Routes for health, readiness and metrics. Components may merge more
/// routes into the returned router.
pub fn status_router(
    registry: Arc<Mutex<Registry>>,
    ready: Arc<AtomicBool>,
    before_scrape: Option<ScrapeHook>,
) -> Router {
    router(StatusState {
        registry,
        ready,
        why_not_ready: None,
        before_scrape,
    })
}

/// The same, with `/readyz` saying why the process is not ready.
pub fn status_router_explained(
    registry: Arc<Mutex<Registry>>,
    ready: Arc<AtomicBool>,
    why_not_ready: ReasonHook,
    before_scrape: Option<ScrapeHook>,
) -> Router {
    router(StatusState {
        registry,
        ready,
        why_not_ready: Some(why_not_ready),
        before_scrape,
    })
}

fn router(state: StatusState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(s): State<StatusState>) -> impl IntoResponse {
    let reason = s.why_not_ready.as_ref().and_then(|why| why());
    match reason {
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
        None if s.ready.load(Ordering::Acquire) => (StatusCode::OK, "ready\n".to_string()),
        None => (StatusCode::SERVICE_UNAVAILABLE, "not ready\n".to_string()),
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
