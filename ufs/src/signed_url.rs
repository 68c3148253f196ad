//! Reading an object through a signed (presigned) URL: what a client
//! that may read a file but not see its mount's credentials gets from the
//! master. The URL's query is its signature, as good as a credential
//! until it expires, so errors and logs show the URL without it.

use crate::{ByteStream, UfsError, UfsResult};
use futures::StreamExt;
use std::ops::Range;
use std::sync::OnceLock;
use std::time::Duration;

/// One HTTP client for every signed read of the process (connections are
/// reused), with bounded waits as the stores' own clients have.
fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client without TLS settings of its own builds")
    })
}

/// `url` without its query (the signature) and fragment.
pub fn without_signature(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// Bytes `range` of the object behind `url`, as they arrive.
pub async fn read_stream(url: &str, range: Range<u64>) -> UfsResult<ByteStream> {
    let shown = without_signature(url).to_string();
    let fail = |reason: String| UfsError::Other {
        uri: shown.clone(),
        reason,
    };
    if range.is_empty() {
        return Ok(Box::pin(futures::stream::empty()));
    }
    let response = client()
        .get(url)
        .header(
            reqwest::header::RANGE,
            format!("bytes={}-{}", range.start, range.end - 1),
        )
        .send()
        .await
        // reqwest's errors carry the URL: say what failed without it.
        .map_err(|e| fail(format!("the request failed: {}", e.without_url())))?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Err(UfsError::NotFound(shown));
    }
    if status == reqwest::StatusCode::RANGE_NOT_SATISFIABLE {
        return Ok(Box::pin(futures::stream::empty()));
    }
    if status != reqwest::StatusCode::PARTIAL_CONTENT {
        // A 200 would be the whole object: a store that ignored the range.
        return Err(fail(format!("answered {status} to a ranged read")));
    }
    let stream = response.bytes_stream().map(move |piece| {
        piece.map_err(|e| UfsError::Other {
            uri: shown.clone(),
            reason: format!("reading the answer: {}", e.without_url()),
        })
    });
    Ok(Box::pin(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_never_shown() {
        assert_eq!(
            without_signature("http://127.0.0.1:9000/b/k?X-Amz-Signature=abc#x"),
            "http://127.0.0.1:9000/b/k"
        );
        assert_eq!(without_signature("http://h/b/k"), "http://h/b/k");
    }
}
