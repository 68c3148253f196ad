//! Alluxio paths and UFS paths inside a mount, from any caller. The
//! input's first line is a path, the second a mount URI. A path that is
//! accepted is normal (re-parsing it gives itself) and has no `.`, `..`
//! or empty component; a UFS path accepted inside a mount stays inside it.
#![no_main]

use alluxio_common::AlluxioPath;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (first, second) = text
        .split_once('\n')
        .unwrap_or((&text, "s3://bucket/prefix"));
    if let Ok(path) = AlluxioPath::new(first) {
        let again = AlluxioPath::new(path.as_str()).expect("a normal path parses again");
        assert_eq!(again, path, "{first:?}: normalising twice differs");
        assert!(
            path.components()
                .all(|c| !c.is_empty() && c != "." && c != ".."),
            "{first:?} kept a bad component: {path:?}"
        );
        if let Some(parent) = path.parent() {
            assert!(
                parent.is_prefix_of(&path),
                "{path:?} is not under its parent"
            );
        }
    }
    if let Ok(rest) = alluxio_ufs::path_in_mount(first, second) {
        assert!(
            rest.is_empty()
                || rest
                    .split('/')
                    .all(|c| !c.is_empty() && c != "." && c != ".."),
            "{first:?} in {second:?} gave {rest:?}"
        );
    }
});
