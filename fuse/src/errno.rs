//! Alluxio errors as errno values, and bounded retries of operations that
//! meet an unreachable master or worker (it may be restarting).

use alluxio_common::AlluxioError;
use fuser::Errno;
use std::future::Future;
use std::time::{Duration, Instant};

/// The errno a POSIX program expects for an error from the cluster.
pub fn errno_of(e: &AlluxioError) -> Errno {
    let m = e.message();
    match e {
        AlluxioError::NotFound(_) => Errno::ENOENT,
        AlluxioError::AlreadyExists(_) => Errno::EEXIST,
        AlluxioError::InvalidArgument(_) if m.contains("is a directory") => Errno::EISDIR,
        AlluxioError::InvalidArgument(_) => Errno::EINVAL,
        AlluxioError::PermissionDenied(_) if m.contains("read-only") => Errno::EROFS,
        AlluxioError::PermissionDenied(_) | AlluxioError::Unauthenticated(_) => Errno::EACCES,
        AlluxioError::FailedPrecondition(_) if m.contains("non-empty directory") => {
            Errno::ENOTEMPTY
        }
        AlluxioError::FailedPrecondition(_) if m.contains("different mounts") => Errno::EXDEV,
        AlluxioError::FailedPrecondition(_) if m.contains("mount point") => Errno::EBUSY,
        AlluxioError::FailedPrecondition(_) if m.contains("not a directory") => Errno::ENOTDIR,
        AlluxioError::FailedPrecondition(_) => Errno::EPERM,
        // A server shedding load, or no room in any worker's cache.
        AlluxioError::ResourceExhausted(_) if m.contains("retry later") => Errno::EAGAIN,
        AlluxioError::ResourceExhausted(_) => Errno::ENOSPC,
        AlluxioError::Unavailable(_) | AlluxioError::Internal(_) => Errno::EIO,
    }
}

/// Runs `op` until it succeeds, fails with anything but `Unavailable`, or
/// `timeout` has passed since the first try (then the last error stands).
pub async fn with_retry<T, F, Fut>(timeout: Duration, mut op: F) -> Result<T, AlluxioError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AlluxioError>>,
{
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(50);
    loop {
        match op().await {
            Err(AlluxioError::Unavailable(m)) if Instant::now() + pause < deadline => {
                tracing::debug!(error = %m, "cluster unavailable; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn errors_map_to_the_errno_posix_programs_expect() {
        let cases = [
            (AlluxioError::NotFound("x".into()), Errno::ENOENT),
            (AlluxioError::AlreadyExists("x".into()), Errno::EEXIST),
            (
                AlluxioError::ResourceExhausted("full".into()),
                Errno::ENOSPC,
            ),
            (
                AlluxioError::FailedPrecondition(
                    "Cannot delete non-empty directory /d without recursive".into(),
                ),
                Errno::ENOTEMPTY,
            ),
            (
                AlluxioError::PermissionDenied(
                    "Cannot modify /m/f: it is under the read-only mount /m".into(),
                ),
                Errno::EROFS,
            ),
            (
                AlluxioError::FailedPrecondition(
                    "Cannot rename /a to /b/c: they are in different mounts (/a and /b)".into(),
                ),
                Errno::EXDEV,
            ),
            (AlluxioError::Unavailable("down".into()), Errno::EIO),
        ];
        for (e, want) in cases {
            assert_eq!(errno_of(&e), want, "{e:?}");
        }
    }

    #[tokio::test]
    async fn retries_only_unavailable_and_only_until_the_deadline() {
        let tries = AtomicU32::new(0);
        let r: Result<(), _> = with_retry(Duration::from_secs(5), || async {
            if tries.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(AlluxioError::Unavailable("restarting".into()))
            } else {
                Ok(())
            }
        })
        .await;
        assert!(r.is_ok());
        assert_eq!(tries.load(Ordering::SeqCst), 3);

        tries.store(0, Ordering::SeqCst);
        let r: Result<(), _> = with_retry(Duration::from_secs(5), || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err(AlluxioError::NotFound("gone".into()))
        })
        .await;
        assert!(matches!(r, Err(AlluxioError::NotFound(_))));
        assert_eq!(tries.load(Ordering::SeqCst), 1);

        let r: Result<(), _> = with_retry(Duration::from_millis(200), || async {
            Err(AlluxioError::Unavailable("down for good".into()))
        })
        .await;
        assert!(matches!(r, Err(AlluxioError::Unavailable(_))));
    }
}
