//! Hot reload of the policy file: watched for changes, and re-read on SIGHUP.
//!
//! A new policy is compiled completely before it is swapped in, in one atomic store: a call sees
//! the old policy or the new one, never a mix. A file that does not load is logged and the last
//! good policy keeps serving.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::gateway::Gateway;
use crate::policy::{CompiledPolicy, PolicyFileError};

/// Stops watching when dropped.
pub struct Watch {
    _watcher: Option<notify::RecommendedWatcher>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn watch(gateway: Arc<Gateway>) -> Watch {
    let (changed, mut changes) = mpsc::channel::<()>(1);
    let watcher = watch_file(&gateway.config.policy, changed)
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
                }
                Some(()) = hangup => {}
                else => return,
            }
            reload(&gateway);
        }
    });
    Watch {
        _watcher: watcher,
        task,
    }
}

/// Watches the file's directory, not the file: editors and config-map updates replace the file
/// by renaming a new one over it, which a watch on the old inode would miss.
fn watch_file(
    path: &Path,
    changed: mpsc::Sender<()>,
) -> notify::Result<notify::RecommendedWatcher> {
    let name = path.file_name().map(ToOwned::to_owned);
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => ".".into(),
    };
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            let ours = event.paths.iter().any(|p| p.file_name() == name.as_deref());
            if ours && changes_the_file(&event.kind) {
                let _ = changed.try_send(());
            }
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
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
                    session.tools_changed.notify_one();
                }
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
