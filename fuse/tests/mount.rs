//! Real FUSE mounts of an in-process cluster, used through `std::fs` and
//! libc like any program would. Needs root and /dev/fuse (CI has both; a
//! missing prerequisite fails under CI).

mod common;

use alluxio_proto::grpc::WriteType;
use alluxio_testkit::cluster::{data, start, MIB};
use bytes::Bytes;
use common::{blocking, errno, fuse_available, mount};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_and_directory_operations_through_std_fs() {
    if !fuse_available() {
        return;
    }
    let c = start(1, 256 * MIB, |_| {}).await;
    let m = mount(&c, "/", &[]).await;
    let (root, ufs) = (m.point.clone(), c.ufs.clone());
    let content = data((3 * MIB + 777) as usize, 3);
    let written = content.clone();
    blocking(move || {
        std::fs::create_dir(root.join("d")).unwrap();
        std::fs::create_dir_all(root.join("d/e/f")).unwrap();
        let mut f = std::fs::File::create(root.join("d/file.bin")).unwrap();
        for piece in written.chunks(100_000) {
            f.write_all(piece).unwrap();
        }
        drop(f);
        // Readable right after close, through the mount and from the UFS.
        assert_eq!(std::fs::read(root.join("d/file.bin")).unwrap(), written);
        assert_eq!(std::fs::read(ufs.join("d/file.bin")).unwrap(), written);
        let meta = std::fs::metadata(root.join("d/file.bin")).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.len(), written.len() as u64);
        assert!(std::fs::metadata(root.join("d/e")).unwrap().is_dir());

        let mut names: Vec<String> = std::fs::read_dir(root.join("d"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, vec!["e", "file.bin"]);

        std::fs::rename(root.join("d/file.bin"), root.join("d/e/moved.bin")).unwrap();
        std::fs::rename(root.join("d/e"), root.join("renamed")).unwrap();
        assert_eq!(
            std::fs::read(root.join("renamed/moved.bin")).unwrap(),
            written
        );
        assert!(!root.join("d/e").exists());
        assert!(ufs.join("renamed/moved.bin").exists());

        // rename(2) over an existing file replaces it.
        std::fs::write(root.join("renamed/small"), b"small").unwrap();
        std::fs::rename(root.join("renamed/small"), root.join("renamed/moved.bin")).unwrap();
        assert_eq!(
            std::fs::read(root.join("renamed/moved.bin")).unwrap(),
            b"small"
        );

        std::fs::remove_file(root.join("renamed/moved.bin")).unwrap();
        std::fs::remove_dir(root.join("renamed/f")).unwrap();
        std::fs::remove_dir(root.join("renamed")).unwrap();
        assert!(!ufs.join("renamed").exists());

        // statfs reports the workers' capacity.
        // SAFETY: statvfs is plain old data, valid when zeroed.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        let cpath = std::ffi::CString::new(root.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path and a writable struct.
        let rc = unsafe { libc::statvfs(cpath.as_ptr(), &mut st) };
        assert_eq!(rc, 0);
        assert_eq!(st.f_blocks * st.f_frsize, 256 * MIB);
        assert!(st.f_bfree <= st.f_blocks);
    })
    .await;
    // Other clients see what the mount wrote once the kernel has released
    // the file (asynchronously, just after the last close).
    assert!(
        c.fs.open("/d", None).await.is_err(),
        "a directory is no file"
    );
    let root = m.point.clone();
    blocking(move || std::fs::write(root.join("d/last"), b"seen by the client"))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !c
        .client
        .get_status("/d/last", None)
        .await
        .unwrap()
        .completed
    {
        assert!(Instant::now() < deadline, "never completed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = c.fs.open("/d/last", None).await.unwrap();
    assert_eq!(&r.read_at(0, 100).await.unwrap()[..], b"seen by the client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn large_directories_are_listed_completely() {
    if !fuse_available() {
        return;
    }
    let c = start(1, 64 * MIB, |cfg| cfg.master.list_batch_size = 100).await;
    for i in 0..1500 {
        c.fs.write_file(
            &format!("/big/f{i:05}"),
            WriteType::MustCache,
            [Bytes::from_static(b"x")],
        )
        .await
        .unwrap();
    }
    let m = mount(&c, "/big", &[]).await;
    let root = m.point.clone();
    let (names, sizes) = blocking(move || {
        let mut names = Vec::new();
        let mut sizes = 0;
        for e in std::fs::read_dir(&root).unwrap() {
            let e = e.unwrap();
            sizes += e.metadata().unwrap().len();
            names.push(e.file_name().into_string().unwrap());
        }
        names.sort();
        (names, sizes)
    })
    .await;
    let expected: Vec<String> = (0..1500).map(|i| format!("f{i:05}")).collect();
    assert_eq!(names, expected);
    assert_eq!(sizes, 1500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_operations_get_the_expected_errno() {
    if !fuse_available() {
        return;
    }
    let c = start(1, 64 * MIB, |_| {}).await;
    let m = mount(&c, "/", &[]).await;
    let root = m.point.clone();
    blocking(move || {
        let f = root.join("done");
        std::fs::write(&f, b"complete").unwrap();
        // Write-once: no writing into a completed file...
        let open_rw = std::fs::OpenOptions::new().write(true).open(&f);
        assert_eq!(errno(open_rw), libc::EPERM);
        let append = std::fs::OpenOptions::new().append(true).open(&f);
        assert_eq!(errno(append), libc::EPERM);
        // ...but O_TRUNC replaces it.
        std::fs::write(&f, b"replaced").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"replaced");
        // Truncating to another size is refused; to the same size is fine.
        let cpath = std::ffi::CString::new(f.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::truncate(cpath.as_ptr(), 3) }, -1);
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::EOPNOTSUPP)
        );
        // SAFETY: as above.
        assert_eq!(unsafe { libc::truncate(cpath.as_ptr(), 8) }, 0);
        // Writes must be sequential.
        let mut w = std::fs::File::create(root.join("seq")).unwrap();
        w.write_all(b"abc").unwrap();
        w.seek(SeekFrom::Start(10)).unwrap();
        assert_eq!(errno(w.write_all(b"x")), libc::EINVAL);
        w.seek(SeekFrom::Start(3)).unwrap();
        w.write_all(b"def").unwrap();
        drop(w);
        assert_eq!(std::fs::read(root.join("seq")).unwrap(), b"abcdef");
        // No links, no special files, no xattrs.
        assert_eq!(
            errno(std::os::unix::fs::symlink("done", root.join("ln"))),
            libc::EOPNOTSUPP
        );
        assert_eq!(
            errno(std::fs::hard_link(&f, root.join("hard"))),
            libc::EOPNOTSUPP
        );
        let cpath = std::ffi::CString::new(f.to_str().unwrap()).unwrap();
        let name = std::ffi::CString::new("user.x").unwrap();
        // SAFETY: valid C strings; a zero-size query writes nothing.
        let rc = unsafe { libc::getxattr(cpath.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) };
        assert_eq!(rc, -1);
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::EOPNOTSUPP)
        );
        // Namespace errors.
        std::fs::create_dir(root.join("full")).unwrap();
        std::fs::write(root.join("full/x"), b"x").unwrap();
        assert_eq!(
            errno(std::fs::remove_dir(root.join("full"))),
            libc::ENOTEMPTY
        );
        assert_eq!(errno(std::fs::remove_dir(root.join("done"))), libc::ENOTDIR);
        assert_eq!(errno(std::fs::remove_file(root.join("full"))), libc::EISDIR);
        assert_eq!(
            errno(std::fs::remove_file(root.join("missing"))),
            libc::ENOENT
        );
        assert_eq!(errno(std::fs::create_dir(root.join("full"))), libc::EEXIST);
        assert_eq!(errno(std::fs::read(root.join("missing"))), libc::ENOENT);
    })
    .await;
    let refused_opens = m
        .metrics
        .errors
        .get_or_create(&alluxio_fuse::metrics::ErrorLabels {
            op: "open",
            errno: "EPERM".to_string(),
        })
        .get();
    assert!(refused_opens >= 2, "{refused_opens}");

    // A read-only mount refuses every change with EROFS.
    let ro = mount(&c, "/", &["ro"]).await;
    let root = ro.point.clone();
    blocking(move || {
        assert_eq!(std::fs::read(root.join("done")).unwrap(), b"replaced");
        assert_eq!(errno(std::fs::write(root.join("new"), b"x")), libc::EROFS);
        assert_eq!(errno(std::fs::create_dir(root.join("nd"))), libc::EROFS);
        assert_eq!(errno(std::fs::remove_file(root.join("done"))), libc::EROFS);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn big_files_concurrent_readers_and_mmap_with_and_without_passthrough() {
    if !fuse_available() {
        return;
    }
    let c = start(1, 256 * MIB, |_| {}).await;
    let content = Arc::new(data((5 * MIB + 4321) as usize, 9));
    let chunks: Vec<Bytes> = content
        .chunks(MIB as usize)
        .map(Bytes::copy_from_slice)
        .collect();
    c.fs.write_file("/big.bin", WriteType::MustCache, chunks)
        .await
        .unwrap();
    c.wait_cached("/big.bin", 100).await;

    for (options, passthrough) in [(vec![], true), (vec!["nopassthrough"], false)] {
        let m = mount(&c, "/", &options).await;
        let file = m.path("big.bin");
        let expected = content.clone();
        blocking(move || {
            // Concurrent whole reads and random positional reads.
            let readers: Vec<_> = (0..8)
                .map(|i| {
                    let (file, expected) = (file.clone(), expected.clone());
                    std::thread::spawn(move || {
                        if i % 2 == 0 {
                            assert!(std::fs::read(&file).unwrap() == *expected);
                        } else {
                            let f = std::fs::File::open(&file).unwrap();
                            for _ in 0..50 {
                                let off = rand::random_range(0..expected.len() - 5000);
                                let mut buf = vec![0u8; 5000];
                                f.read_exact_at(&mut buf, off as u64).unwrap();
                                assert_eq!(&buf[..], &expected[off..off + 5000]);
                            }
                        }
                    })
                })
                .collect();
            for r in readers {
                r.join().unwrap();
            }
            // mmap reads the same bytes.
            let f = std::fs::File::open(&file).unwrap();
            let len = f.metadata().unwrap().len() as usize;
            assert_eq!(len, expected.len());
            // SAFETY: a private read-only mapping of an open file, unmapped below.
            unsafe {
                let p = libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE,
                    std::os::fd::AsRawFd::as_raw_fd(&f),
                    0,
                );
                assert_ne!(p, libc::MAP_FAILED);
                let mapped = std::slice::from_raw_parts(p as *const u8, len);
                assert!(mapped == &expected[..], "mmap content differs");
                libc::munmap(p, len);
            }
            // A short read at the end of the file.
            let mut f = std::fs::File::open(&file).unwrap();
            f.seek(SeekFrom::End(-10)).unwrap();
            let mut tail = Vec::new();
            f.read_to_end(&mut tail).unwrap();
            assert_eq!(&tail[..], &expected[expected.len() - 10..]);
        })
        .await;
        let opens = m.metrics.passthrough_opens.get();
        let daemon = m.metrics.bytes_read_daemon.get();
        if passthrough {
            assert!(opens >= 10, "passthrough opens: {opens}");
            assert_eq!(daemon, 0, "every read went through passthrough");
        } else {
            assert_eq!(opens, 0);
            assert!(daemon >= content.len() as u64, "daemon bytes {daemon}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ufs_changes_appear_after_the_sync_interval() {
    if !fuse_available() {
        return;
    }
    let c = start(1, 64 * MIB, |_| {}).await;
    let m = mount(&c, "/", &["sync_interval=0,attr_timeout=0,entry_timeout=0"]).await;
    let (root, ufs) = (m.point.clone(), c.ufs.clone());
    blocking(move || {
        std::fs::create_dir_all(&ufs).unwrap();
        std::fs::write(ufs.join("behind.txt"), b"first version").unwrap();
        assert_eq!(
            std::fs::read(root.join("behind.txt")).unwrap(),
            b"first version"
        );
        let ino = std::fs::metadata(root.join("behind.txt")).unwrap().ino();
        // Changed behind the cluster's back: a new length, a new file.
        std::fs::write(ufs.join("behind.txt"), b"second, longer version").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = std::fs::read(root.join("behind.txt")).unwrap();
            if now == b"second, longer version" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "still {:?}",
                String::from_utf8_lossy(&now)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_ne!(
            std::fs::metadata(root.join("behind.txt")).unwrap().ino(),
            ino
        );
        std::fs::remove_file(ufs.join("behind.txt")).unwrap();
        let names: Vec<_> = std::fs::read_dir(&root).unwrap().collect();
        assert!(names.is_empty(), "{names:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_wait_for_a_restarting_master() {
    if !fuse_available() {
        return;
    }
    let port = alluxio_testkit::free_port().expect("a free port");
    let mut c = start(1, 64 * MIB, |cfg| cfg.master.rpc_port = port).await;
    c.fs.write_file(
        "/kept",
        WriteType::CacheThrough,
        [Bytes::from_static(b"kept")],
    )
    .await
    .unwrap();
    let m = mount(
        &c,
        "/",
        &["attr_timeout=0,entry_timeout=0,retry_timeout=60"],
    )
    .await;
    if let Some(master) = c.master.take() {
        master.shutdown().await;
    }
    // A read issued while the master is down waits for it.
    let root = m.point.clone();
    let read = tokio::task::spawn_blocking(move || std::fs::read(root.join("kept")));
    tokio::time::sleep(Duration::from_millis(500)).await;
    if read.is_finished() {
        panic!(
            "the read should wait for the master, but ended with {:?}",
            read.await.unwrap().map(|b| b.len())
        );
    }
    c.restart_master().await;
    assert_eq!(read.await.unwrap().unwrap(), b"kept");

    // With a short retry budget, a master that stays away means EIO.
    let short = mount(&c, "/", &["attr_timeout=0,entry_timeout=0,retry_timeout=1"]).await;
    if let Some(master) = c.master.take() {
        master.shutdown().await;
    }
    let root = short.point.clone();
    let failed = blocking(move || errno(std::fs::metadata(root.join("kept")))).await;
    assert_eq!(failed, libc::EIO);
    assert!(
        short
            .metrics
            .errors
            .get_or_create(&alluxio_fuse::metrics::ErrorLabels {
                op: "lookup",
                errno: "EIO".to_string(),
            })
            .get()
            + short
                .metrics
                .errors
                .get_or_create(&alluxio_fuse::metrics::ErrorLabels {
                    op: "getattr",
                    errno: "EIO".to_string(),
                })
                .get()
            >= 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_survive_a_worker_restart() {
    if !fuse_available() {
        return;
    }
    let mut c = start(1, 64 * MIB, |_| {}).await;
    let content = data((2 * MIB + 99) as usize, 4);
    let chunks: Vec<Bytes> = content
        .chunks(MIB as usize)
        .map(Bytes::copy_from_slice)
        .collect();
    c.fs.write_file("/persisted", WriteType::CacheThrough, chunks)
        .await
        .unwrap();
    let m = mount(&c, "/", &["nopassthrough,attr_timeout=0,entry_timeout=0"]).await;
    let file = m.path("persisted");
    // The worker is gone: reads fall back to the UFS.
    if let Some(w) = c.workers[0].take() {
        w.shutdown().await;
    }
    let (f, expected) = (file.clone(), content.clone());
    blocking(move || assert!(std::fs::read(&f).unwrap() == expected)).await;
    // It comes back with its cache: reads use it again, same mount.
    let w = c.start_worker(0, 64 * MIB).await;
    c.workers[0] = Some(w);
    c.wait_for_workers(1).await;
    let (f, expected) = (file.clone(), content.clone());
    blocking(move || {
        // Drop the kernel's copy so the daemon really reads again.
        let fd = std::fs::File::open(&f).unwrap();
        // SAFETY: advisory call on an open descriptor.
        unsafe {
            libc::posix_fadvise(
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                0,
                0,
                libc::POSIX_FADV_DONTNEED,
            )
        };
        assert!(std::fs::read(&f).unwrap() == expected);
    })
    .await;
    assert!(m.metrics.bytes_read_daemon.get() >= 2 * content.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn warm_small_files_are_read_without_asking_the_master() {
    if !fuse_available() {
        return;
    }
    let c = start(1, 64 * MIB, |_| {}).await;
    for i in 0..20 {
        c.fs.write_file(
            &format!("/small/f{i}"),
            WriteType::CacheThrough,
            [Bytes::from(format!("file {i}"))],
        )
        .await
        .unwrap();
    }
    // The kernel asks the daemon every time (no kernel cache); the daemon
    // answers completed files from what it holds.
    let m = mount(
        &c,
        "/",
        &["attr_timeout=0,entry_timeout=0,metadata_cache_ttl=600"],
    )
    .await;
    let root = m.point.clone();
    let read_all = move || {
        // A data loader's pattern: list the directory (here with `ls`, a
        // process of its own that is gone when its requests are answered),
        // then read each file.
        let ls = std::process::Command::new("ls")
            .arg(root.join("small"))
            .output()
            .unwrap();
        let mut names: Vec<std::ffi::OsString> = String::from_utf8(ls.stdout)
            .unwrap()
            .lines()
            .map(Into::into)
            .collect();
        names.sort();
        for name in names {
            let path = root.join("small").join(&name);
            let text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(text, format!("file {}", &name.to_str().unwrap()[1..]));
        }
    };
    blocking(read_all.clone()).await;
    let before = c.master_rpc_calls("GetStatus").await;
    for _ in 0..3 {
        blocking(read_all.clone()).await;
    }
    let after = c.master_rpc_calls("GetStatus").await;
    assert_eq!(
        after,
        before,
        "warm reads asked the master {} times",
        after - before
    );
    assert!(m.metrics.metadata_cache_hits.get() >= 60);

    // What this mount changes is never answered from the cache.
    let (root, ufs) = (m.point.clone(), c.ufs.clone());
    blocking(move || {
        std::fs::write(root.join("small/f0"), b"replaced").unwrap();
        assert_eq!(std::fs::read(root.join("small/f0")).unwrap(), b"replaced");
        std::fs::rename(root.join("small/f1"), root.join("small/moved")).unwrap();
        assert!(!root.join("small/f1").exists());
        assert_eq!(std::fs::read(root.join("small/moved")).unwrap(), b"file 1");
        std::fs::remove_file(root.join("small/f2")).unwrap();
        assert!(!root.join("small/f2").exists());
        assert!(!ufs.join("small/f2").exists());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_directory_files_are_passed_through_from_the_ufs_then_cached() {
    if !fuse_available() {
        return;
    }
    let c = start(1, 256 * MIB, |_| {}).await;
    let content = data((3 * MIB + 555) as usize, 11);
    std::fs::create_dir_all(&c.ufs).unwrap();
    for name in ["cold.bin", "changed.bin", "not-passed.bin"] {
        std::fs::write(c.ufs.join(name), &content).unwrap();
    }
    // No metadata held by the daemon: the second open below asks the
    // master where the file is cached now.
    let m = mount(&c, "/", &["sync_interval=-1,metadata_cache_ttl=0"]).await;
    let (point, expected) = (m.point.clone(), content.clone());
    blocking(move || assert!(std::fs::read(point.join("cold.bin")).unwrap() == expected)).await;
    // The kernel read the UFS object itself, and nothing came to the daemon.
    assert_eq!(m.metrics.ufs_passthrough_opens.get(), 1);
    assert_eq!(m.metrics.bytes_read_daemon.get(), 0);
    // The worker caches the file after the close; the next open reads its copy.
    c.wait_cached("/cold.bin", 100).await;
    assert_eq!(m.metrics.cached_behind_bytes.get(), content.len() as u64);
    let (point, expected) = (m.point.clone(), content.clone());
    blocking(move || assert!(std::fs::read(point.join("cold.bin")).unwrap() == expected)).await;
    assert_eq!(m.metrics.ufs_passthrough_opens.get(), 1);
    assert_eq!(m.metrics.passthrough_opens.get(), 2);

    // An object that is no longer the one the master knows (modified
    // since, no sync) is not handed to the kernel: the workers read it.
    let point = m.point.clone();
    blocking(move || std::fs::metadata(point.join("changed.bin")).unwrap()).await;
    let ufs_file = std::fs::File::options()
        .write(true)
        .open(c.ufs.join("changed.bin"))
        .unwrap();
    ufs_file
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    let point = m.point.clone();
    let read = blocking(move || std::fs::read(point.join("changed.bin")).unwrap()).await;
    assert_eq!(read.len(), content.len());
    assert_eq!(m.metrics.ufs_passthrough_opens.get(), 1);
    assert!(m.metrics.bytes_read_daemon.get() >= content.len() as u64);

    // Nor with `noufs_passthrough`.
    let m = mount(&c, "/", &["noufs_passthrough"]).await;
    let (point, expected) = (m.point.clone(), content.clone());
    blocking(move || assert!(std::fs::read(point.join("not-passed.bin")).unwrap() == expected))
        .await;
    assert_eq!(m.metrics.ufs_passthrough_opens.get(), 0);
    assert!(m.metrics.bytes_read_daemon.get() >= content.len() as u64);
}
