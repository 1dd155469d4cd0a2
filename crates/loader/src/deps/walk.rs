//! The ownership walk: whether a path can only have been made what it is by root.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

const MAX_SYMLINKS: usize = 40;

/// What a path leads to, every directory on the way (symbolic links followed) having been found
/// safe.
#[derive(Debug, Clone)]
pub(crate) enum Found {
    /// Nothing there; nobody but root can create it, since the deepest existing directory is
    /// root-owned and not writable by others.
    Missing,
    /// A safe regular file (resolved path, device, inode).
    File(PathBuf, u64, u64),
    /// A safe directory.
    Dir,
    /// Something else (a device, a socket).
    Other,
}

fn safe_owner(path: &Path, meta: &Metadata, what: &str) -> Result<(), String> {
    if meta.uid() != 0 {
        return Err(format!(
            "the {what} {} is owned by uid {}, not by root",
            path.display(),
            meta.uid()
        ));
    }
    let mode = meta.mode();
    if mode & 0o002 != 0 {
        return Err(format!(
            "the {what} {} is writable by others (mode {:o})",
            path.display(),
            mode & 0o7777
        ));
    }
    if mode & 0o020 != 0 {
        return Err(format!(
            "the {what} {} is writable by its group (mode {:o})",
            path.display(),
            mode & 0o7777
        ));
    }
    Ok(())
}

fn components(p: &Path) -> VecDeque<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

/// Follows `path` from `/`, component by component and link by link, the way the kernel does,
/// and requires every directory it passes through to be safe (and a file it ends at).
pub(crate) fn walk(path: &Path) -> Result<Found, String> {
    if !path.is_absolute() {
        return Err(format!("{} is not an absolute path", path.display()));
    }
    let root = Path::new("/");
    let meta = std::fs::symlink_metadata(root).map_err(|e| format!("cannot inspect /: {e}"))?;
    safe_owner(root, &meta, "directory")?;
    let mut cur = PathBuf::from("/");
    let mut pending = components(path);
    let mut links = 0usize;
    while let Some(c) = pending.pop_front() {
        if c == ".." {
            cur.pop(); // `cur` and its ancestors were found safe on the way in
            continue;
        }
        let next = cur.join(&c);
        let meta = match std::fs::symlink_metadata(&next) {
            Ok(m) => m,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => {
                return Ok(Found::Missing)
            }
            Err(e) => return Err(format!("{} cannot be inspected ({e})", next.display())),
        };
        let ft = meta.file_type();
        if ft.is_symlink() {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(format!(
                    "{} involves too many symbolic links",
                    path.display()
                ));
            }
            // The link lives in `cur`, which is safe: only root could have made or changed it.
            let target = std::fs::read_link(&next)
                .map_err(|e| format!("{} cannot be read ({e})", next.display()))?;
            if target.is_absolute() {
                cur = PathBuf::from("/");
            }
            let mut rest = components(&target);
            rest.extend(pending);
            pending = rest;
            continue;
        }
        if ft.is_dir() {
            safe_owner(&next, &meta, "directory")?;
            cur = next;
            continue;
        }
        if !pending.is_empty() {
            return Ok(Found::Missing); // a file used as a directory: ENOTDIR
        }
        if ft.is_file() {
            safe_owner(&next, &meta, "file")?;
            return Ok(Found::File(next, meta.dev(), meta.ino()));
        }
        return Ok(Found::Other);
    }
    Ok(Found::Dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walking_paths() {
        // Root-owned system files pass; a directory anyone can write (as /tmp) does not.
        assert!(matches!(
            walk(Path::new("/etc/passwd")),
            Ok(Found::File(..))
        ));
        assert!(matches!(
            walk(Path::new("/no/such/dir/x")),
            Ok(Found::Missing)
        ));
        let tmp = std::env::temp_dir();
        let err = walk(&tmp.join("x")).unwrap_err();
        assert!(
            err.contains("writable by others") || err.contains("not by root"),
            "{err}"
        );
        assert!(walk(Path::new("relative")).is_err());
    }
}
