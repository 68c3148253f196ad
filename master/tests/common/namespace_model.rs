//! The namespace as a plain map of paths: what the master's tree must
//! behave as (`model.rs` checks it step by step, `model_concurrent.rs`
//! checks concurrent histories against it with a linearizability tester).

use alluxio_client::MasterClient;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Directory,
    File,
}

/// What the namespace should hold: every path but the root, and its kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Model(pub BTreeMap<String, Kind>);

pub fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

impl Model {
    pub fn parent_is_directory(&self, path: &str) -> bool {
        let parent = parent_of(path);
        parent == "/" || self.0.get(parent) == Some(&Kind::Directory)
    }

    pub fn create(&mut self, path: &str, kind: Kind) -> bool {
        if self.0.contains_key(path) || !self.parent_is_directory(path) {
            return false;
        }
        self.0.insert(path.to_string(), kind);
        true
    }

    pub fn below<'a>(&'a self, path: &'a str) -> impl Iterator<Item = String> + 'a {
        let prefix = format!("{path}/");
        self.0
            .keys()
            .filter(move |p| *p == path || p.starts_with(&prefix))
            .cloned()
    }

    pub fn delete(&mut self, path: &str) -> bool {
        let gone: Vec<String> = self.below(path).collect();
        for p in &gone {
            self.0.remove(p);
        }
        !gone.is_empty()
    }

    pub fn rename(&mut self, src: &str, dst: &str) -> bool {
        let into_itself = dst == src || dst.starts_with(&format!("{src}/"));
        if !self.0.contains_key(src)
            || self.0.contains_key(dst)
            || !self.parent_is_directory(dst)
            || into_itself
        {
            return false;
        }
        let moved: Vec<String> = self.below(src).collect();
        for old in moved {
            let kind = self.0.remove(&old).expect("listed");
            self.0.insert(format!("{dst}{}", &old[src.len()..]), kind);
        }
        true
    }
}

/// The whole tree as the master lists it (no UFS sync).
pub async fn tree(client: &MasterClient) -> BTreeMap<String, Kind> {
    client
        .list_status("/", true, Some(-1))
        .await
        .unwrap()
        .into_iter()
        .map(|i| {
            let kind = if i.folder {
                Kind::Directory
            } else {
                Kind::File
            };
            (i.path, kind)
        })
        .collect()
}
