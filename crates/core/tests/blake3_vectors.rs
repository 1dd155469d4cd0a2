//! The official BLAKE3 test vectors (test/vectors/blake3/, BLAKE3-team/BLAKE3 `test_vectors/`)
//! through every way this crate computes BLAKE3: in memory, streamed from a file on one, two or
//! every core, and together with SHA-256 in one `MultiHasher` fed in uneven pieces.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use cloacina_sign_core::digest::{
    self, digest_file, to_hex, DigestSet, MultiHasher, PackageDigests, CHUNK_SIZE,
};

struct Case {
    input_len: usize,
    /// The default 32-byte hash, lowercase hex.
    hash: String,
}

fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test/vectors/blake3/test_vectors.json")
}

fn cases() -> Vec<Case> {
    let text =
        std::fs::read_to_string(vectors_path()).expect("test/vectors/blake3/test_vectors.json");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases: Vec<Case> = json["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|case| {
            let extended = case["hash"].as_str().expect("hash");
            // The vectors give the extended output; its first 32 bytes are the default hash.
            assert!(extended.len() >= 64, "extended output too short");
            Case {
                input_len: case["input_len"].as_u64().expect("input_len") as usize,
                hash: extended[..64].to_string(),
            }
        })
        .collect();
    // Never hard-code how many there are; only that the file was read and is the expected shape.
    assert!(cases.len() > 10, "only {} cases read", cases.len());
    assert!(cases.iter().any(|c| c.input_len == 0));
    assert!(cases.iter().any(|c| c.input_len > 64 * 1024));
    cases
}

/// The vectors' input: the repeating byte sequence 0, 1, ..., 250, 0, 1, ...
fn input(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn temp_file(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(bytes).unwrap();
    file.flush().unwrap();
    file
}

#[test]
fn every_vector_hashes_to_its_default_output_in_memory() {
    for case in cases() {
        assert_eq!(
            to_hex(&digest::blake3(&input(case.input_len))),
            case.hash,
            "input_len {}",
            case.input_len
        );
    }
}

#[test]
fn every_vector_hashes_to_its_default_output_from_a_file_on_one_two_or_every_core() {
    for case in cases() {
        let data = input(case.input_len);
        let file = temp_file(&data);
        for threads in [Some(1), Some(2), None] {
            let progress = AtomicU64::new(u64::MAX);
            let digests =
                digest_file(file.path(), DigestSet::BLAKE3, Some(&progress), threads).unwrap();
            let what = format!("input_len {}, threads {threads:?}", case.input_len);
            assert_eq!(
                digests.blake3.map(|d| to_hex(&d)).as_deref(),
                Some(case.hash.as_str()),
                "{what}"
            );
            assert_eq!(digests.size, case.input_len as u64, "{what}");
            // Only what was asked for is computed.
            assert_eq!(digests.sha256, None, "{what}");
            assert_eq!(
                progress.load(Ordering::Relaxed),
                case.input_len as u64,
                "{what}"
            );
        }
    }
}

#[test]
fn both_digests_from_a_file_in_one_pass_are_the_vector_and_the_in_memory_sha256() {
    let both = DigestSet {
        sha256: true,
        blake3: true,
    };
    for case in cases() {
        let data = input(case.input_len);
        let file = temp_file(&data);
        for threads in [Some(1), Some(2), None] {
            let digests = digest_file(file.path(), both, None, threads).unwrap();
            assert_eq!(
                digests,
                PackageDigests {
                    size: case.input_len as u64,
                    sha256: Some(digest::sha256(&data)),
                    blake3: Some(digest::blake3(&data)),
                },
                "input_len {}, threads {threads:?}",
                case.input_len
            );
            assert_eq!(
                to_hex(&digests.blake3.unwrap()),
                case.hash,
                "input_len {}",
                case.input_len
            );
        }
    }
}

/// Uneven piece sizes: empty pieces, single bytes, sizes straddling BLAKE3's 64-byte blocks and
/// 1024-byte chunks, and one piece above the size where `update` goes parallel.
const PIECES: [usize; 12] = [0, 1, 63, 0, 65, 1023, 1, 1025, 7, 4096, 200 * 1024, 3];

fn pieces(data: &[u8], offset: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = offset;
    while at < data.len() {
        let len = PIECES[i % PIECES.len()].min(data.len() - at);
        out.push(&data[at..at + len]);
        at += len;
        i += 1;
    }
    out
}

#[test]
fn a_multi_hasher_fed_in_uneven_pieces_gives_both_digests_of_every_vector() {
    let both = DigestSet {
        sha256: true,
        blake3: true,
    };
    for case in cases() {
        let data = input(case.input_len);
        for threads in [Some(1), Some(2), None] {
            for offset in 0..PIECES.len() {
                let mut hasher = MultiHasher::new(both, threads);
                // An empty update first and last changes nothing.
                hasher.update(&[]);
                for piece in pieces(&data, offset) {
                    hasher.update(piece);
                }
                hasher.update(&[]);
                let digests = hasher.finish();
                let what = format!(
                    "input_len {}, threads {threads:?}, pieces from {offset}",
                    case.input_len
                );
                assert_eq!(
                    digests.blake3.map(|d| to_hex(&d)).as_deref(),
                    Some(case.hash.as_str()),
                    "{what}"
                );
                assert_eq!(digests.sha256, Some(digest::sha256(&data)), "{what}");
                assert_eq!(digests.size, case.input_len as u64, "{what}");
            }
        }
    }
}

#[test]
fn a_multi_hasher_asked_for_one_digest_computes_only_that_one() {
    let data = input(1025);
    let blake3_only = {
        let mut hasher = MultiHasher::new(DigestSet::BLAKE3, None);
        hasher.update(&data);
        hasher.finish()
    };
    assert_eq!(blake3_only.sha256, None);
    assert_eq!(blake3_only.blake3, Some(digest::blake3(&data)));
    let sha256_only = {
        let mut hasher = MultiHasher::new(DigestSet::SHA256, Some(2));
        hasher.update(&data);
        hasher.finish()
    };
    assert_eq!(sha256_only.blake3, None);
    assert_eq!(sha256_only.sha256, Some(digest::sha256(&data)));
    assert_eq!(sha256_only.size, 1025);
}

/// The official vectors stop at 100 KiB, below where `update` goes parallel (128 KiB) and far
/// below the streamed chunk (4 MiB). The same repeating input, longer, must give the same digest
/// serially and in parallel, pipelined or not; the in-memory `blake3::hash` (checked against the
/// vectors above) is the reference.
#[test]
fn longer_inputs_of_the_vector_pattern_hash_the_same_on_every_path() {
    for len in [
        128 * 1024 - 1,
        128 * 1024,
        128 * 1024 + 1,
        1 << 20,
        CHUNK_SIZE,
        CHUNK_SIZE + 1,
        2 * CHUNK_SIZE + 12_345,
    ] {
        let data = input(len);
        let expected = digest::blake3(&data);
        let file = temp_file(&data);
        for threads in [Some(1), Some(2), Some(3), None] {
            let digests = digest_file(
                file.path(),
                DigestSet {
                    sha256: true,
                    blake3: true,
                },
                None,
                threads,
            )
            .unwrap();
            assert_eq!(
                digests.blake3,
                Some(expected),
                "len {len}, threads {threads:?}"
            );
            assert_eq!(
                digests.sha256,
                Some(digest::sha256(&data)),
                "len {len}, threads {threads:?}"
            );
            assert_eq!(digests.size, len as u64);

            let mut hasher = MultiHasher::new(DigestSet::BLAKE3, threads);
            for piece in pieces(&data, len % PIECES.len()) {
                hasher.update(piece);
            }
            assert_eq!(
                hasher.finish().blake3,
                Some(expected),
                "pieces, len {len}, threads {threads:?}"
            );
        }
    }
}
