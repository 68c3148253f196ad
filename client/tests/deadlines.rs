//! Every call to the master has a deadline: a master that accepts the
//! connection and then never answers (hung, or stopped with SIGSTOP) turns
//! into an error instead of a wait without end.

use alluxio_client::MasterClient;
use alluxio_common::auth::Credentials;
use alluxio_common::AlluxioError;
use std::time::Duration;

#[tokio::test]
async fn a_master_that_never_answers_is_an_error() {
    alluxio_common::rpc::set_call_timeout(Duration::from_millis(500));
    // Accepts connections and holds them open without a byte in return.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let master = MasterClient::connect_lazy(&address, Credentials::anonymous()).unwrap();
    // A generous outer bound only so that a regression fails instead of
    // hanging the suite; the deadline is what ends the call.
    let outcome = tokio::time::timeout(Duration::from_secs(60), master.get_status("/", None))
        .await
        .expect("the call came back");
    let err = outcome.unwrap_err();
    assert!(matches!(err, AlluxioError::Unavailable(_)), "{err}");
    let listing =
        tokio::time::timeout(Duration::from_secs(60), master.list_status("/", true, None))
            .await
            .expect("the listing came back");
    assert!(listing.is_err());
    held.abort();
}
