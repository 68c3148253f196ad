//! A plain HTTP/1.0 GET over a TCP socket, for probes and scrapes in
//! tests (no client library needed, and a refused or reset connection is
//! just an error).

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Status code and body of `GET path` at `address` (`host:port`).
pub async fn http_get(address: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = tokio::net::TcpStream::connect(address).await?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n");
    s.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    s.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response);
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response from {address}")))?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((code, body.to_string()))
}
