//! The error type shared across crates, and its mapping to gRPC status codes
//! at service edges (and back, in clients).

use tonic::{Code, Status};

pub type Result<T, E = AlluxioError> = std::result::Result<T, E>;

/// An error with a kind that decides its gRPC code and a message for humans.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlluxioError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is valid but the state does not allow it (non-empty
    /// directory, read-only mount, incomplete file...).
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    PermissionDenied(String),
    /// The caller presented no credentials, or ones that do not check out.
    #[error("{0}")]
    Unauthenticated(String),
    /// A dependency (UFS, master, worker) cannot be reached right now.
    #[error("{0}")]
    Unavailable(String),
    /// No room or capacity right now (every tier of a worker full, too
    /// many requests in flight): another server may have some.
    #[error("{0}")]
    ResourceExhausted(String),
    #[error("{0}")]
    Internal(String),
}

impl AlluxioError {
    pub fn code(&self) -> Code {
        match self {
            AlluxioError::InvalidArgument(_) => Code::InvalidArgument,
            AlluxioError::NotFound(_) => Code::NotFound,
            AlluxioError::AlreadyExists(_) => Code::AlreadyExists,
            AlluxioError::FailedPrecondition(_) => Code::FailedPrecondition,
            AlluxioError::PermissionDenied(_) => Code::PermissionDenied,
            AlluxioError::Unauthenticated(_) => Code::Unauthenticated,
            AlluxioError::Unavailable(_) => Code::Unavailable,
            AlluxioError::ResourceExhausted(_) => Code::ResourceExhausted,
            AlluxioError::Internal(_) => Code::Internal,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            AlluxioError::InvalidArgument(m)
            | AlluxioError::NotFound(m)
            | AlluxioError::AlreadyExists(m)
            | AlluxioError::FailedPrecondition(m)
            | AlluxioError::PermissionDenied(m)
            | AlluxioError::Unauthenticated(m)
            | AlluxioError::Unavailable(m)
            | AlluxioError::ResourceExhausted(m)
            | AlluxioError::Internal(m) => m,
        }
    }
}

impl From<AlluxioError> for Status {
    fn from(e: AlluxioError) -> Status {
        Status::new(e.code(), e.message().to_string())
    }
}

impl From<Status> for AlluxioError {
    fn from(s: Status) -> AlluxioError {
        let msg = s.message().to_string();
        match s.code() {
            Code::InvalidArgument | Code::OutOfRange => AlluxioError::InvalidArgument(msg),
            Code::NotFound => AlluxioError::NotFound(msg),
            Code::AlreadyExists => AlluxioError::AlreadyExists(msg),
            Code::FailedPrecondition | Code::Aborted => AlluxioError::FailedPrecondition(msg),
            Code::PermissionDenied => AlluxioError::PermissionDenied(msg),
            Code::Unauthenticated => AlluxioError::Unauthenticated(msg),
            Code::ResourceExhausted => AlluxioError::ResourceExhausted(msg),
            Code::Unavailable | Code::DeadlineExceeded => {
                AlluxioError::Unavailable(if msg.is_empty() {
                    "service unavailable".to_string()
                } else {
                    with_causes(&s)
                })
            }
            // A request cut off by its connection (the server went away
            // mid-call) surfaces as Unknown or Cancelled with the transport
            // error as its source: that is an unreachable server too.
            Code::Unknown | Code::Cancelled if std::error::Error::source(&s).is_some() => {
                AlluxioError::Unavailable(format!("connection lost: {}", with_causes(&s)))
            }
            _ => AlluxioError::Internal(format!("{:?}: {msg}", s.code())),
        }
    }
}

/// A status's message followed by the errors that caused it ("transport
/// error" alone does not say that a TLS handshake failed, or why).
fn with_causes(status: &tonic::Status) -> String {
    let mut text = status.message().to_string();
    append_causes(&mut text, std::error::Error::source(status));
    text
}

/// An error's text followed by the errors that caused it.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    append_causes(&mut text, error.source());
    text
}

fn append_causes(text: &mut String, mut cause: Option<&dyn std::error::Error>) {
    while let Some(e) = cause {
        let said = e.to_string();
        if !text.ends_with(&said) {
            *text = format!("{text}: {said}");
        }
        cause = e.source();
    }
}

impl From<std::io::Error> for AlluxioError {
    fn from(e: std::io::Error) -> Self {
        AlluxioError::Internal(format!("I/O error: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_grpc_status() {
        let e = AlluxioError::NotFound("Path /x does not exist".into());
        let s: Status = e.clone().into();
        assert_eq!(s.code(), Code::NotFound);
        assert_eq!(AlluxioError::from(s), e);
    }
}
