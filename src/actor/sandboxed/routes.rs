//! A sandbox's route table: the in-process addresses its host gave it.
//!
//! Invariants:
//! - One table per sandbox, shared by everything that sends to it (its
//!   channel in the spawner's VM, or a Rust handle's link) and by its
//!   relay (on the spawner's ring or a thread). Two sandboxes never share
//!   one, so a route id means nothing to another sandbox.
//! - Route 0 is the spawner's inbox (the Rust replies mailbox), never in
//!   the table; route `r` in `1..=MAX_ROUTES` is `addresses[r - 1]`. An
//!   address enters the table when a frame to the sandbox first names it
//!   (one route per mailbox) and stays until the sandbox ended: the table
//!   counts as a sender of each of them (their `no_senders` waits for the
//!   sandbox's end), and a route id, once given, always names the same
//!   actor.
//! - A frame from the sandbox can only name routes in the table: anything
//!   else is a forged frame (that channel closes).
//! - The table is filled only for a frame about to be sent, with every
//!   check done (a full table refuses the whole frame and adds nothing).
//! - A route is revoked when every frame that named it failed or was
//!   interrupted before it left ([`RouteTable::revoke`]): a sandbox cannot
//!   use an address whose frame it never got by guessing its route (ids
//!   are sequential). A revoked id is never given again (it still counts
//!   toward the bound); the address gets a new route if sent again.

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
    /// Route `r` is `addresses[r - 1]`.
    addresses: Vec<Route>,
    /// The sandbox ended: the addresses were let go, none is added.
    ended: bool,
}

/// One route: its address (`None` once revoked) and how many frames that
/// named it were sent and not revoked.
struct Route {
    address: Option<ActorAddress>,
    frames: u32,
}

/// The routes of one frame, the table locked until it was sent.
pub(crate) struct RoutePlan<'t> {
    state: MutexGuard<'t, RouteState>,
    added: Vec<ActorAddress>,
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
            .addresses
            .extend(added.into_iter().map(|a| Route {
                address: Some(a),
                frames: 0,
            }));
        let mut named: Vec<u32> = self.routes.iter().copied().filter(|&r| r != 0).collect();
        named.sort_unstable();
        named.dedup();
        for &r in &named {
            self.state.addresses[r as usize - 1].frames += 1;
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
        let known = st.addresses.len();
        let mut added: Vec<ActorAddress> = Vec::new();
        let mut routes = Vec::with_capacity(channels.len());
        for &address in channels {
            if is_inbox(address) {
                routes.push(0);
                continue;
            }
            let found = st
                .addresses
                .iter()
                .map(|r| r.address.as_ref())
                .chain(added.iter().map(Some))
                .position(|a| a.is_some_and(|a| a.same_actor(address)));
            let index = match found {
                Some(index) => index,
                None if known + added.len() < MAX_ROUTES as usize => {
                    added.push(address.clone());
                    known + added.len() - 1
                }
                None => return Err(RouteError::Full),
            };
            routes.push(index as u32 + 1);
        }
        Ok(Some(RoutePlan {
            state: st,
            added,
            routes,
        }))
    }

    /// The address of route `route` (1 and up), if the table has it.
    pub(crate) fn address(&self, route: u32) -> Option<ActorAddress> {
        let index = usize::try_from(route).ok()?.checked_sub(1)?;
        self.lock().addresses.get(index)?.address.clone()
    }

    /// A frame whose routes [`RoutePlan::commit`] returned did not leave
    /// (its send failed or was interrupted): each route no other sent frame
    /// named is revoked, so the sandbox cannot reach it by its id.
    pub(crate) fn revoke(&self, routes: &[u32]) {
        let mut dropped = Vec::new();
        {
            let mut st = self.lock();
            for &r in routes {
                let Some(route) = (r as usize)
                    .checked_sub(1)
                    .and_then(|i| st.addresses.get_mut(i))
                else {
                    continue;
                };
                route.frames = route.frames.saturating_sub(1);
                if route.frames == 0 {
                    dropped.extend(route.address.take());
                }
            }
        }
        // Dropped outside the lock (a drop may wake a receiver).
        drop(dropped);
    }

    /// The sandbox ended: lets every address go (they stop counting as
    /// senders) and refuses new ones.
    pub(crate) fn end(&self) {
        let addresses = {
            let mut st = self.lock();
            st.ended = true;
            std::mem::take(&mut st.addresses)
        };
        // Dropped outside the lock (a drop may wake a receiver).
        drop(addresses);
    }

    /// How many addresses the table holds (tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().addresses.len()
    }

    /// How many routes can still be used (tests).
    #[cfg(test)]
    pub(crate) fn live(&self) -> usize {
        let st = self.lock();
        st.addresses.iter().filter(|r| r.address.is_some()).count()
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
        assert_eq!(routes(&[a, &own, &a_again]), Ok(Some(vec![1, 0, 1])));
        assert!(table.address(1).unwrap().same_actor(a));
        assert!(table.address(0).is_none() && table.address(2).is_none());
        // Up to the bound, in one frame: all or nothing.
        let rest: Vec<&ActorAddress> = others[1..].iter().collect();
        assert_eq!(routes(&rest).err(), Some(RouteError::Full));
        assert_eq!(table.len(), 1);
        let fits = &rest[..MAX_ROUTES as usize - 1];
        assert_eq!(routes(fits), Ok(Some((2..=MAX_ROUTES).collect::<Vec<_>>())));
        assert_eq!(
            routes(&[&others[MAX_ROUTES as usize]]).err(),
            Some(RouteError::Full)
        );
        // Known ones still route when the table is full.
        assert_eq!(routes(&[a]), Ok(Some(vec![1])));
        // Each held address counts as a sender until the end.
        let senders = |a: &ActorAddress| a.mailbox.senders();
        assert_eq!(senders(&others[5]), 2);
        table.end();
        assert_eq!(senders(&others[5]), 1);
        assert!(table.address(1).is_none());
        assert_eq!(routes(&[a]), Err(RouteError::Ended));
        assert_eq!(routes(&[&own]), Ok(None));
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
        assert_eq!((routes1, named1.clone()), (vec![1, 2, 1], vec![1, 2]));
        let (_, named2) = plan(&[&a]);
        assert_eq!(a.mailbox.senders(), 2);
        // Frame 1 never left: b is revoked (its address let go), a stays
        // (frame 2 named it).
        table.revoke(&named1);
        assert!(table.address(1).unwrap().same_actor(&a));
        assert!(table.address(2).is_none());
        assert_eq!(b.mailbox.senders(), 1);
        // Frame 2 fails too: a goes.
        table.revoke(&named2);
        assert!(table.address(1).is_none());
        assert_eq!(table.live(), 0);
        assert_eq!(a.mailbox.senders(), 1);
        // A revoked id is never given again: a comes back on a new route.
        let (routes3, _) = plan(&[&a]);
        assert_eq!(routes3, vec![3]);
        assert_eq!(table.len(), 3);
        // Revoking what does not exist does nothing.
        table.revoke(&[0, 9, u32::MAX]);
        assert!(table.address(3).unwrap().same_actor(&a));
    }
}
