//! Server plumbing shared by the master and the workers: binding with a
//! clear error, gRPC incoming connections, the shutdown signal, and the
//! [`Supervisor`] that owns a server's tasks and stops them.

use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Binds `host:port` and says which address that is (port 0 picks a free
/// one); the error names the address.
pub async fn bind(
    host: &str,
    port: u16,
) -> Result<(tokio::net::TcpListener, std::net::SocketAddr), (String, std::io::Error)> {
    let addr = format!("{host}:{port}");
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => return Err((addr, e)),
    };
    match listener.local_addr() {
        Ok(bound) => Ok((listener, bound)),
        Err(e) => Err((addr, e)),
    }
}

/// Resolves once the shutdown flag turns true (or its sender is gone).
pub async fn wait_for_shutdown(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is
/// called, not when the future is first polled: call it before the process
/// can be seen running, or a SIGTERM sent right after start-up kills it
/// without a clean shutdown. Needs a tokio runtime.
pub fn wait_for_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let interrupt = signal(SignalKind::interrupt());
    async move {
        match (term, interrupt) {
            (Ok(mut term), Ok(mut interrupt)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = interrupt.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

/// The tasks of one server (its listeners and background loops) and the
/// flag that stops them: every task gets the same shutdown signal, and
/// [`Supervisor::shutdown`] raises it and waits for all of them.
pub struct Supervisor {
    shutdown: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Default for Supervisor {
    fn default() -> Self {
        Supervisor {
            shutdown: watch::channel(false).0,
            tasks: Vec::new(),
        }
    }
}

impl Supervisor {
    /// A future that resolves when shutdown is requested.
    pub fn stop_signal(&self) -> impl Future<Output = ()> + Send + 'static {
        wait_for_shutdown(self.shutdown.subscribe())
    }

    /// The shutdown flag itself, for tasks that check it in their loop.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Runs a task until it ends on its own (it should watch
    /// [`Supervisor::stop_signal`]).
    pub fn spawn(&mut self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.push((name, tokio::spawn(task)));
    }

    /// Runs a server that stops on the shutdown signal; its failure is
    /// logged with `name`.
    pub fn spawn_server<F, Fut, E>(&mut self, name: &'static str, serve: F)
    where
        F: FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display,
    {
        let running = serve(Box::pin(self.stop_signal()));
        self.spawn(name, async move {
            if let Err(e) = running.await {
                tracing::error!(task = name, error = %e, "server failed");
            }
        });
    }

    /// Runs `tick` every `period` (at least 10 ms) until shutdown; a slow
    /// tick delays the next one instead of piling them up.
    pub fn every<F, Fut>(&mut self, name: &'static str, period: Duration, mut tick: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let stop = self.stop_signal();
        self.spawn(name, async move {
            let mut interval = tokio::time::interval(period.max(Duration::from_millis(10)));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    _ = &mut stop => return,
                    _ = interval.tick() => tick().await,
                }
            }
        });
    }

    /// Raises the shutdown flag and waits for every task; a task that
    /// panicked is logged by name.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for (name, task) in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(task = name, error = %e, "task ended abnormally");
            }
        }
    }
}
