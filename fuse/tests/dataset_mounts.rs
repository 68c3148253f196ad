//! Read-only dataset mounts, a data loader's case: the kernel keeps the
//! entries and attributes of completed files, readers going through a
//! directory of small files in order get the next files fetched ahead,
//! and with `no_open` the kernel opens files without asking the daemon.
//! Needs root and /dev/fuse.

mod common;

use alluxio_proto::grpc::WriteType;
use alluxio_testkit::cluster::{start, Cluster, MIB};
use bytes::Bytes;
use common::{blocking, errno, fuse_available, mount};
use std::path::PathBuf;

const FILES: usize = 24;

async fn write_small_files(c: &Cluster, dir: &str, write_type: WriteType) {
    for i in 0..FILES {
        c.fs.write_file(
            &format!("{dir}/f{i:02}"),
            write_type,
            [Bytes::from(format!("file {i:02} of {dir}"))],
        )
        .await
        .unwrap();
    }
}

/// Lists `dir` and reads every file in the listing's order, as a data
/// loader does; checks what each holds.
fn read_in_listing_order(dir: PathBuf, alluxio_dir: &'static str) {
    read_in_listing_order_pausing(dir, alluxio_dir, std::time::Duration::ZERO)
}

/// The same, pausing after each file (a loader working on each sample).
fn read_in_listing_order_pausing(
    dir: PathBuf,
    alluxio_dir: &'static str,
    pause: std::time::Duration,
) {
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), FILES);
    for name in names {
        let text = std::fs::read_to_string(dir.join(&name)).unwrap();
        assert_eq!(text, format!("file {} of {alluxio_dir}", &name[1..]));
        std::thread::sleep(pause);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_kernel_keeps_completed_files_of_read_only_mounts() {
    if !fuse_available() {
        return;
    }
    let c = start(1, 64 * MIB, |_| {}).await;
    write_small_files(&c, "/ds", WriteType::CacheThrough).await;
    // Zero timeouts: what the kernel keeps, it keeps because the files
    // are complete and the mount read-only, not because of the options.
    let options = "entry_timeout=0,attr_timeout=0";
    let ro = mount(&c, "/ds", &[&format!("ro,{options}")]).await;
    let rw = mount(&c, "/ds", &[options]).await;
    for m in [&ro, &rw] {
        let dir = m.point.clone();
        blocking(move || read_in_listing_order(dir, "/ds")).await;
    }
    let (ro_lookups, rw_lookups) = (ro.requests("lookup"), rw.requests("lookup"));
    for m in [&ro, &rw] {
        let dir = m.point.clone();
        blocking(move || read_in_listing_order(dir, "/ds")).await;
    }
    assert_eq!(
        ro.requests("lookup"),
        ro_lookups,
        "the kernel asked the read-only mount again for completed files"
    );
    // `ls -l` asks for every file's ACL; the first refusal (ENOSYS)
    // tells the kernel to answer such questions itself. The listing
    // itself the kernel keeps (FOPEN_CACHE_DIR): no readdir reaches the
    // daemon, and no listing the master.
    let listed = ro.requests("readdir") + ro.requests("readdirplus");
    let master_listings = c.master_rpc_calls("ListStatus").await;
    let dir = ro.point.clone();
    blocking(move || {
        for _ in 0..2 {
            let ls = std::process::Command::new("ls")
                .arg("-l")
                .arg(&dir)
                .output()
                .unwrap();
            assert!(ls.status.success());
            assert_eq!(
                String::from_utf8(ls.stdout).unwrap().lines().count(),
                FILES + 1
            );
        }
    })
    .await;
    let xattr_requests = ro.requests("getxattr") + ro.requests("listxattr");
    assert!(xattr_requests <= 2, "{xattr_requests} xattr requests");
    assert_eq!(ro.requests("readdir") + ro.requests("readdirplus"), listed);
    assert_eq!(c.master_rpc_calls("ListStatus").await, master_listings);
    assert!(
        rw.requests("lookup") >= rw_lookups + FILES as u64,
        "a read-write mount keeps the options' timeouts: {} lookups before, {} after",
        rw_lookups,
        rw.requests("lookup")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_order_readers_get_the_next_files_fetched_ahead() {
    if !fuse_available() {
        return;
    }
    let c = start(1, 64 * MIB, |_| {}).await;
    // In the under storage only: nothing cached yet, as on a first epoch.
    write_small_files(&c, "/ro", WriteType::Through).await;
    write_small_files(&c, "/rw", WriteType::Through).await;
    let ro = mount(&c, "/ro", &["ro,prefetch_files=4"]).await;
    let rw = mount(&c, "/rw", &[]).await;
    let (ro_dir, rw_dir) = (ro.point.clone(), rw.point.clone());
    // A pause per file, as a loader spends on each sample: the fetches
    // ahead keep up even on a loaded machine.
    let pause = std::time::Duration::from_millis(30);
    blocking(move || read_in_listing_order_pausing(ro_dir, "/ro", pause)).await;
    blocking(move || read_in_listing_order_pausing(rw_dir, "/rw", pause)).await;

    let (fetched, hits) = (
        ro.metrics.prefetched_files.get(),
        ro.metrics.prefetch_hits.get(),
    );
    assert!(
        hits >= FILES as u64 / 2,
        "only {hits} of {FILES} opens found their file fetched ahead"
    );
    assert!(
        fetched >= hits && fetched <= FILES as u64,
        "{fetched} fetched"
    );
    assert_eq!(
        rw.metrics.prefetched_files.get(),
        0,
        "prefetch is off by default where files are written"
    );
    // What the prefetcher read went through the cache like any read.
    let info = c.fs.master().get_status("/ro/f10", None).await.unwrap();
    assert_eq!(info.in_alluxio_percentage, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_open_mounts_read_without_opens_or_flushes() {
    if !fuse_available() {
        return;
    }
    let c = start(1, 64 * MIB, |_| {}).await;
    write_small_files(&c, "/ds", WriteType::CacheThrough).await;
    let m = mount(&c, "/ds", &["ro,no_open"]).await;
    for _ in 0..2 {
        let dir = m.point.clone();
        blocking(move || read_in_listing_order(dir, "/ds")).await;
    }
    // The first open learns that the daemon does not take opens (ENOSYS,
    // and the open succeeds); the first close, that it does not take
    // flushes. From then on the kernel asks for neither.
    assert!(m.requests("open") <= 1, "{} opens", m.requests("open"));
    assert!(m.requests("flush") <= 1, "{} flushes", m.requests("flush"));
    assert_eq!(m.requests("release"), 0);
    assert!(m.requests("read") >= 1);

    // Nothing gets written through it.
    let f = m.path("f00");
    blocking(move || {
        assert_eq!(
            errno(std::fs::OpenOptions::new().append(true).open(&f)),
            libc::EROFS
        );
        assert_eq!(
            errno(std::fs::write(f.with_file_name("new"), b"x")),
            libc::EROFS
        );
        assert_eq!(std::fs::read(&f).unwrap(), b"file 00 of /ds");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kept_listing_shows_new_files_once_the_metadata_ttl_passes() {
    if !fuse_available() {
        return;
    }
    let c = start(1, 64 * MIB, |_| {}).await;
    write_small_files(&c, "/ds", WriteType::CacheThrough).await;
    let m = mount(&c, "/ds", &["ro,metadata_cache_ttl=1"]).await;
    let count = |dir: PathBuf| std::fs::read_dir(dir).unwrap().count();
    let dir = m.point.clone();
    assert_eq!(blocking(move || count(dir)).await, FILES);
    c.fs.write_file("/ds/new", WriteType::CacheThrough, [Bytes::from("new")])
        .await
        .unwrap();
    // The directory's modification time changed: once the daemon's
    // metadata of it expires, the kernel drops the listing it kept.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let dir = m.point.clone();
        if blocking(move || count(dir)).await == FILES + 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new file never appeared in the kept listing"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let f = m.path("new");
    assert_eq!(blocking(move || std::fs::read(f).unwrap()).await, b"new");
}
