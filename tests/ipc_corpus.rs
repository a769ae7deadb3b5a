//! The fuzz target's committed seed corpus (tests/fuzz/corpus/ipc_frame)
//! stays valid: every seed is accepted by the decoder in the mode its first
//! byte names, and is canonical. A format change that forgets to refresh
//! the seeds (`make_ipc_corpus`, docs/ipc.md) fails here, instead of
//! silently leaving the fuzzer to start from frames it rejects.

use luring::ipc::{decode, encode_routed, FdMode};

#[test]
fn every_seed_is_a_valid_canonical_frame() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz/corpus/ipc_frame");
    let mut seeds = 0;
    for entry in std::fs::read_dir(dir).expect("the seed corpus directory") {
        let path = entry.expect("directory entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("seed-") {
            continue;
        }
        let input = std::fs::read(&path).expect("readable seed");
        let (&mode_byte, packet) = input.split_first().expect("a non-empty seed");
        let (mode, scm_fds) = if mode_byte & 1 == 0 {
            (FdMode::ScmRights, usize::from(packet[6]))
        } else {
            (
                FdMode::FixedSlots {
                    table_size: u32::from(mode_byte >> 1) + 1,
                },
                0,
            )
        };
        let decoded = decode(packet, mode, scm_fds)
            .unwrap_or_else(|e| panic!("seed {name} is rejected: {e}"));
        let again = encode_routed(&decoded.value, decoded.placement(), &decoded.routing)
            .expect("re-encodable");
        assert_eq!(again, packet, "seed {name} is not canonical");
        seeds += 1;
    }
    assert!(seeds >= 28, "only {seeds} seeds in {dir}");
}
