//! TLS on the cluster's ports (`security.tls.*`), over real sockets with
//! certificates made by `scripts/tls-certs.sh`: every byte between
//! clients, master and workers is under TLS, plain and wrongly trusting
//! callers get nowhere, and renewed certificates are served without a
//! restart.

use alluxio_client::MasterClient;
use alluxio_common::auth::Role;
use alluxio_common::data_protocol::{ReadRequest, Request};
use alluxio_common::tls::ClientTls;
use alluxio_proto::grpc::WriteType;
use alluxio_testkit::cluster::{data, start, Cluster, MIB};
use alluxio_testkit::tls::TlsFiles;
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn tls_cluster(certs: &TlsFiles) -> Cluster {
    start(1, 64 * MIB, |c| {
        certs.apply(c);
        // Reads of cached blocks go over the data port, not the block file.
        c.user.short_circuit = false;
    })
    .await
}

/// A client of the master at `address` as the superuser, checking the
/// server with `tls`, once it has had an answer; the error when it gets
/// none within a few seconds.
async fn connect(
    c: &Cluster,
    address: &str,
    tls: Option<ClientTls>,
) -> Result<MasterClient, String> {
    let credentials = c.credentials("root", Role::Admin).with_tls(tls);
    let client = MasterClient::connect(address, Duration::from_secs(3), credentials)
        .await
        .map_err(|e| e.to_string())?;
    client
        .get_status("/", None)
        .await
        .map_err(|e| e.to_string())?;
    Ok(client)
}

/// Forwards connections from a port of its own to `target`, keeping a copy
/// of every byte the client sends.
async fn recording_proxy(target: String) -> (String, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = seen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(&target).await else {
                continue;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = server.into_split();
                let upstream = async {
                    let mut buf = vec![0u8; 64 << 10];
                    while let Ok(n @ 1..) = from_client.read(&mut buf).await {
                        seen.lock().unwrap().extend_from_slice(&buf[..n]);
                        if to_server.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                };
                let downstream = tokio::io::copy(&mut from_server, &mut to_client);
                let _ = tokio::join!(upstream, downstream);
            });
        }
    });
    (address, recorded)
}

#[tokio::test]
async fn every_port_speaks_tls_and_plain_or_misled_callers_get_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TlsFiles::generate(dir.path());
    let c = tls_cluster(&certs).await;

    // The whole path under TLS: a write through the worker's gRPC port,
    // and a read of the cached blocks through its data port.
    let content = data((3 * MIB + 77) as usize, 4);
    let chunks: Vec<_> = content
        .chunks(400_000)
        .map(Bytes::copy_from_slice)
        .collect();
    c.fs.write_file("/tls/a.bin", WriteType::MustCache, chunks)
        .await
        .unwrap();
    let reader = c.fs.open("/tls/a.bin", None).await.unwrap();
    assert_eq!(
        &reader.read_at(0, u64::MAX / 2).await.unwrap()[..],
        &content[..]
    );
    let over_data_port = c.worker(0).metrics.bytes_read_data_port.get();
    assert!(over_data_port >= content.len() as u64, "{over_data_port}");

    // What goes over the wire is not readable: a path created through a
    // recording proxy is nowhere in the bytes it saw.
    let master = c.master().rpc_addr.to_string();
    let (proxy, seen) = recording_proxy(master.clone()).await;
    let through_proxy = connect(
        &c,
        &proxy,
        Some(ClientTls::load(&certs.ca(), None).unwrap()),
    )
    .await
    .unwrap();
    through_proxy
        .create_directory(alluxio_proto::grpc::CreateDirectoryRequest {
            path: "/tls/unmistakable-directory-name".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() > 100, "the proxy saw {} bytes", seen.len());
    let needle = b"unmistakable-directory-name";
    assert!(
        !seen.windows(needle.len()).any(|w| w == needle),
        "a path went over the wire in the clear"
    );

    // Peers that connect and never shake hands hold up nobody else.
    let mut stalled = Vec::new();
    for _ in 0..3 {
        stalled.push(TcpStream::connect(&master).await.unwrap());
    }
    connect(
        &c,
        &master,
        Some(ClientTls::load(&certs.ca(), None).unwrap()),
    )
    .await
    .unwrap();
    drop(stalled);

    // A plain client, a client trusting another CA, and one expecting
    // another server name are all refused, with the credentials that
    // would be good.
    let plain = connect(&c, &master, None).await.err().unwrap();
    assert!(plain.contains("transport error"), "{plain}");
    let other_dir = tempfile::tempdir().unwrap();
    let other_ca = TlsFiles::generate(other_dir.path()).ca();
    let misled = connect(&c, &master, Some(ClientTls::load(&other_ca, None).unwrap()))
        .await
        .err()
        .unwrap();
    assert!(misled.contains("transport error"), "{misled}");
    let renamed = ClientTls::load(&certs.ca(), Some("another-cluster.internal")).unwrap();
    assert!(connect(&c, &master, Some(renamed)).await.is_err());

    // The data port answers plain bytes with nothing at all.
    let mut raw = TcpStream::connect(c.worker(0).data_addr).await.unwrap();
    let request = Request::Read(ReadRequest {
        block_id: 1 << 24,
        offset: 0,
        length: 10,
    });
    raw.write_all(&request.encode()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), raw.read_to_end(&mut answer)).await;
    assert!(
        !answer.starts_with(&alluxio_common::data_protocol::MAGIC),
        "a data-port answer in the clear"
    );

    // Nothing was changed by the refused callers.
    let listed = c.client.list_status("/tls", false, None).await.unwrap();
    assert_eq!(listed.len(), 2);
}

#[tokio::test]
async fn renewed_certificates_are_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TlsFiles::generate(dir.path());
    let c = tls_cluster(&certs).await;
    let master = c.master().rpc_addr.to_string();
    let old_ca = dir.path().join("old-ca.crt");
    std::fs::copy(certs.ca(), &old_ca).unwrap();

    // A new CA and new certificates in place of the old files (as a
    // certificate manager replaces a Secret's): new connections get the
    // new certificate once the servers have looked at their files again.
    std::fs::remove_file(dir.path().join("ca.key")).unwrap();
    std::fs::remove_file(dir.path().join("ca.crt")).unwrap();
    certs.renew();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let new_ca = ClientTls::load(&certs.ca(), None).unwrap();
        if connect(&c, &master, Some(new_ca)).await.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let stale = connect(&c, &master, Some(ClientTls::load(&old_ca, None).unwrap())).await;
    assert!(stale.is_err(), "the old certificate is still served");

    // The worker, whose CA file changed under it too, still reaches the
    // master (its heartbeats), and serves its data port with the new one.
    let content = data((2 * MIB) as usize, 9);
    let chunks = vec![Bytes::from(content.clone())];
    let fs = alluxio_client::FileSystem::with_config(
        connect(
            &c,
            &master,
            Some(ClientTls::load(&certs.ca(), None).unwrap()),
        )
        .await
        .unwrap(),
        &c.config,
    );
    fs.write_file("/renewed.bin", WriteType::MustCache, chunks)
        .await
        .unwrap();
    let before = c.worker(0).metrics.bytes_read_data_port.get();
    let reader = fs.open("/renewed.bin", None).await.unwrap();
    assert_eq!(
        &reader.read_at(0, u64::MAX / 2).await.unwrap()[..],
        &content[..]
    );
    assert!(c.worker(0).metrics.bytes_read_data_port.get() > before);
    c.wait_for_workers(1).await;
}
