//! A bound on every wait for a UFS that has none of its own: the local UFS
//! (a directory may sit on NFS that stops answering) and HDFS. Each call
//! gets `request_timeout`; a stream gets it between two pieces; a listing
//! or a recursive delete, which may rightly take long, gets ten times it.
//! An expired wait is `Unreachable` for the caller (the stuck system call
//! itself stays on its blocking thread: the kernel cannot be interrupted).
//! The object stores time each HTTP request out themselves (the same
//! option, in `object_store`'s client).

use crate::{ByteStream, UfsError, UfsResult, UfsStatus, UfsWriter, UnderFileSystem};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

/// Calls that may rightly take this many request timeouts.
const LONG_CALLS: u32 = 10;

#[derive(Debug)]
pub struct TimedUfs {
    inner: Arc<dyn UnderFileSystem>,
    timeout: Duration,
}

impl TimedUfs {
    pub fn new(inner: Arc<dyn UnderFileSystem>, timeout: Duration) -> Self {
        TimedUfs { inner, timeout }
    }
}

/// `f`, or `Unreachable` for `uri` when it takes longer than `timeout`.
async fn within<T>(
    uri: &str,
    what: &str,
    timeout: Duration,
    f: impl Future<Output = UfsResult<T>>,
) -> UfsResult<T> {
    tokio::time::timeout(timeout, f).await.unwrap_or_else(|_| {
        Err(UfsError::Unreachable {
            uri: uri.to_string(),
            reason: format!("{what} got no answer within {} s", timeout.as_secs_f64()),
        })
    })
}

#[async_trait]
impl UnderFileSystem for TimedUfs {
    fn uri(&self) -> &str {
        self.inner.uri()
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn check_reachable(&self) -> UfsResult<()> {
        within(
            self.uri(),
            "a listing",
            self.timeout,
            self.inner.check_reachable(),
        )
        .await
    }

    async fn status(&self, path: &str) -> UfsResult<Option<UfsStatus>> {
        within(
            self.uri(),
            "a status",
            self.timeout,
            self.inner.status(path),
        )
        .await
    }

    async fn list(&self, path: &str) -> UfsResult<Vec<UfsStatus>> {
        let long = self.timeout * LONG_CALLS;
        within(self.uri(), "a listing", long, self.inner.list(path)).await
    }

    async fn signed_read_url(
        &self,
        path: &str,
        valid_for: std::time::Duration,
    ) -> UfsResult<Option<String>> {
        within(
            self.uri(),
            "signing a URL",
            self.timeout,
            self.inner.signed_read_url(path, valid_for),
        )
        .await
    }

    async fn open_host_file(&self, path: &str) -> UfsResult<Option<std::fs::File>> {
        within(
            self.uri(),
            "an open",
            self.timeout,
            self.inner.open_host_file(path),
        )
        .await
    }

    async fn read_range(&self, path: &str, range: Range<u64>) -> UfsResult<Bytes> {
        within(
            self.uri(),
            "a read",
            self.timeout,
            self.inner.read_range(path, range),
        )
        .await
    }

    async fn read_stream(&self, path: &str, range: Range<u64>) -> UfsResult<ByteStream> {
        let stream = within(
            self.uri(),
            "a read",
            self.timeout,
            self.inner.read_stream(path, range),
        )
        .await?;
        let (uri, timeout) = (self.uri().to_string(), self.timeout);
        // Between two pieces, the same bound.
        let timed = futures::stream::unfold(Some(stream), move |state| {
            let uri = uri.clone();
            async move {
                let mut stream = state?;
                match tokio::time::timeout(timeout, stream.next()).await {
                    Ok(Some(item)) => Some((item, Some(stream))),
                    Ok(None) => None,
                    Err(_) => Some((
                        Err(UfsError::Unreachable {
                            uri,
                            reason: format!("a read stalled for {} s", timeout.as_secs_f64()),
                        }),
                        None,
                    )),
                }
            }
        });
        Ok(Box::pin(timed))
    }

    async fn create(&self, path: &str) -> UfsResult<Box<dyn UfsWriter>> {
        let inner = within(
            self.uri(),
            "a create",
            self.timeout,
            self.inner.create(path),
        )
        .await?;
        Ok(Box::new(TimedWriter {
            inner,
            uri: self.uri().to_string(),
            timeout: self.timeout,
        }))
    }

    async fn mkdirs(&self, path: &str) -> UfsResult<()> {
        within(self.uri(), "a mkdir", self.timeout, self.inner.mkdirs(path)).await
    }

    async fn delete_file(&self, path: &str) -> UfsResult<()> {
        within(
            self.uri(),
            "a delete",
            self.timeout,
            self.inner.delete_file(path),
        )
        .await
    }

    async fn delete_directory(&self, path: &str, recursive: bool) -> UfsResult<()> {
        let long = self.timeout * LONG_CALLS;
        let call = self.inner.delete_directory(path, recursive);
        within(self.uri(), "a delete", long, call).await
    }

    async fn rename(&self, src: &str, dst: &str) -> UfsResult<()> {
        within(
            self.uri(),
            "a rename",
            self.timeout,
            self.inner.rename(src, dst),
        )
        .await
    }
}

struct TimedWriter {
    inner: Box<dyn UfsWriter>,
    uri: String,
    timeout: Duration,
}

#[async_trait]
impl UfsWriter for TimedWriter {
    async fn write(&mut self, data: Bytes) -> UfsResult<()> {
        within(&self.uri, "a write", self.timeout, self.inner.write(data)).await
    }

    async fn complete(self: Box<Self>) -> UfsResult<UfsStatus> {
        let (uri, timeout) = (self.uri.clone(), self.timeout);
        within(&uri, "completing a file", timeout, self.inner.complete()).await
    }

    async fn abort(self: Box<Self>) -> UfsResult<()> {
        let (uri, timeout) = (self.uri.clone(), self.timeout);
        within(&uri, "an abort", timeout, self.inner.abort()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A UFS whose every call waits forever, as a hung NFS mount does.
    #[derive(Debug)]
    struct Hung;

    #[async_trait]
    impl UnderFileSystem for Hung {
        fn uri(&self) -> &str {
            "file:///hung"
        }
        fn kind(&self) -> &'static str {
            "local"
        }
        async fn check_reachable(&self) -> UfsResult<()> {
            std::future::pending().await
        }
        async fn status(&self, _: &str) -> UfsResult<Option<UfsStatus>> {
            std::future::pending().await
        }
        async fn list(&self, _: &str) -> UfsResult<Vec<UfsStatus>> {
            std::future::pending().await
        }
        async fn read_range(&self, _: &str, _: Range<u64>) -> UfsResult<Bytes> {
            std::future::pending().await
        }
        async fn read_stream(&self, _: &str, _: Range<u64>) -> UfsResult<ByteStream> {
            // The first piece comes, then nothing.
            let first = futures::stream::once(async { Ok(Bytes::from_static(b"x")) });
            Ok(Box::pin(first.chain(futures::stream::pending())))
        }
        async fn create(&self, _: &str) -> UfsResult<Box<dyn UfsWriter>> {
            std::future::pending().await
        }
        async fn mkdirs(&self, _: &str) -> UfsResult<()> {
            std::future::pending().await
        }
        async fn delete_file(&self, _: &str) -> UfsResult<()> {
            std::future::pending().await
        }
        async fn delete_directory(&self, _: &str, _: bool) -> UfsResult<()> {
            std::future::pending().await
        }
        async fn rename(&self, _: &str, _: &str) -> UfsResult<()> {
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn a_hung_store_is_unreachable_instead_of_a_hang() {
        let ufs = TimedUfs::new(Arc::new(Hung), Duration::from_millis(50));
        let unreachable = |r: UfsResult<()>| matches!(r, Err(UfsError::Unreachable { .. }));
        assert!(unreachable(ufs.check_reachable().await));
        assert!(unreachable(ufs.status("f").await.map(|_| ())));
        assert!(unreachable(ufs.list("").await.map(|_| ())));
        assert!(unreachable(ufs.read_range("f", 0..1).await.map(|_| ())));
        assert!(unreachable(ufs.mkdirs("d").await));
        assert!(unreachable(ufs.rename("a", "b").await));
        assert!(unreachable(ufs.create("f").await.map(|_| ())));
        // A stream that stalls after its first piece ends in an error.
        let mut stream = ufs.read_stream("f", 0..2).await.unwrap();
        assert_eq!(
            stream.next().await.unwrap().unwrap(),
            Bytes::from_static(b"x")
        );
        let stalled = stream.next().await.unwrap();
        assert!(
            matches!(stalled, Err(UfsError::Unreachable { .. })),
            "{stalled:?}"
        );
        assert!(stream.next().await.is_none());
    }
}
