//! File writes that never leave a half-written file in place and never replace what is not a
//! regular file (native only).
//!
//! Models, checkpoints and logs are written through [`atomic_write`]: a temporary file in the
//! target's folder, flushed, then renamed over the target. A symlinked target is written
//! through: the file it points to is replaced and the link kept. A target that exists and is
//! not a regular file (a device such as `/dev/full`, a folder, a FIFO, a socket) is refused
//! before anything is written; [`check_writable`] lets a caller refuse it before an hour of
//! training rather than after.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The file a write to `path` lands in: `path` itself, or the end of its chain of symlinks.
/// Errors if that file exists and is not a regular file.
pub fn resolve_target(path: &Path) -> io::Result<PathBuf> {
    let mut target = path.to_path_buf();
    // Follow links by hand so that a dangling link still names where the file will go.
    for _ in 0..40 {
        match fs::symlink_metadata(&target) {
            Ok(m) if m.file_type().is_symlink() => {
                let next = fs::read_link(&target)?;
                target = match target.parent() {
                    Some(dir) if next.is_relative() => dir.join(next),
                    _ => next,
                };
            }
            Ok(m) if m.is_file() => return Ok(target),
            Ok(m) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} exists and is {}, not a regular file; refusing to replace it", target.display(), kind_of(&m)),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(target),
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{}: too many levels of symbolic links", path.display())))
}

/// Checks, before any work, that `path` could be written by [`atomic_write`]: it is or would be
/// a regular file, and its folder exists (or can be created) and is a folder.
pub fn check_writable(path: &Path) -> io::Result<()> {
    if path.file_name().is_none() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{}: not a file name", path.display())));
    }
    let target = resolve_target(path)?;
    let dir = parent_dir(&target);
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a folder", dir.display()))),
        // A missing folder is created by the writer; a path through a file is refused by it.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", dir.display()))),
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

fn kind_of(m: &fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = m.file_type();
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if m.is_dir() {
        "a folder"
    } else {
        "not a regular file"
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, flushed to disk,
/// then renamed over the target. A crash or a full disk leaves the previous file untouched.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with(path, |f| f.write_all(bytes))
}

/// [`atomic_write`] with the content written by `fill`; an error from it leaves no trace.
fn write_with(path: &Path, fill: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
    let target = resolve_target(path)?;
    let dir = parent_dir(&target);
    let name = target.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    // `create_new` never follows or reuses whatever is already at the temporary's name.
    let (tmp, mut f) = (0..100)
        .find_map(|i| {
            let tmp = dir.join(format!(".{}.{}.{i}.tmp", name.to_string_lossy(), std::process::id()));
            match OpenOptions::new().write(true).create_new(true).open(&tmp) {
                Ok(f) => Some(Ok((tmp, f))),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => None,
                Err(e) => Some(Err(e)),
            }
        })
        .unwrap_or_else(|| Err(io::Error::new(io::ErrorKind::AlreadyExists, "no free temporary file name")))?;
    let result = (|| {
        fill(&mut f)?;
        f.sync_all()?;
        drop(f);
        // Checked again just before the rename: something may have appeared meanwhile.
        resolve_target(&target)?;
        fs::rename(&tmp, &target)?;
        // Make the rename itself durable; not every platform can open a folder, so best effort.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("le-atomic-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = temp_dir("replace");
        let p = dir.join("model.bin");
        atomic_write(&p, b"first").unwrap();
        atomic_write(&p, b"second").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"second");
        assert_eq!(names(&dir), ["model.bin"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_removes_the_temporary() {
        let dir = temp_dir("fail");
        let p = dir.join("model.bin");
        atomic_write(&p, b"good").unwrap();
        // The same target, failing half-way through the content, after the temporary exists.
        let err = write_with(&p, |f| {
            f.write_all(b"half")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(fs::read(&p).unwrap(), b"good");
        assert_eq!(names(&dir), ["model.bin"], "the temporary must be removed");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_or_a_folder_is_refused_before_anything_is_written() {
        let dir = temp_dir("special");
        let fifo = dir.join("pipe");
        let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(status.success());
        let sub = dir.join("folder");
        fs::create_dir(&sub).unwrap();
        for (p, kind) in [(&fifo, "a FIFO"), (&sub, "a folder")] {
            let e = check_writable(p).unwrap_err();
            assert!(e.to_string().contains(kind), "{e}");
            let e = atomic_write(p, b"x").unwrap_err();
            assert!(e.to_string().contains("not a regular file"), "{e}");
        }
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&fs::symlink_metadata(&fifo).unwrap().file_type()));
        assert!(sub.is_dir());
        assert_eq!(names(&dir), ["folder", "pipe"], "nothing else may be left behind");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_written_through_and_kept() {
        let dir = temp_dir("link");
        let run7 = dir.join("run7.safetensors");
        fs::write(&run7, b"old").unwrap();
        let current = dir.join("current.safetensors");
        std::os::unix::fs::symlink("run7.safetensors", &current).unwrap();
        atomic_write(&current, b"new").unwrap();
        assert!(fs::symlink_metadata(&current).unwrap().file_type().is_symlink(), "the link is kept");
        assert_eq!(fs::read(&run7).unwrap(), b"new", "the file it points to is replaced");
        // A dangling link creates the file it names.
        let dangling = dir.join("next.safetensors");
        std::os::unix::fs::symlink("run8.safetensors", &dangling).unwrap();
        atomic_write(&dangling, b"fresh").unwrap();
        assert_eq!(fs::read(dir.join("run8.safetensors")).unwrap(), b"fresh");
        // A link to a FIFO is refused like the FIFO itself.
        let fifo = dir.join("pipe");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let to_fifo = dir.join("to-pipe");
        std::os::unix::fs::symlink(&fifo, &to_fifo).unwrap();
        assert!(atomic_write(&to_fifo, b"x").is_err());
        assert_eq!(names(&dir), ["current.safetensors", "next.safetensors", "pipe", "run7.safetensors", "run8.safetensors", "to-pipe"]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
