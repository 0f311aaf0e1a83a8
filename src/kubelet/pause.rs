//! The pause image: rkube's own static pause binary, packed as a one-file image tarball.
//!
//! Upstream clusters pull `registry.k8s.io/pause`; rkube nodes may have no registry at all, so
//! the kubelet carries its pause binary inside itself (built by `build.rs` from
//! `pause/pause.rs`) and `docker import`s it when the image is missing. This module holds no
//! Docker code: it only makes the bytes to import (see `DockerRuntime::import_image`), with a
//! small ustar writer that tests also use to build images from host binaries.
#![forbid(unsafe_code)]

/// The reference sandboxes run; bumped with the crate version so an upgraded kubelet never
/// reuses an older build.
pub const PAUSE_IMAGE: &str = concat!("rkube/pause:", env!("CARGO_PKG_VERSION"));

/// The static pause executable, compiled by the build script.
pub static PAUSE_BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pause"));

/// Image label carrying a fingerprint of [`PAUSE_BINARY`], so that a rebuilt binary under the
/// same version (a development build) replaces the stale image instead of reusing it.
pub const PAUSE_DIGEST_LABEL: &str = "io.rkube.pause.fingerprint";

/// The `--change` instructions the pause image is imported with.
pub fn pause_image_changes() -> Vec<String> {
    vec![
        r#"CMD ["/pause"]"#.to_string(),
        format!("LABEL {PAUSE_DIGEST_LABEL}={}", pause_fingerprint()),
    ]
}

/// A fingerprint of the embedded binary (64-bit FNV-1a: this detects a changed build, it is
/// not a security measure).
pub fn pause_fingerprint() -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in PAUSE_BINARY {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("fnv1a64-{hash:016x}")
}

/// The root filesystem of the pause image: `/pause`, mode 0755.
pub fn pause_image_tar() -> Vec<u8> {
    let mut tar = TarWriter::new();
    tar.add_file("/pause", 0o755, PAUSE_BINARY)
        .expect("the fixed name /pause fits a ustar header");
    tar.finish()
}

/// Why an entry could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TarError {
    #[error("tar entry name {0:?} does not fit a ustar header")]
    NameTooLong(String),
    #[error("symlink target {0:?} does not fit a ustar header")]
    LinkTooLong(String),
    #[error("tar entry {0:?} is too large for a ustar header")]
    TooLarge(String),
}

const BLOCK: usize = 512;

/// Writes a POSIX ustar archive in memory. Entries are owned by root with a fixed mtime, so the
/// same input always gives the same bytes.
#[derive(Debug, Default)]
pub struct TarWriter {
    buf: Vec<u8>,
}

impl TarWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// A regular file. A leading `/` is dropped: archive paths are relative to the image root.
    pub fn add_file(&mut self, path: &str, mode: u32, data: &[u8]) -> Result<(), TarError> {
        let name = path.trim_start_matches('/');
        let size = u64::try_from(data.len()).map_err(|_| TarError::TooLarge(name.to_string()))?;
        self.header(name, mode, size, b'0', "")?;
        self.buf.extend_from_slice(data);
        self.pad();
        Ok(())
    }

    /// A directory.
    pub fn add_dir(&mut self, path: &str, mode: u32) -> Result<(), TarError> {
        let name = format!("{}/", path.trim_matches('/'));
        self.header(&name, mode, 0, b'5', "")
    }

    /// A symbolic link pointing at `target`.
    pub fn add_symlink(&mut self, path: &str, target: &str) -> Result<(), TarError> {
        let name = path.trim_start_matches('/');
        self.header(name, 0o777, 0, b'2', target)
    }

    /// The archive, closed by the two zero blocks the format requires.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.resize(self.buf.len() + 2 * BLOCK, 0);
        self.buf
    }

    fn header(
        &mut self,
        name: &str,
        mode: u32,
        size: u64,
        typeflag: u8,
        link: &str,
    ) -> Result<(), TarError> {
        let mut h = [0u8; BLOCK];
        let (prefix, short) =
            split_name(name).ok_or_else(|| TarError::NameTooLong(name.to_string()))?;
        h[0..short.len()].copy_from_slice(short.as_bytes());
        put_octal(&mut h[100..108], u64::from(mode & 0o7777))
            .expect("a 12-bit mode fits 7 octal digits");
        put_octal(&mut h[108..116], 0).expect("zero fits");
        put_octal(&mut h[116..124], 0).expect("zero fits");
        put_octal(&mut h[124..136], size).ok_or_else(|| TarError::TooLarge(name.to_string()))?;
        put_octal(&mut h[136..148], 0).expect("zero fits");
        h[156] = typeflag;
        if link.len() > 100 {
            return Err(TarError::LinkTooLong(link.to_string()));
        }
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[265..269].copy_from_slice(b"root");
        h[297..301].copy_from_slice(b"root");
        h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
        // The checksum is computed with its own field read as eight spaces.
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
        put_octal(&mut h[148..155], sum).expect("a header sum fits 6 octal digits");
        h[155] = b' ';
        self.buf.extend_from_slice(&h);
        Ok(())
    }

    fn pad(&mut self) {
        let rem = self.buf.len() % BLOCK;
        if rem != 0 {
            self.buf.resize(self.buf.len() + BLOCK - rem, 0);
        }
    }
}

/// Splits a path into ustar's 155-byte prefix and 100-byte name, cutting at a slash.
fn split_name(name: &str) -> Option<(&str, &str)> {
    if name.len() <= 100 {
        return Some(("", name));
    }
    // Any slash that leaves both parts short enough will do; a directory's trailing slash
    // cannot be the cut, since the name part may not be empty.
    let trimmed = name.strip_suffix('/').unwrap_or(name);
    trimmed
        .match_indices('/')
        .map(|(i, _)| i)
        .find(|&i| i <= 155 && name.len() - i - 1 <= 100)
        .map(|i| (&name[..i], &name[i + 1..]))
}

/// Writes `value` as zero-padded octal filling all but the last byte, which stays NUL.
fn put_octal(field: &mut [u8], value: u64) -> Option<()> {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    if text.len() > digits {
        return None;
    }
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(h: &[u8], range: std::ops::Range<usize>) -> String {
        String::from_utf8_lossy(&h[range])
            .trim_end_matches('\0')
            .to_string()
    }

    fn checksum_ok(h: &[u8]) -> bool {
        let stored = u64::from_str_radix(field(h, 148..154).trim(), 8).expect("octal checksum");
        let sum: u64 = h
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (148..156).contains(&i) {
                    u64::from(b' ')
                } else {
                    u64::from(*b)
                }
            })
            .sum();
        stored == sum
    }

    #[test]
    fn single_file_layout() {
        let mut tar = TarWriter::new();
        tar.add_file("/pause", 0o755, b"hello").expect("short name");
        let bytes = tar.finish();
        // One header, one data block, two end blocks.
        assert_eq!(bytes.len(), 4 * BLOCK);
        let h = &bytes[..BLOCK];
        assert_eq!(field(h, 0..100), "pause");
        assert_eq!(field(h, 100..108), "0000755");
        assert_eq!(field(h, 124..136), "00000000005");
        assert_eq!(h[156], b'0');
        assert_eq!(&h[257..263], b"ustar\0");
        assert_eq!(&h[263..265], b"00");
        assert!(checksum_ok(h));
        assert_eq!(&bytes[BLOCK..BLOCK + 5], b"hello");
        assert!(bytes[BLOCK + 5..].iter().all(|b| *b == 0));
    }

    #[test]
    fn data_is_padded_to_blocks() {
        let mut tar = TarWriter::new();
        tar.add_file("a", 0o644, &[7u8; BLOCK]).expect("short name");
        tar.add_file("b", 0o644, &[8u8; BLOCK + 1])
            .expect("short name");
        let bytes = tar.finish();
        assert_eq!(bytes.len(), (1 + 1 + 1 + 2 + 2) * BLOCK);
        assert_eq!(field(&bytes[2 * BLOCK..3 * BLOCK], 0..100), "b");
    }

    #[test]
    fn dirs_symlinks_and_long_names() {
        let long_dir = "d".repeat(120);
        let long = format!("{long_dir}/file");
        let mut tar = TarWriter::new();
        tar.add_dir("/bin", 0o755).expect("short name");
        tar.add_symlink("/bin/sh", "busybox").expect("short name");
        tar.add_file(&long, 0o600, b"x").expect("splittable name");
        let bytes = tar.finish();
        let dir = &bytes[..BLOCK];
        assert_eq!(field(dir, 0..100), "bin/");
        assert_eq!(dir[156], b'5');
        let link = &bytes[BLOCK..2 * BLOCK];
        assert_eq!(field(link, 0..100), "bin/sh");
        assert_eq!(link[156], b'2');
        assert_eq!(field(link, 157..257), "busybox");
        let file = &bytes[2 * BLOCK..3 * BLOCK];
        assert_eq!(field(file, 345..500), long_dir);
        assert_eq!(field(file, 0..100), "file");
        assert!(checksum_ok(dir) && checksum_ok(link) && checksum_ok(file));
    }

    #[test]
    fn names_that_cannot_be_split_are_refused() {
        let mut tar = TarWriter::new();
        let unsplittable = "x".repeat(101);
        assert_eq!(
            tar.add_file(&unsplittable, 0o644, b""),
            Err(TarError::NameTooLong(unsplittable.clone()))
        );
        assert!(matches!(
            tar.add_symlink("l", &"t".repeat(101)),
            Err(TarError::LinkTooLong(_))
        ));
    }

    #[test]
    fn system_tar_reads_the_archive() {
        // Cross-check against an independent reader when one is installed.
        let Ok(dir) = tempfile::tempdir() else {
            panic!("cannot make a temp dir");
        };
        let mut tar = TarWriter::new();
        tar.add_dir("etc", 0o755).expect("short name");
        tar.add_file("etc/motd", 0o644, b"hi\n")
            .expect("short name");
        tar.add_symlink("etc/link", "motd").expect("short name");
        let path = dir.path().join("t.tar");
        std::fs::write(&path, tar.finish()).expect("write archive");
        let Ok(out) = std::process::Command::new("tar")
            .arg("-tvf")
            .arg(&path)
            .output()
        else {
            eprintln!("no tar binary; skipping the cross-check");
            return;
        };
        assert!(out.status.success(), "{out:?}");
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(listing.contains("etc/motd"), "{listing}");
        assert!(listing.contains("etc/link -> motd"), "{listing}");
        assert!(listing.contains("-rw-r--r--"), "{listing}");
    }

    #[test]
    fn pause_binary_is_a_static_elf() {
        assert_eq!(&PAUSE_BINARY[..4], b"\x7fELF");
        let tar = pause_image_tar();
        assert_eq!(field(&tar[..BLOCK], 0..100), "pause");
        assert!(pause_fingerprint().starts_with("fnv1a64-"));
        assert!(PAUSE_IMAGE.starts_with("rkube/pause:"));
    }
}
