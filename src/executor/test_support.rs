//! Test support shared by the executor's unit tests: waiting for given ops
//! with a generous deadline (never a fixed sleep).

use std::time::{Duration, Instant};

use super::{Completion, Executor, OpId, Reaped};

const DEADLINE: Duration = Duration::from_secs(20);

/// The completion of `id`, turning the ring until it arrives.
pub(crate) fn await_one(ex: &mut Executor, id: OpId) -> Completion {
    await_all(ex, &[id]).pop().expect("one completion")
}

/// The completions of `ids`, in that order; others reaped meanwhile are
/// dropped.
pub(crate) fn await_all(ex: &mut Executor, ids: &[OpId]) -> Vec<Completion> {
    let deadline = Instant::now() + DEADLINE;
    let mut got: Vec<Completion> = Vec::new();
    let mut r = Reaped::default();
    while got.len() < ids.len() {
        assert!(Instant::now() < deadline, "op never completed");
        ex.turn(true, &mut r).expect("turn");
        got.extend(r.completions.drain(..).filter(|c| ids.contains(&c.id)));
    }
    ids.iter()
        .map(|id| {
            let i = got.iter().position(|c| c.id == *id).expect("awaited id");
            got.swap_remove(i)
        })
        .collect()
}
