//! Load shedding for gRPC servers: at most `limit` calls are handled at
//! once across all connections; a call beyond that is answered at once
//! with `ResourceExhausted` instead of waiting in a queue without bound
//! (a client backs off and retries, or goes to another server). A call
//! counts from its arrival until its response starts: a streamed response
//! (a block read) is bounded by the keepalives and data-path timeouts
//! after that, not by this limit.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Calls in flight, and how many were shed: Prometheus metrics the layer
/// keeps itself.
#[derive(Debug, Default)]
pub struct InFlight {
    pub current: Gauge,
    pub shed: Counter,
}

impl InFlight {
    /// Registers `{prefix}_rpcs_in_flight` and `{prefix}_rpcs_shed`.
    pub fn register(&self, registry: &mut Registry, prefix: &str) {
        registry.register(
            format!("{prefix}_rpcs_in_flight"),
            "gRPC calls being handled now",
            self.current.clone(),
        );
        registry.register(
            format!("{prefix}_rpcs_shed"),
            "gRPC calls refused with ResourceExhausted: the server was at max_concurrent_rpcs",
            self.shed.clone(),
        );
    }
}

#[derive(Clone)]
pub struct ShedLoadLayer {
    limit: usize,
    in_flight: Arc<InFlight>,
}

impl ShedLoadLayer {
    /// Sheds calls beyond `limit` at once (0: no limit).
    pub fn new(limit: usize) -> Self {
        ShedLoadLayer {
            limit,
            in_flight: Arc::default(),
        }
    }

    /// The counters, to export as metrics.
    pub fn in_flight(&self) -> Arc<InFlight> {
        self.in_flight.clone()
    }
}

impl<S> tower::Layer<S> for ShedLoadLayer {
    type Service = ShedLoad<S>;

    fn layer(&self, inner: S) -> ShedLoad<S> {
        ShedLoad {
            inner,
            limit: self.limit,
            in_flight: self.in_flight.clone(),
        }
    }
}

#[derive(Clone)]
pub struct ShedLoad<S> {
    inner: S,
    limit: usize,
    in_flight: Arc<InFlight>,
}

/// Gives the call's slot back when the call's future is done or dropped.
struct Slot(Arc<InFlight>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.current.dec();
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for ShedLoad<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let before = self.in_flight.current.inc();
        let slot = Slot(self.in_flight.clone());
        if self.limit > 0 && before >= self.limit as i64 {
            drop(slot);
            self.in_flight.shed.inc();
            let status = tonic::Status::resource_exhausted(format!(
                "the server is handling {} calls, its limit; retry later",
                self.limit
            ));
            return Box::pin(async move { Ok(status.into_http()) });
        }
        let call = self.inner.call(request);
        Box::pin(async move {
            let _slot = slot;
            call.await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer, Service};

    /// A service whose calls wait until the test lets them go.
    #[derive(Clone)]
    struct Gate(Arc<tokio::sync::Semaphore>);

    impl Service<http::Request<()>> for Gate {
        type Response = http::Response<String>;
        type Error = std::convert::Infallible;
        type Future = BoxFuture<Result<Self::Response, Self::Error>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<()>) -> Self::Future {
            let gate = self.0.clone();
            Box::pin(async move {
                let _pass = gate.acquire().await.expect("open");
                Ok(http::Response::new("done".to_string()))
            })
        }
    }

    fn grpc_code(response: &http::Response<String>) -> Option<String> {
        response
            .headers()
            .get("grpc-status")
            .map(|v| v.to_str().unwrap().to_string())
    }

    #[tokio::test]
    async fn calls_beyond_the_limit_are_refused_at_once_and_slots_come_back() {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let layer = ShedLoadLayer::new(2);
        let mut service = layer.layer(Gate(gate.clone()));
        let first = tokio::spawn(service.call(http::Request::new(())));
        let second = tokio::spawn(service.call(http::Request::new(())));
        // The third finds both slots taken: refused without waiting.
        let third = service.call(http::Request::new(())).await.unwrap();
        assert_eq!(
            grpc_code(&third).as_deref(),
            Some("8"),
            "RESOURCE_EXHAUSTED"
        );
        assert_eq!(layer.in_flight().shed.get(), 1);
        assert_eq!(layer.in_flight().current.get(), 2);
        gate.add_permits(2);
        for call in [first, second] {
            let response = call.await.unwrap().unwrap();
            assert_eq!(response.into_body(), "done");
        }
        assert_eq!(layer.in_flight().current.get(), 0);
        // Slots are free again: the next call is served.
        gate.add_permits(1);
        let fourth = service.call(http::Request::new(())).await.unwrap();
        assert_eq!(fourth.into_body(), "done");
        assert_eq!(layer.in_flight().shed.get(), 1);
    }

    #[tokio::test]
    async fn a_call_dropped_before_it_ends_gives_its_slot_back() {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let layer = ShedLoadLayer::new(1);
        let mut service = layer.layer(Gate(gate.clone()));
        let pending = service.call(http::Request::new(()));
        assert_eq!(layer.in_flight().current.get(), 1);
        drop(pending); // the client went away
        assert_eq!(layer.in_flight().current.get(), 0);
        gate.add_permits(1);
        let next = service.call(http::Request::new(())).await.unwrap();
        assert_eq!(next.into_body(), "done");
    }
}
