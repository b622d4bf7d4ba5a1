//! Hot reload of the policy file: watched for changes, and re-read on SIGHUP (which also reopens
//! the audit file, for logrotate).
//!
//! A new policy is compiled completely before it is swapped in, in one atomic store: a call sees
//! the old policy or the new one, never a mix. A file that does not load is logged and the last
//! good policy keeps serving.
//!
//! The file may be reached through symbolic links: a Kubernetes ConfigMap mounts
//! `policy.json -> ..data/policy.json` with `..data -> ..2026_11_29_…/`, and an update writes a
//! new timestamped directory and swaps the `..data` link, never touching `policy.json` itself.
//! So every link on the way to the file is watched (in the directory that holds it), and the
//! chain is worked out again after each change, since a swap may lead somewhere new.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::gateway::Gateway;
use crate::policy::{CompiledPolicy, PolicyFileError};

/// Stops watching when dropped (the watcher lives in the task).
pub struct Watch {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn watch(gateway: Arc<Gateway>) -> Watch {
    let (changed, mut changes) = mpsc::channel::<()>(1);
    let mut watcher = PolicyWatcher::new(&gateway.config.policy, changed)
        .map_err(|err| {
            tracing::warn!(error = %err, path = %gateway.config.policy.display(), "cannot watch the policy file; SIGHUP still reloads it");
        })
        .ok();
    let task = tokio::spawn(async move {
        let mut hangups =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            let hangup = async {
                match hangups.as_mut() {
                    Some(signal) => signal.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some(()) = changes.recv() => {
                    // Editors write a file in several steps; let them finish before reading.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    while changes.try_recv().is_ok() {}
                    reload(&gateway);
                }
                Some(()) = hangup => hangup_received(&gateway),
                else => return,
            }
            if let Some(watcher) = watcher.as_mut() {
                watcher.follow(&gateway.config.policy);
            }
        }
    });
    Watch { task }
}

/// What SIGHUP does: the policy is read again and the audit file reopened at its path.
pub fn hangup_received(gateway: &Gateway) {
    reload(gateway);
    gateway.reopen_audit();
}

/// Watches the directories holding the policy file and every link on the way to it, not the
/// file: editors and ConfigMap updates replace a file or a link by renaming a new one over it,
/// which a watch on the old inode would miss.
struct PolicyWatcher {
    watcher: notify::RecommendedWatcher,
    watched_dirs: HashSet<PathBuf>,
    /// The links and the file itself: an event on any of them is a change.
    paths: Arc<std::sync::RwLock<HashSet<PathBuf>>>,
}

impl PolicyWatcher {
    fn new(policy: &Path, changed: mpsc::Sender<()>) -> notify::Result<Self> {
        let paths: Arc<std::sync::RwLock<HashSet<PathBuf>>> = Arc::default();
        let ours = paths.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            let ours = ours.read().unwrap_or_else(|e| e.into_inner());
            if changes_the_file(&event.kind) && event.paths.iter().any(|p| ours.contains(p)) {
                let _ = changed.try_send(());
            }
        })?;
        let mut this = Self {
            watcher,
            watched_dirs: HashSet::new(),
            paths,
        };
        let chain = links_to(policy);
        for dir in chain.iter().map(|path| parent_of(path)) {
            if !this.watched_dirs.contains(&dir) {
                this.watcher.watch(&dir, RecursiveMode::NonRecursive)?;
                this.watched_dirs.insert(dir);
            }
        }
        *this.paths.write().unwrap_or_else(|e| e.into_inner()) = chain.into_iter().collect();
        Ok(this)
    }

    /// Works the chain of links out again (a swap may lead into a new directory) and watches
    /// what it has not watched yet. Directories no longer on the way are left watched: they
    /// are few, and their events no longer match.
    fn follow(&mut self, policy: &Path) {
        let chain = links_to(policy);
        for dir in chain.iter().map(|path| parent_of(path)) {
            if !self.watched_dirs.contains(&dir) {
                match self.watcher.watch(&dir, RecursiveMode::NonRecursive) {
                    Ok(()) => {
                        self.watched_dirs.insert(dir);
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, dir = %dir.display(), "cannot watch a directory on the policy file's path")
                    }
                }
            }
        }
        *self.paths.write().unwrap_or_else(|e| e.into_inner()) = chain.into_iter().collect();
    }
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => ".".into(),
    }
}

/// Every symbolic link met on the way to `path`, in order, and last the path it leads to (all
/// absolute, not canonical: as the watcher reports them). Gives up after 40 links, as the
/// kernel does (ELOOP).
fn links_to(path: &Path) -> Vec<PathBuf> {
    let absolute = match std::env::current_dir() {
        Ok(cwd) => cwd.join(path),
        Err(_) => path.to_owned(),
    };
    let mut chain = Vec::new();
    let mut pending: Vec<std::ffi::OsString> = absolute
        .components()
        .rev()
        .map(|c| c.as_os_str().to_owned())
        .collect();
    let mut resolved = PathBuf::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        match part.to_str() {
            Some(".") => continue,
            Some("..") => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let candidate = resolved.join(&part);
        match std::fs::read_link(&candidate) {
            Ok(target) if links < 40 => {
                links += 1;
                chain.push(candidate);
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                pending.extend(target.components().rev().map(|c| c.as_os_str().to_owned()));
            }
            _ => resolved = candidate,
        }
    }
    chain.push(resolved);
    chain
}

/// Opening and reading the file is no change, and must not count as one: each reload reads the
/// file, so it would set off the next, forever.
fn changes_the_file(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) | EventKind::Any
    )
}

/// Re-reads the policy file and swaps it in if it loads.
pub fn reload(gateway: &Gateway) {
    let path = &gateway.config.policy;
    match CompiledPolicy::from_file(path) {
        Ok(policy) => {
            let before = gateway.policy.swap(std::sync::Arc::new(policy));
            let after = gateway.policy.load();
            for session in gateway.sessions.all() {
                if session.view_changed(&before, &after) {
                    session.tools_changed.announce();
                }
            }
            if let Some(metrics) = &gateway.metrics {
                metrics.policy_tools(after.tool_rule_names());
                metrics.reload(true);
            }
            gateway.reloads.send_modify(|status| {
                status.applied += 1;
                status.last_error = None;
            });
            tracing::info!(path = %path.display(), "policy reloaded");
        }
        Err(err) => {
            let message = match &err {
                PolicyFileError::Invalid { errors, .. } => errors.to_string(),
                other => other.to_string(),
            };
            tracing::error!(path = %path.display(), errors = %message, "policy reload rejected; the last good policy keeps serving");
            if let Some(metrics) = &gateway.metrics {
                metrics.reload(false);
            }
            gateway.reloads.send_modify(|status| {
                status.rejected += 1;
                status.last_error = Some(message);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RemoveKind, RenameMode};

    use super::*;

    #[test]
    fn the_chain_of_a_configmap_mount_names_both_links_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("..2026_11_29_a")).unwrap();
        std::fs::write(root.join("..2026_11_29_a/policy.json"), "{}").unwrap();
        std::os::unix::fs::symlink("..2026_11_29_a", root.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/policy.json", root.join("policy.json")).unwrap();
        assert_eq!(
            links_to(&root.join("policy.json")),
            [
                root.join("policy.json"),
                root.join("..data"),
                root.join("..2026_11_29_a/policy.json"),
            ]
        );
        assert_eq!(links_to(&root.join("..2026_11_29_a/policy.json")).len(), 1);
    }

    #[test]
    fn writes_renames_and_removals_are_changes_but_reads_are_not() {
        for change in [
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Data(notify::event::DataChange::Any)),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Remove(RemoveKind::File),
        ] {
            assert!(changes_the_file(&change), "{change:?}");
        }
        for read in [
            EventKind::Access(AccessKind::Open(AccessMode::Read)),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Access(AccessKind::Read),
        ] {
            assert!(!changes_the_file(&read), "{read:?}");
        }
    }
}
