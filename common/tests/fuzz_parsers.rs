//! Every parser of bytes or text a caller controls, fed mutated and random
//! inputs (`alluxio_testkit::fuzz`): data-port requests and answers,
//! tokens, capabilities, act-as headers, Alluxio paths and configuration
//! files. Each must answer Ok or Err, never panic.

use alluxio_common::auth::{ActAs, ClusterKey, Role};
use alluxio_common::config::AlluxioConfig;
use alluxio_common::data_protocol::{
    AnswerHeader, ReadRequest, Request, Status, ANSWER_HEADER_LEN, REQUEST_LEN,
};
use alluxio_testkit::fuzz;
use std::time::Duration;

/// Recomputes the trailing CRC32 of a fixed-size header, so mutations
/// reach the decoding behind the checksum.
fn fix_header_crc(input: &mut [u8], len: usize) {
    if input.len() == len {
        let crc = crc32fast::hash(&input[..len - 4]);
        input[len - 4..].copy_from_slice(&crc.to_le_bytes());
    }
}

#[test]
fn data_port_requests_and_answers() {
    let requests: Vec<Vec<u8>> = [
        Request::Read(ReadRequest {
            block_id: 5 << 24,
            offset: 1,
            length: 64 << 20,
        }),
        Request::Authenticate { token_len: 180 },
        Request::Capability {
            file_id: 5,
            len: 150,
        },
    ]
    .iter()
    .map(|r| r.encode().to_vec())
    .collect();
    fuzz::run(
        "data-port requests",
        &requests,
        |b| fix_header_crc(b, REQUEST_LEN),
        |b| {
            if let Ok(raw) = <&[u8; REQUEST_LEN]>::try_from(b) {
                let _ = Request::decode(raw);
            }
        },
    );
    let answers: Vec<Vec<u8>> = [Status::Ok, Status::Forbidden, Status::Busy]
        .iter()
        .map(|&status| AnswerHeader { status, length: 12 }.encode().to_vec())
        .collect();
    fuzz::save_seeds("data_port", &[requests, answers.clone()].concat());
    fuzz::run(
        "data-port answers",
        &answers,
        |b| fix_header_crc(b, ANSWER_HEADER_LEN),
        |b| {
            if let Ok(raw) = <&[u8; ANSWER_HEADER_LEN]>::try_from(b) {
                let _ = AnswerHeader::decode(raw);
            }
        },
    );
}

#[test]
fn tokens_capabilities_and_act_as_headers() {
    let key = ClusterKey::generate();
    let seeds = vec![
        key.issue(
            "alice",
            &["staff".into()],
            Role::User,
            Duration::from_secs(60),
        )
        .into_bytes(),
        key.issue_capability(42, "alice").into_bytes(),
        b"bob:staff,dev".to_vec(),
    ];
    fuzz::save_seeds("credentials", &seeds);
    fuzz::run(
        "credentials",
        &seeds,
        |_| {},
        |b| {
            let text = String::from_utf8_lossy(b);
            let _ = key.verify(&text);
            let _ = key.verify_capability(&text, 42);
            let _ = ActAs::parse(&text);
            let _ = ClusterKey::from_hex(&text);
        },
    );
}

#[test]
fn alluxio_paths_and_configuration_files() {
    let seeds = vec![
        b"/data/raw/part-0000.parquet".to_vec(),
        b"/a/../b/./c//d".to_vec(),
        b"master:\n  rpc_port: 19998\n  mount_table_root_options: {allow_http: true}\nworker:\n  tiers: [{alias: MEM, dirs: [{path: /m, quota: 1GiB}]}]\nsecurity:\n  authentication: TOKEN\n".to_vec(),
    ];
    fuzz::save_seeds(
        "paths",
        &[
            b"/data/raw/part-0000.parquet\ns3://bucket/data".to_vec(),
            b"s3://bucket/data/raw/../x\ns3://bucket/data".to_vec(),
            seeds[1].clone(),
        ],
    );
    fuzz::save_seeds(
        "config",
        &[
            seeds[2].clone(),
            b"master.rpc_port=19998\nworker.tiers=[]\nuser.rpc_timeout=2min".to_vec(),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alluxio.yaml");
    fuzz::run(
        "paths and configuration",
        &seeds,
        |_| {},
        |b| {
            let text = String::from_utf8_lossy(b);
            let _ = alluxio_common::AlluxioPath::new(&text);
            std::fs::write(&file, b).unwrap();
            let _ = AlluxioConfig::load_from(Some(&file), &[], &[]);
            let _ = AlluxioConfig::load_from(None, &[], &[text.to_string()]);
        },
    );
}
