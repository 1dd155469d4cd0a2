//! Small files read whole, with the fstat of the very descriptor read shown before the read.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use cloacina_sign_core::files::{read_small, read_small_inspecting, SmallFile};

#[test]
fn when_a_file_is_within_the_limit_its_mode_is_shown_and_its_bytes_returned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key");
    std::fs::write(&path, b"secret").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let mut seen = None;
    let read = read_small_inspecting(&path, 64, |meta| {
        seen = Some((meta.mode() & 0o7777, meta.uid()))
    })
    .unwrap();
    assert!(matches!(read, SmallFile::Read(bytes) if bytes == b"secret"));
    assert_eq!(seen, Some((0o640, std::fs::metadata(&path).unwrap().uid())));
}

#[test]
fn when_a_file_is_over_the_limit_it_is_still_shown_then_reported_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big");
    std::fs::write(&path, [0u8; 65]).unwrap();
    let mut shown = false;
    let read = read_small_inspecting(&path, 64, |_| shown = true).unwrap();
    assert!(matches!(read, SmallFile::TooLarge(65)));
    assert!(shown);
}

#[test]
fn when_there_is_no_file_nothing_is_shown_and_it_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let mut shown = false;
    let read = read_small_inspecting(&dir.path().join("none"), 64, |_| shown = true).unwrap();
    assert!(matches!(read, SmallFile::Missing));
    assert!(!shown);
}

#[test]
fn when_the_path_is_a_fifo_it_is_refused_at_once_and_nothing_is_shown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap()
        .success());
    let mut shown = false;
    let error = match read_small_inspecting(&path, 64, |_| shown = true) {
        Err(error) => error,
        Ok(_) => panic!("a FIFO was read"),
    };
    assert_eq!(error.code(), "UNREADABLE_FILE");
    assert!(
        error.to_string().contains("a FIFO is not a regular file"),
        "{error}"
    );
    assert!(!shown);
    assert!(read_small(&path, 64).is_err());
}
