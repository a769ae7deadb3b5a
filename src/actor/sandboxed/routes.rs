//! A sandbox's route table: the in-process addresses its host gave it.
//!
//! Invariants:
//! - One table per sandbox, shared by everything that sends to it (its
//!   channel in the spawner's VM, or a Rust handle's link) and by its
//!   relay (on the spawner's ring or a thread). Two sandboxes never share
//!   one, so a route id means nothing to another sandbox.
//! - Route 0 is the spawner's inbox (the Rust replies mailbox), never in
//!   the table. Every other route has a random, non-zero 32-bit id drawn
//!   from the kernel (`getrandom`) when a frame to the sandbox first names
//!   its address (one route per mailbox, at most [`MAX_ROUTES`] at once).
//!   A sandbox can only learn an id from a frame it read: guessing one
//!   costs it its channel (below) and succeeds once in 2^32 tries, so a
//!   route whose frame is still waiting in a full socket, or never left,
//!   is out of its reach.
//! - An address stays in the table until the sandbox ended: the table
//!   counts as a sender of each of them (their `no_senders` waits for the
//!   sandbox's end), and an id, once a frame naming it left, always names
//!   the same actor.
//! - A frame from the sandbox can only name routes in the table: anything
//!   else is a forged frame (that channel closes).
//! - The table is filled only for a frame about to be sent, with every
//!   check done (a full table refuses the whole frame and adds nothing).
//! - A route is revoked when every frame that named it failed or was
//!   interrupted before it left ([`RouteTable::revoke`]): it leaves the
//!   table (it no longer counts toward the bound), and the address gets a
//!   new id if sent again.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::actor::mailbox::{ActorAddress, Mailbox};
use crate::ipc::MAX_ROUTES;

/// The route table of one sandbox (module doc).
#[derive(Default)]
pub(crate) struct RouteTable {
    state: Mutex<RouteState>,
}

#[derive(Default)]
struct RouteState {
    /// The routes, in no particular order (at most [`MAX_ROUTES`]).
    routes: Vec<Route>,
    /// The sandbox ended: the addresses were let go, none is added.
    ended: bool,
}

/// One route: its id, its address and how many frames that named it were
/// sent and not revoked.
struct Route {
    id: u32,
    address: ActorAddress,
    frames: u32,
}

impl RouteState {
    fn find(&self, id: u32) -> Option<usize> {
        self.routes.iter().position(|r| r.id == id)
    }
}

/// The routes of one frame, the table locked until it was sent.
pub(crate) struct RoutePlan<'t> {
    state: MutexGuard<'t, RouteState>,
    /// The new routes: (id, address).
    added: Vec<(u32, ActorAddress)>,
    /// Channel `k`'s route.
    pub(crate) routes: Vec<u32>,
}

impl RoutePlan<'_> {
    /// The frame went to the socket: its new addresses join the table.
    /// Returns the routes it named (0 left out, each once), to hand to
    /// [`RouteTable::revoke`] if the frame then turns out not to have left.
    pub(crate) fn commit(mut self) -> Vec<u32> {
        let added = std::mem::take(&mut self.added);
        self.state
            .routes
            .extend(added.into_iter().map(|(id, address)| Route {
                id,
                address,
                frames: 0,
            }));
        let mut named: Vec<u32> = self.routes.iter().copied().filter(|&r| r != 0).collect();
        named.sort_unstable();
        named.dedup();
        for &r in &named {
            if let Some(i) = self.state.find(r) {
                self.state.routes[i].frames += 1;
            }
        }
        named
    }
}

/// Why a frame's channels got no routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RouteError {
    /// The table holds [`MAX_ROUTES`] addresses and the frame names another.
    Full,
    /// The sandbox ended.
    Ended,
    /// The kernel gave no random bytes for a new id.
    NoRandomness(i32),
}

impl RouteError {
    /// The error a sender reports.
    pub(crate) fn message(self) -> String {
        match self {
            RouteError::Full => format!(
                "send: this sandboxed actor was already given channels to {MAX_ROUTES} other \
                 actors, the most one sandbox can hold (its spawner's own inbox does not \
                 count); nothing was sent"
            ),
            RouteError::Ended => {
                "send: the sandboxed actor has ended: no channel can be given to it".to_owned()
            }
            RouteError::NoRandomness(errno) => format!(
                "send: cannot draw a route id for a channel to the sandboxed actor \
                 (getrandom: {}); nothing was sent",
                std::io::Error::from_raw_os_error(errno)
            ),
        }
    }
}

/// A random non-zero id that no route of `st` nor of `added` has.
fn fresh_id(st: &RouteState, added: &[(u32, ActorAddress)]) -> Result<u32, RouteError> {
    loop {
        let mut bytes = [0u8; 4];
        // SAFETY: getrandom writes at most `bytes.len()` bytes into it.
        let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
        if n != bytes.len() as isize {
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            if n < 0 && errno == libc::EINTR {
                continue;
            }
            return Err(RouteError::NoRandomness(errno));
        }
        let id = u32::from_ne_bytes(bytes);
        if id != 0 && st.find(id).is_none() && added.iter().all(|&(a, _)| a != id) {
            return Ok(id);
        }
    }
}

impl RouteTable {
    pub(crate) fn new() -> Arc<Self> {
        Arc::default()
    }

    fn lock(&self) -> MutexGuard<'_, RouteState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The routes of a frame's channels: 0 for `inbox` (the spawner's),
    /// the route of every other address, new ones to be added when the
    /// frame is sent ([`RoutePlan::commit`]; the table stays locked until
    /// then). `None` when every channel is `inbox` (no lock taken: the
    /// common case). On an error nothing is added.
    pub(crate) fn routes_for(
        &self,
        inbox: Option<&Arc<Mailbox>>,
        channels: &[&ActorAddress],
    ) -> Result<Option<RoutePlan<'_>>, RouteError> {
        let is_inbox = |a: &ActorAddress| inbox.is_some_and(|i| Arc::ptr_eq(&a.mailbox, i));
        if channels.iter().all(|a| is_inbox(a)) {
            return Ok(None);
        }
        let st = self.lock();
        if st.ended {
            return Err(RouteError::Ended);
        }
        let mut added: Vec<(u32, ActorAddress)> = Vec::new();
        let mut routes = Vec::with_capacity(channels.len());
        for &address in channels {
            if is_inbox(address) {
                routes.push(0);
                continue;
            }
            let known = st
                .routes
                .iter()
                .map(|r| (r.id, &r.address))
                .chain(added.iter().map(|(id, a)| (*id, a)))
                .find(|(_, a)| a.same_actor(address))
                .map(|(id, _)| id);
            let id = match known {
                Some(id) => id,
                None if st.routes.len() + added.len() < MAX_ROUTES as usize => {
                    let id = fresh_id(&st, &added)?;
                    added.push((id, address.clone()));
                    id
                }
                None => return Err(RouteError::Full),
            };
            routes.push(id);
        }
        Ok(Some(RoutePlan {
            state: st,
            added,
            routes,
        }))
    }

    /// The address of route `route` (not 0), if the table has it.
    pub(crate) fn address(&self, route: u32) -> Option<ActorAddress> {
        let st = self.lock();
        st.find(route).map(|i| st.routes[i].address.clone())
    }

    /// A frame whose routes [`RoutePlan::commit`] returned did not leave
    /// (its send failed or was interrupted): each route no other sent frame
    /// named leaves the table, so the sandbox cannot reach it by its id.
    pub(crate) fn revoke(&self, routes: &[u32]) {
        let mut dropped = Vec::new();
        {
            let mut st = self.lock();
            for &r in routes {
                let Some(i) = st.find(r) else { continue };
                let route = &mut st.routes[i];
                route.frames = route.frames.saturating_sub(1);
                if route.frames == 0 {
                    dropped.push(st.routes.swap_remove(i).address);
                }
            }
        }
        // Dropped outside the lock (a drop may wake a receiver).
        drop(dropped);
    }

    /// The sandbox ended: lets every address go (they stop counting as
    /// senders) and refuses new ones.
    pub(crate) fn end(&self) {
        let routes = {
            let mut st = self.lock();
            st.ended = true;
            std::mem::take(&mut st.routes)
        };
        // Dropped outside the lock (a drop may wake a receiver).
        drop(routes);
    }

    /// How many routes the table holds (tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().routes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_one_per_actor_bounded_and_let_go_at_the_end() {
        let inbox = Mailbox::new();
        let own = ActorAddress::new(inbox.clone());
        let table = RouteTable::new();
        let routes = |channels: &[&ActorAddress]| {
            table.routes_for(Some(&inbox), channels).map(|plan| {
                plan.map(|plan| {
                    let routes = plan.routes.clone();
                    let _ = plan.commit();
                    routes
                })
            })
        };
        assert_eq!(routes(&[&own, &own]), Ok(None));
        assert_eq!(routes(&[]), Ok(None));
        let others: Vec<ActorAddress> = (0..=MAX_ROUTES)
            .map(|_| ActorAddress::new(Mailbox::new()))
            .collect();
        let a = &others[0];
        let a_again = a.clone();
        // A plan not committed (its frame was not sent) adds nothing.
        drop(table.routes_for(Some(&inbox), &[a]));
        assert_eq!(table.len(), 0);
        let first = routes(&[a, &own, &a_again]).unwrap().unwrap();
        let ra = first[0];
        assert_eq!(first, vec![ra, 0, ra]);
        assert_ne!(ra, 0);
        assert!(table.address(ra).unwrap().same_actor(a));
        assert!(table.address(0).is_none() && table.address(ra ^ 1).is_none());
        // Up to the bound, in one frame: all or nothing.
        let rest: Vec<&ActorAddress> = others[1..].iter().collect();
        assert_eq!(routes(&rest).err(), Some(RouteError::Full));
        assert_eq!(table.len(), 1);
        let fits = &rest[..MAX_ROUTES as usize - 1];
        let ids = routes(fits).unwrap().unwrap();
        let mut distinct = ids.clone();
        distinct.push(ra);
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), MAX_ROUTES as usize, "ids are distinct");
        assert!(!distinct.contains(&0));
        for (id, address) in ids.iter().zip(fits) {
            assert!(table.address(*id).unwrap().same_actor(address));
        }
        assert_eq!(
            routes(&[&others[MAX_ROUTES as usize]]).err(),
            Some(RouteError::Full)
        );
        // Known ones still route when the table is full.
        assert_eq!(routes(&[a]), Ok(Some(vec![ra])));
        // Each held address counts as a sender until the end.
        let senders = |a: &ActorAddress| a.mailbox.senders();
        assert_eq!(senders(&others[5]), 2);
        table.end();
        assert_eq!(senders(&others[5]), 1);
        assert!(table.address(ra).is_none());
        assert_eq!(routes(&[a]), Err(RouteError::Ended));
        assert_eq!(routes(&[&own]), Ok(None));
    }

    /// Ids are not sequential: knowing its own routes, a sandbox cannot
    /// name the next one. (Each check below fails by chance once in 2^32
    /// or less.)
    #[test]
    fn route_ids_cannot_be_guessed_from_the_ones_given() {
        let inbox = Mailbox::new();
        let tables: Vec<Arc<RouteTable>> = (0..4).map(|_| RouteTable::new()).collect();
        let shared = ActorAddress::new(Mailbox::new());
        let mut ids = Vec::new();
        for table in &tables {
            let others: Vec<ActorAddress> =
                (0..3).map(|_| ActorAddress::new(Mailbox::new())).collect();
            let mut channels: Vec<&ActorAddress> = others.iter().collect();
            channels.push(&shared);
            let plan = table.routes_for(Some(&inbox), &channels).unwrap().unwrap();
            ids.extend(plan.routes.iter().copied());
            plan.commit();
        }
        // 16 ids, one of them (the shared actor's) in each of 4 tables.
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            16,
            "every route of every table has its own id: {ids:?}"
        );
        for pair in sorted.windows(2) {
            assert!(pair[1] - pair[0] > 1, "neighbouring ids {pair:?}");
        }
        assert!(sorted.iter().all(|&id| id > MAX_ROUTES), "{sorted:?}");
        // The shared actor's id in one table means nothing in another.
        let in_first = ids[3];
        assert!(tables[1..].iter().all(|t| t.address(in_first).is_none()));
    }

    #[test]
    fn routes_of_frames_that_did_not_leave_are_revoked_unless_another_frame_named_them() {
        let inbox = Mailbox::new();
        let table = RouteTable::new();
        let a = ActorAddress::new(Mailbox::new());
        let b = ActorAddress::new(Mailbox::new());
        let plan = |channels: &[&ActorAddress]| {
            let plan = table.routes_for(Some(&inbox), channels).unwrap().unwrap();
            (plan.routes.clone(), plan.commit())
        };
        // Frame 1 names a twice and b; frame 2 names a again.
        let (routes1, named1) = plan(&[&a, &b, &a]);
        let (ra, rb) = (routes1[0], routes1[1]);
        assert_eq!(routes1, vec![ra, rb, ra]);
        let mut both = vec![ra, rb];
        both.sort_unstable();
        assert_eq!(named1, both);
        let (_, named2) = plan(&[&a]);
        assert_eq!(named2, vec![ra]);
        assert_eq!(a.mailbox.senders(), 2);
        // Frame 1 never left: b is revoked (its address let go), a stays
        // (frame 2 named it).
        table.revoke(&named1);
        assert!(table.address(ra).unwrap().same_actor(&a));
        assert!(table.address(rb).is_none());
        assert_eq!(b.mailbox.senders(), 1);
        assert_eq!(table.len(), 1);
        // Frame 2 fails too: a goes.
        table.revoke(&named2);
        assert!(table.address(ra).is_none());
        assert_eq!(table.len(), 0);
        assert_eq!(a.mailbox.senders(), 1);
        // a comes back on a new route.
        let (routes3, _) = plan(&[&a]);
        assert_ne!(routes3[0], ra);
        assert!(table.address(routes3[0]).unwrap().same_actor(&a));
        // Revoking what does not exist does nothing.
        table.revoke(&[0, ra, rb, u32::MAX]);
        assert!(table.address(routes3[0]).unwrap().same_actor(&a));
    }

    /// Revoked routes leave the table: a sender whose sends keep being
    /// interrupted does not use up the sandbox's bound.
    #[test]
    fn revoked_routes_do_not_count_toward_the_bound() {
        let inbox = Mailbox::new();
        let table = RouteTable::new();
        for _ in 0..3 * MAX_ROUTES {
            let x = ActorAddress::new(Mailbox::new());
            let plan = table.routes_for(Some(&inbox), &[&x]).unwrap().unwrap();
            let named = plan.commit();
            table.revoke(&named);
            assert_eq!(x.mailbox.senders(), 1);
        }
        assert_eq!(table.len(), 0);
        let kept: Vec<ActorAddress> = (0..MAX_ROUTES)
            .map(|_| ActorAddress::new(Mailbox::new()))
            .collect();
        let channels: Vec<&ActorAddress> = kept.iter().collect();
        assert!(table.routes_for(Some(&inbox), &channels).unwrap().is_some());
    }
}
