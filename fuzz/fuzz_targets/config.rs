//! Configuration as a user writes it: the input as an `alluxio.yaml`
//! file, and each of its lines as a `-D section.key=value` flag. Loading
//! answers a configuration or an error naming the key, never a panic.
#![no_main]

use alluxio_common::config::AlluxioConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = AlluxioConfig::from_layers(Some(("alluxio.yaml", &text)), &[], &[]);
    let flags: Vec<String> = text.lines().map(str::to_string).collect();
    let _ = AlluxioConfig::from_layers(None, &[], &flags);
});
