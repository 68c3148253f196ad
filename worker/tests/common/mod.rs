//! What the block-store model tests share: two small tiers that evict all
//! the time.

use alluxio_common::config::{TierConfig, TierDirConfig};
use alluxio_common::units::ByteSize;
use std::path::Path;

pub const KIB: u64 = 1 << 10;

/// A 512 KiB MEM tier and a 1 MiB HDD tier below `dir`.
pub fn small_tiers(dir: &Path) -> Vec<TierConfig> {
    [("MEM", 512 * KIB), ("HDD", 1024 * KIB)]
        .iter()
        .map(|(alias, quota)| TierConfig {
            alias: alias.to_string(),
            dirs: vec![TierDirConfig {
                path: dir.join(alias),
                quota: ByteSize(*quota),
            }],
        })
        .collect()
}
