//! A real small filesystem for full-disk tests: a tmpfs of a few MiB mounted on a
//! temporary folder (needs root; CI runs as root), its free space as `statvfs` reports it,
//! and a filler file that eats the space.
use std::io::Write;
use std::path::{Path, PathBuf};

/// A mounted tmpfs, unmounted when dropped.
pub struct SmallFs {
    _dir: tempfile::TempDir,
    mount: PathBuf,
}

impl SmallFs {
    /// Mounts a tmpfs of `size_mib` MiB, or says why not: not root, or `mount` failed
    /// (a container without `CAP_SYS_ADMIN`). The caller prints a SKIP line with the reason.
    pub fn mount(size_mib: u64) -> Result<SmallFs, String> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not root: mounting a tmpfs needs root (CI runs as root)".into());
        }
        let dir = tempfile::tempdir().map_err(|e| format!("a temporary folder: {e}"))?;
        let mount = dir.path().join("fs");
        std::fs::create_dir(&mount).map_err(|e| format!("creating {}: {e}", mount.display()))?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(&mount)
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount -t tmpfs failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(SmallFs { _dir: dir, mount })
    }

    /// The mounted folder.
    pub fn path(&self) -> &Path {
        &self.mount
    }

    /// Bytes available (`statvfs` `f_bavail * f_frsize`).
    pub fn free(&self) -> u64 {
        free_bytes(&self.mount)
    }

    /// The size of the filesystem in bytes.
    #[allow(clippy::unnecessary_cast)] // u64 on 64-bit Linux, not everywhere
    pub fn total(&self) -> u64 {
        let stat = statvfs(&self.mount);
        stat.f_blocks as u64 * stat.f_frsize as u64
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        // Lazy: a gateway process that has not quite exited yet does not keep it mounted.
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

fn statvfs(path: &Path) -> libc::statvfs {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("a path without NUL");
    // SAFETY: `c` is a valid NUL-terminated string; `stat` is written by statvfs on success
    // and only read after it.
    unsafe {
        let mut stat: libc::statvfs = std::mem::zeroed();
        assert_eq!(libc::statvfs(c.as_ptr(), &mut stat), 0, "statvfs {}", path.display());
        stat
    }
}

/// Bytes available on the filesystem of `path`.
#[allow(clippy::unnecessary_cast)] // u64 on 64-bit Linux, not everywhere
pub fn free_bytes(path: &Path) -> u64 {
    let stat = statvfs(path);
    stat.f_bavail as u64 * stat.f_frsize as u64
}

/// A file that grows until the filesystem has only so much free space left.
pub struct Filler {
    path: PathBuf,
    file: std::fs::File,
    /// Bytes written so far.
    pub written: u64,
}

impl Filler {
    /// Creates the (empty) filler file.
    pub fn create(path: &Path) -> Filler {
        let file = std::fs::File::create(path).expect("creating the filler");
        Filler { path: path.to_path_buf(), file, written: 0 }
    }

    /// Writes up to `max_bytes` more (in 256 KiB chunks of non-zero bytes), stopping as
    /// soon as the filesystem has `free_target` bytes or less available, or is full.
    /// Returns whether the target is reached.
    pub fn grow(&mut self, max_bytes: u64, free_target: u64) -> bool {
        let chunk = vec![0xA5u8; 256 << 10];
        let mut grown = 0;
        while grown < max_bytes {
            if free_bytes(&self.path) <= free_target {
                return true;
            }
            match self.file.write_all(&chunk) {
                Ok(()) => {
                    grown += chunk.len() as u64;
                    self.written += chunk.len() as u64;
                }
                Err(_) => return true,
            }
        }
        free_bytes(&self.path) <= free_target
    }

    /// Deletes the filler: the space is back.
    pub fn remove(self) {
        drop(self.file);
        std::fs::remove_file(&self.path).expect("removing the filler");
    }
}
