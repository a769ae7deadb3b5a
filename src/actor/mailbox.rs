//! An actor's inbox as the rest of the process sees it: the shared address
//! record that tx-channel handles point at, the queue of messages waiting
//! for a `receive`, and the rendezvous receipts going back to senders.
//!
//! Invariants:
//! - A `Mailbox` never refers to a VM or a Lua value: handles to a VM that
//!   ended keep only this small record alive (`Arc`), never its Lua state.
//! - `senders` counts live [`ActorAddress`] values naming this mailbox
//!   (tx-channel handles in any VM, addresses inside messages in flight).
//! - Every envelope taken out of `queue` gets exactly one receipt to its
//!   sender: delivered (`true`, by `take`) or refused (`false`, by `close`);
//!   an envelope withdrawn by its own sender gets none.
//! - `pending` is set whenever the owning VM's Lua side has something to
//!   look at (a message, a receipt, the sender count reaching zero, the
//!   inbox closing); the host clears it before it polls the VM.
//! - Locks are held only for queue operations: no Lua runs under them.
//! - Setting `pending` wakes the owning thread only when it sleeps
//!   (process.rs): same-thread hand-offs never make a syscall, and set it
//!   with a plain store (the owning thread is the one running).
//! - A mailbox read by Rust code (the embedding API) has a `Waiter` instead
//!   of a host thread: it is notified only while a Rust receiver waits.
//! - `feeds` are sources that a Rust receiver may drain itself while it
//!   spins (a sandbox's control socket, `host::SandboxFeed`); each feed
//!   posts its messages in order and exactly once, whoever reads it.
//! - Cache lines: the message queue with `pending` (what an idle host
//!   thread or Rust receiver spins on), and the receipts (written by
//!   receivers of this VM's sends), each sit on lines of their own, under
//!   locks of their own, apart from the `Arc`'s counts. A post into an
//!   empty queue writes one line pair (the message is kept inline) that
//!   the receiver then reads, and a receipt arriving does not contend with
//!   a message being posted.
//! - Hand-over (`take_handable`): the host may take the oldest message
//!   before its VM's step when it is a number or boolean that owes no
//!   receipt, or owes one to another VM of the same thread (which cannot
//!   run before the step ends, so it cannot tell when the message left
//!   the queue); such a message's receipt is posted after the step
//!   (`deliver`), or it is put back at the head (`put_back`). Never a
//!   VM's message to itself (its own fibers could try to withdraw it).
//! - An envelope's `sender` reference goes back with its receipt and is
//!   dropped by the sending VM's own thread when it takes its receipts:
//!   the sender's refcount line never moves to the receiver's core. Only
//!   a hosted, open mailbox keeps such references (its host takes
//!   receipts at every touched step and its teardown closes it, which
//!   drops them), so none can keep a mailbox alive.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use super::message::Message;
use super::process::ThreadSignal;

/// One message waiting in an inbox, with where its receipt goes.
pub(crate) struct Envelope {
    pub msg: Message,
    /// `None`: a message from the runtime (a monitor's notice), which no
    /// one waits to see taken.
    pub sender: Option<Arc<Mailbox>>,
    pub send_id: u64,
}

impl Envelope {
    /// A message that owes no receipt.
    pub(crate) fn unowed(msg: Message) -> Self {
        Self {
            msg,
            sender: None,
            send_id: 0,
        }
    }
}

// repr(C) here and below: the inline message comes first, right after the
// lock word, so that flag, lock and message share one 64-byte line
// (`layout_puts_flag_lock_and_first_message_on_one_line`); what follows
// is written only when messages pile up or the inbox closes.
#[derive(Default)]
#[repr(C)]
struct MailboxState {
    queue: InlineQueue<Envelope>,
    closed: bool,
}

/// A FIFO whose oldest element is kept inline (next to its lock, on the
/// same cache lines): a message or receipt that finds the queue empty, the
/// usual case, is written and read there, without touching a heap buffer
/// that would be one more line to move between the two cores.
/// Invariant: `first` is `None` only when `rest` is empty.
#[repr(C)]
struct InlineQueue<T> {
    first: Option<T>,
    rest: VecDeque<T>,
}

impl<T> Default for InlineQueue<T> {
    fn default() -> Self {
        Self {
            first: None,
            rest: VecDeque::new(),
        }
    }
}

impl<T> InlineQueue<T> {
    fn push_back(&mut self, value: T) {
        if self.first.is_none() {
            self.first = Some(value);
        } else {
            self.rest.push_back(value);
        }
    }

    fn pop_front(&mut self) -> Option<T> {
        let value = self.first.take()?;
        self.first = self.rest.pop_front();
        Some(value)
    }

    fn push_front(&mut self, value: T) {
        if let Some(old) = self.first.replace(value) {
            self.rest.push_front(old);
        }
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.first.iter_mut().chain(self.rest.iter_mut())
    }

    /// Removes the first element for which `matches` holds.
    fn remove_first(&mut self, matches: impl Fn(&T) -> bool) -> bool {
        if self.first.as_ref().is_some_and(&matches) {
            self.pop_front();
            return true;
        }
        match self.rest.iter().position(matches) {
            Some(i) => {
                self.rest.remove(i);
                true
            }
            None => false,
        }
    }

    /// Takes every element out, oldest first.
    fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.first.take().into_iter().chain(self.rest.drain(..))
    }
}

/// Rendezvous results for sends this VM made: (send id, delivered, the
/// reference to this mailbox the envelope held, handed back: see the
/// invariants). Apart from the queue: the owner takes its receipts while
/// others post messages, and each side writes only its own lock and line.
#[derive(Default)]
#[repr(C)]
struct ReceiptState {
    list: InlineQueue<(u64, bool, Option<Arc<Mailbox>>)>,
    /// Set by `close`: no reference is kept any more.
    closed: bool,
}

/// The message queue and the flag a receiver spins on, together.
#[derive(Default)]
#[repr(C)]
struct QueueLines {
    pending: AtomicBool,
    /// A hint for `take_handable`, written under the lock: set when a
    /// message it could hand over is queued, cleared when it finds none at
    /// the head (and not set again by `put_back`: a VM that does not
    /// receive pays one take and put-back per such post, not one per
    /// step). Read without the lock: actors that hear only from other
    /// threads never take the lock for it. (In the padding before the
    /// lock.)
    handable: AtomicBool,
    /// The host thread skips the VM in its rounds until `pending` is set
    /// (`set_parked`): whoever sets `pending` then clears this and notes
    /// the mailbox with the thread's signal (`ThreadSignal::note_woken`),
    /// once per parking. (In the padding before the lock too.)
    parked: AtomicBool,
    state: Mutex<MailboxState>,
}

/// A value alone on its cache lines (128 bytes: x86's adjacent-line
/// prefetcher fetches lines in pairs).
#[derive(Default)]
#[repr(align(128))]
struct CacheLines<T>(T);

impl<T> std::ops::Deref for CacheLines<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

#[derive(Default)]
pub(crate) struct Mailbox {
    queue: CacheLines<QueueLines>,
    receipts: CacheLines<Mutex<ReceiptState>>,
    senders: AtomicUsize,
    /// The host thread of the VM, once it is hosted: woken when `pending`
    /// is set while it sleeps.
    signal: OnceLock<Arc<ThreadSignal>>,
    /// The Rust receiver of an embedding application's mailbox (instead of
    /// a host thread): notified when `pending` is set while it waits.
    waiter: OnceLock<Arc<dyn Waiter>>,
    /// Sources a spinning Rust receiver reads itself (weak: each ends
    /// with its relay thread).
    feeds: Mutex<Vec<Weak<dyn Feed>>>,
    /// Set once a feed was added: receivers of other mailboxes skip the lock.
    has_feeds: AtomicBool,
}

/// A source of messages for one mailbox that a receiver spinning on that
/// mailbox may read itself, instead of waiting for the source's own
/// thread to wake up and post (a sandbox's relay, `host::SandboxFeed`).
pub(crate) trait Feed: Send + Sync {
    /// A receiver starts spinning: it calls `poll` until `stop`.
    fn start(&self);
    /// Posts to `into` (the mailbox this feed is registered with) what is
    /// ready now, unless another thread is at it; true when it posted.
    fn poll(&self, into: &Arc<Mailbox>) -> bool;
    /// The receiver stopped spinning; `soon`: it got a message and is
    /// likely to spin again shortly (a request-reply loop).
    fn stop(&self, soon: bool);
    /// A receiver that looked once (`poll` without `start`) is about to
    /// wait without looking again (an async task going to sleep): if no
    /// one spins and the source is only held for a receiver expected
    /// back soon, its own thread takes over now.
    fn hand_back(&self);
}

/// How a mailbox read outside the host threads (by Rust code) is woken.
pub(crate) trait Waiter: Send + Sync {
    /// Called after `pending` was set (SeqCst); cheap when nobody waits.
    fn notify(&self);
}

/// The value of a message handed to a step (`Mailbox::take_handable`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scalar {
    Number(f64),
    Bool(bool),
}

impl Scalar {
    fn of(msg: &Message) -> Option<Self> {
        match *msg {
            Message::Number(n) => Some(Self::Number(n)),
            Message::Bool(b) => Some(Self::Bool(b)),
            _ => None,
        }
    }
}

impl Mailbox {
    /// Whether `env`, posted to `self`, may be handed to the receiving
    /// VM's step before a receive asks (`take_handable`): a number or a
    /// boolean that owes no receipt, or owes it to another VM of the same
    /// host thread (see the invariants).
    fn is_handable(&self, env: &Envelope) -> bool {
        if Scalar::of(&env.msg).is_none() {
            return false;
        }
        match &env.sender {
            None => true,
            Some(sender) => {
                !std::ptr::eq(&**sender, self)
                    && match (sender.signal.get(), self.signal.get()) {
                        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                        _ => false,
                    }
            }
        }
    }
}

/// What `Mailbox::take` found.
pub(crate) enum Taken {
    Message(Envelope),
    Closed,
    NoSenders,
    Nothing,
}

impl Mailbox {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> MutexGuard<'_, MailboxState> {
        // A panic while holding the lock left plain data behind: go on.
        self.queue.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_receipts(&self) -> MutexGuard<'_, ReceiptState> {
        self.receipts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn mark_pending(&self) {
        let signal = self.signal.get();
        if signal.is_some_and(|s| s.is_current()) {
            // Set by the thread that hosts this mailbox's VM (a message or
            // receipt between VMs of one thread): it runs, and reads the
            // flag later in program order, so a plain store will do (a
            // SeqCst one is a locked instruction, and the wake-up's state
            // load was for other threads).
            self.queue.pending.store(true, Ordering::Relaxed);
            if self.queue.parked.load(Ordering::Relaxed) {
                // (Cleared: one note per parking, however many posts.)
                self.queue.parked.store(false, Ordering::Relaxed);
                if let Some(signal) = signal {
                    signal.note_woken(self.address());
                }
            }
            return;
        }
        // SeqCst: pairs with the sleeper's state store, then flag load
        // (process.rs `prepare_sleep`), and with `set_parked`'s store, then
        // flag load.
        self.queue.pending.store(true, Ordering::SeqCst);
        if let Some(signal) = signal {
            // One note per parking: of several posters, the one that
            // clears the flag.
            if self.queue.parked.load(Ordering::SeqCst)
                && self.queue.parked.swap(false, Ordering::SeqCst)
            {
                signal.note_woken(self.address());
            }
            signal.wake();
        } else if let Some(waiter) = self.waiter.get() {
            waiter.notify();
        }
    }

    /// Ties the mailbox to a Rust receiver (the embedding API).
    pub(crate) fn set_waiter(&self, waiter: Arc<dyn Waiter>) {
        let _ = self.waiter.set(waiter);
    }

    /// Registers a source a spinning Rust receiver may read itself.
    pub(crate) fn add_feed(&self, feed: Weak<dyn Feed>) {
        let mut feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        feeds.retain(|f| f.strong_count() > 0);
        feeds.push(feed);
        self.has_feeds.store(true, Ordering::Release);
    }

    /// The live feeds registered with this mailbox, in registration order.
    pub(crate) fn feeds(&self) -> Vec<Arc<dyn Feed>> {
        if !self.has_feeds.load(Ordering::Acquire) {
            return Vec::new();
        }
        let feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        feeds.iter().filter_map(Weak::upgrade).collect()
    }

    /// The thread that hosts its VM, once hosted.
    pub(crate) fn signal(&self) -> Option<&Arc<ThreadSignal>> {
        self.signal.get()
    }

    /// Ties the mailbox to the thread that hosts its VM.
    pub(crate) fn set_signal(&self, signal: Arc<ThreadSignal>) {
        let _ = self.signal.set(signal);
    }

    /// Clears and returns the "look at me" flag.
    pub(crate) fn take_pending(&self) -> bool {
        self.queue.pending.load(Ordering::Acquire)
            && self.queue.pending.swap(false, Ordering::AcqRel)
    }

    pub(crate) fn is_pending(&self) -> bool {
        self.queue.pending.load(Ordering::SeqCst)
    }

    /// What `ThreadSignal::note_woken` records for this mailbox.
    pub(crate) fn address(&self) -> usize {
        self as *const Self as usize
    }

    /// Parks the mailbox's VM (see `QueueLines::parked`); false, and not
    /// parked, when `pending` is set already. Called by the host thread
    /// between steps. SeqCst store then load, as in `mark_pending` in the
    /// other order: either the poster sees the VM parked (and notes it),
    /// or this sees the flag.
    pub(crate) fn set_parked(&self) -> bool {
        self.queue.parked.store(true, Ordering::SeqCst);
        if self.queue.pending.load(Ordering::SeqCst) {
            self.queue.parked.store(false, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// The host thread steps the VM again in its rounds.
    pub(crate) fn clear_parked(&self) {
        self.queue.parked.store(false, Ordering::Relaxed);
    }

    /// Queues `env`; gives it back when the inbox is closed (the sender
    /// gets `channel_closed` at once).
    pub(crate) fn post(&self, env: Envelope) -> Result<(), Envelope> {
        let mut st = self.lock();
        if st.closed {
            return Err(env);
        }
        if self.is_handable(&env) {
            self.queue.handable.store(true, Ordering::Relaxed);
        }
        st.queue.push_back(env);
        drop(st);
        self.mark_pending();
        Ok(())
    }

    /// Takes the oldest message (its sender gets a "delivered" receipt), or
    /// says why there is none.
    pub(crate) fn take(&self) -> Taken {
        let mut st = self.lock();
        if st.closed {
            return Taken::Closed;
        }
        match st.queue.pop_front() {
            Some(mut env) => {
                drop(st);
                if let Some(sender) = env.sender.take() {
                    Mailbox::receipt_returning(sender, env.send_id, true);
                }
                Taken::Message(env)
            }
            None if self.senders.load(Ordering::Acquire) == 0 => Taken::NoSenders,
            None => Taken::Nothing,
        }
    }

    /// Takes the oldest message when `is_handable` says so: the host
    /// hands it to the VM's step with the wake-up (src/actor/host.rs), so
    /// a fiber's receive needs no call into Rust. Taking it early is
    /// invisible to everyone: its sender, if any, cannot run before the
    /// step ends, and the host then posts its receipt (`deliver`) or the
    /// step gives it back (`put_back`).
    /// Returns its value and the envelope (for its receipt).
    #[inline]
    pub(crate) fn take_handable(&self) -> Option<(Scalar, Envelope)> {
        // (a stale `false` only means no hand-over this time: the receive
        // then takes the message from the queue)
        if !self.queue.handable.load(Ordering::Relaxed) {
            return None;
        }
        let mut st = self.lock();
        let value = st
            .queue
            .first
            .as_ref()
            .filter(|e| self.is_handable(e))
            .and_then(|e| Scalar::of(&e.msg));
        let Some(value) = value else {
            self.queue.handable.store(false, Ordering::Relaxed);
            return None;
        };
        let env = st.queue.pop_front()?;
        if st.queue.first.is_none() {
            self.queue.handable.store(false, Ordering::Relaxed);
        }
        Some((value, env))
    }

    /// Puts a message `take_handable` took back at the head of the queue
    /// (nothing was taken meanwhile: the VM's receives took that message
    /// first). If the inbox closed since, it is dropped like any queued
    /// message: its sender gets "refused".
    pub(crate) fn put_back(&self, env: Envelope) {
        let mut st = self.lock();
        if !st.closed {
            st.queue.push_front(env);
            return;
        }
        drop(st);
        if let Some(sender) = env.sender {
            Mailbox::receipt_returning(sender, env.send_id, false);
        }
    }

    /// The receipt of a handed-over message a receive took (see
    /// `take_handable`): "delivered" to its sender.
    pub(crate) fn deliver(env: Envelope) {
        if let Some(sender) = env.sender {
            Mailbox::receipt_returning(sender, env.send_id, true);
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Whether the inbox is open and holds no message: one handed to a
    /// waiting receiver now passes none (ring_relay.rs, `HandOver`).
    pub(crate) fn is_open_and_empty(&self) -> bool {
        let st = self.lock();
        !st.closed && st.queue.first.is_none()
    }

    /// Takes back the message `send_id` of `sender` if no receiver took it
    /// yet. O(queued messages).
    pub(crate) fn withdraw(&self, sender: &Arc<Mailbox>, send_id: u64) -> bool {
        self.lock().queue.remove_first(|e| {
            e.send_id == send_id && e.sender.as_ref().is_some_and(|s| Arc::ptr_eq(s, sender))
        })
    }

    /// Closes the inbox for good: queued messages are dropped and their
    /// senders get `channel_closed`; later sends fail at once.
    pub(crate) fn close(&self) {
        let queued = {
            let mut st = self.lock();
            if st.closed {
                return;
            }
            st.closed = true;
            st.queue.drain().collect::<Vec<_>>()
        };
        {
            // A closed mailbox keeps no reference to itself (the caller
            // holds one: none dropped here is the last).
            let mut receipts = self.lock_receipts();
            receipts.closed = true;
            for receipt in receipts.list.iter_mut() {
                receipt.2 = None;
            }
        }
        for env in queued {
            if let Some(sender) = env.sender {
                Mailbox::receipt_returning(sender, env.send_id, false);
            }
        }
        self.mark_pending();
    }

    /// Posts a receipt to `sender` and hands it back the reference the
    /// envelope held, for its own thread to drop (see the invariants).
    fn receipt_returning(sender: Arc<Mailbox>, send_id: u64, delivered: bool) {
        if sender.signal.get().is_none() {
            sender
                .lock_receipts()
                .list
                .push_back((send_id, delivered, None));
            sender.mark_pending();
            return;
        }
        let raw = Arc::into_raw(sender);
        // SAFETY: `raw` holds the envelope's strong reference until it is
        // turned back into an `Arc` below: either dropped, or pushed into
        // the receipts, where it stays while this thread holds their lock
        // (only the lock's holder takes it out); `this` is not used once
        // the guard is dropped.
        let this = unsafe { &*raw };
        let mut st = this.lock_receipts();
        if st.closed {
            st.list.push_back((send_id, delivered, None));
            drop(st);
            this.mark_pending();
            // SAFETY: the reference from `into_raw` above, taken back once.
            drop(unsafe { Arc::from_raw(raw) });
            return;
        }
        // SAFETY: as above; from here `receipts` owns the reference.
        let reference = unsafe { Arc::from_raw(raw) };
        st.list.push_back((send_id, delivered, Some(reference)));
        // Set before unlocking: once unlocked, the owner may take the
        // receipt and drop what may be the last reference.
        this.mark_pending();
        drop(st);
    }

    /// Moves the receipts that arrived into `out`, dropping the sender
    /// references they brought back (on the owner's thread).
    pub(crate) fn take_receipts(&self, out: &mut Vec<(u64, bool)>) {
        let mut st = self.lock_receipts();
        // (The caller holds a reference: none dropped here is the last.)
        while let Some((id, delivered, _reference)) = st.list.pop_front() {
            out.push((id, delivered));
        }
    }

    #[cfg(test)]
    pub(crate) fn senders(&self) -> usize {
        self.senders.load(Ordering::Acquire)
    }
}

/// The address of an actor's inbox: what a tx-channel handle holds and what
/// a message carries. Each one counts as a sender of that actor while it
/// lives (spec/actors.md §2 `nsenders`).
pub struct ActorAddress {
    pub(crate) mailbox: Arc<Mailbox>,
}

impl ActorAddress {
    pub(crate) fn new(mailbox: Arc<Mailbox>) -> Self {
        mailbox.senders.fetch_add(1, Ordering::AcqRel);
        Self { mailbox }
    }

    /// True when both name the same actor.
    pub fn same_actor(&self, other: &ActorAddress) -> bool {
        Arc::ptr_eq(&self.mailbox, &other.mailbox)
    }
}

impl Clone for ActorAddress {
    fn clone(&self) -> Self {
        Self::new(self.mailbox.clone())
    }
}

impl Drop for ActorAddress {
    fn drop(&mut self) {
        // The last sender gone wakes a receiver with `no_senders`.
        if self.mailbox.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.mailbox.mark_pending();
        }
    }
}

impl std::fmt::Debug for ActorAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ActorAddress({:p})", Arc::as_ptr(&self.mailbox))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(sender: &Arc<Mailbox>, id: u64) -> Envelope {
        Envelope {
            msg: Message::Number(id as f64),
            sender: Some(sender.clone()),
            send_id: id,
        }
    }

    fn unowed(msg: Message) -> Envelope {
        Envelope {
            msg,
            sender: None,
            send_id: 0,
        }
    }

    fn number(taken: Taken) -> Option<f64> {
        match taken {
            Taken::Message(env) => env.msg.as_number(),
            _ => None,
        }
    }

    fn handed_number(b: &Mailbox) -> Option<f64> {
        match b.take_handable() {
            Some((Scalar::Number(n), env)) => {
                assert_eq!(env.msg.as_number(), Some(n));
                Some(n)
            }
            _ => None,
        }
    }

    #[test]
    fn only_unowed_or_same_thread_numbers_and_booleans_at_the_head_are_handed_over() {
        use crate::actor::process::Process;
        let process = Process::new();
        let (here, there) = (process.add_thread().unwrap(), process.add_thread().unwrap());
        let (a, b, c) = (Mailbox::new(), Mailbox::new(), Mailbox::new());
        let unhosted = Mailbox::new();
        a.set_signal(here.clone());
        b.set_signal(here.clone());
        c.set_signal(there);
        let _sender = ActorAddress::new(b.clone());
        // owed to another thread's VM, to an unhosted (Rust) mailbox, or
        // to the receiver itself: nothing handed over, even with an
        // unowed number behind them
        assert!(b.post(env(&c, 1)).is_ok());
        assert!(b.post(env(&unhosted, 2)).is_ok());
        assert!(b.post(env(&b, 3)).is_ok());
        assert!(b.post(unowed(Message::Number(4.0))).is_ok());
        assert!(b.take_handable().is_none());
        for n in 1..=3 {
            assert_eq!(number(b.take()), Some(n as f64));
        }
        // (the hint was cleared; the next post of one sets it again)
        assert!(b.post(env(&a, 5)).is_ok());
        assert_eq!(handed_number(&b), Some(4.0));
        // owed to a VM of the same thread: handed over with its sender,
        // and a string is not
        assert!(b.post(unowed(Message::String(b"s".to_vec()))).is_ok());
        let (_, handed) = b.take_handable().expect("the same-thread number");
        assert_eq!((handed.msg.as_number(), handed.send_id), (Some(5.0), 5));
        assert!(handed.sender.as_ref().is_some_and(|s| Arc::ptr_eq(s, &a)));
        assert!(b.take_handable().is_none());
        assert!(matches!(b.take(), Taken::Message(e) if e.msg.as_str() == Some("s")));
        assert!(matches!(b.take(), Taken::Nothing));
        let mut receipts = Vec::new();
        a.take_receipts(&mut receipts);
        assert!(receipts.is_empty(), "no receipt before the step ends");
        Mailbox::deliver(handed);
        a.take_receipts(&mut receipts);
        assert_eq!(receipts, vec![(5, true)]);
    }

    #[test]
    fn a_message_put_back_comes_first_and_a_closed_inbox_refuses_it() {
        use crate::actor::process::Process;
        let process = Process::new();
        let here = process.add_thread().unwrap();
        let (a, b) = (Mailbox::new(), Mailbox::new());
        a.set_signal(here.clone());
        b.set_signal(here);
        let _sender = ActorAddress::new(b.clone());
        assert!(b.post(env(&a, 1)).is_ok());
        assert!(b.post(unowed(Message::Bool(true))).is_ok());
        let (_, first) = b.take_handable().expect("handed over");
        b.put_back(first);
        // first again, ahead of what came after it, taken by a receive
        // with its receipt
        assert_eq!(number(b.take()), Some(1.0));
        let mut receipts = Vec::new();
        a.take_receipts(&mut receipts);
        assert_eq!(receipts, vec![(1, true)]);
        assert!(matches!(b.take_handable(), Some((Scalar::Bool(true), _))));
        // put back after the inbox closed: its sender gets "refused"
        assert!(b.post(env(&a, 2)).is_ok());
        let (_, second) = b.take_handable().expect("handed over");
        b.close();
        b.put_back(second);
        receipts.clear();
        a.take_receipts(&mut receipts);
        assert_eq!(receipts, vec![(2, false)]);
        assert!(matches!(b.take(), Taken::Closed));
        assert!(b.take_handable().is_none());
    }

    #[test]
    fn every_taken_or_refused_message_gets_one_receipt_and_withdrawn_ones_none() {
        let (a, b) = (Mailbox::new(), Mailbox::new());
        let _sender = ActorAddress::new(b.clone());
        for id in 1..=3 {
            assert!(b.post(env(&a, id)).is_ok());
        }
        assert!(b.withdraw(&a, 2));
        assert!(!b.withdraw(&a, 2));
        assert!(matches!(b.take(), Taken::Message(e) if e.send_id == 1));
        b.close();
        assert!(b.post(env(&a, 4)).is_err());
        let mut receipts = Vec::new();
        a.take_receipts(&mut receipts);
        assert_eq!(receipts, vec![(1, true), (3, false)]);
        assert!(matches!(b.take(), Taken::Closed));
    }

    /// 1M messages from one thread to another through the mailbox and the
    /// sleep/wake protocol: none lost, none duplicated, in order, every one
    /// receipted, and far fewer wake-ups than messages.
    #[test]
    fn a_million_messages_across_threads() {
        use crate::actor::process::{Process, Sleep};
        const N: u64 = 1_000_000;
        let process = Process::new();
        let receiver_signal = process.add_thread().unwrap();
        let inbox = Mailbox::new();
        inbox.set_signal(receiver_signal.clone());
        let sender_box = Mailbox::new();
        let _address = ActorAddress::new(inbox.clone());
        let sender = {
            let (inbox, sender_box) = (inbox.clone(), sender_box.clone());
            std::thread::spawn(move || {
                for id in 1..=N {
                    assert!(inbox
                        .post(Envelope {
                            msg: Message::Number(id as f64),
                            sender: Some(sender_box.clone()),
                            send_id: id,
                        })
                        .is_ok());
                }
            })
        };
        let mut next = 1;
        let mut sleeps = 0u64;
        while next <= N {
            inbox.take_pending();
            match inbox.take() {
                Taken::Message(env) => {
                    assert_eq!(env.send_id, next, "lost, duplicated or reordered");
                    next += 1;
                }
                Taken::Nothing => {
                    match receiver_signal.prepare_sleep(&process, false, || inbox.is_pending()) {
                        Sleep::Wait => {
                            sleeps += 1;
                            let mut pfd = libc::pollfd {
                                fd: receiver_signal.eventfd(),
                                events: libc::POLLIN,
                                revents: 0,
                            };
                            // SAFETY: one live pollfd; a 10 s bound turns a
                            // lost wake-up into a failure, not a hang.
                            let n = unsafe { libc::poll(&mut pfd, 1, 10_000) };
                            assert_eq!(n, 1, "a wake-up was lost");
                            receiver_signal.awake(&process);
                        }
                        Sleep::Retry => {}
                        Sleep::Over => {
                            unreachable!("a thread that is not stuck never ends the process")
                        }
                    }
                }
                _ => unreachable!("the inbox stays open"),
            }
        }
        sender.join().unwrap();
        let mut receipts = Vec::new();
        sender_box.take_receipts(&mut receipts);
        assert_eq!(receipts.len() as u64, N);
        assert!(receipts.iter().all(|&(_, delivered)| delivered));
        assert!(sleeps < N / 2, "{sleeps} sleeps for {N} messages");
    }

    /// What the cache-line layout relies on: the spin flag, the lock and
    /// the inline message fit one 64-byte line (std's `Mutex` keeps its
    /// lock word before the data today; if that changes this fails and
    /// says so, nothing else breaks).
    #[test]
    fn layout_puts_flag_lock_and_first_message_on_one_line() {
        let mailbox = Mailbox::new();
        let base = &*mailbox.queue as *const QueueLines as usize;
        assert_eq!(base % 128, 0);
        let st = mailbox.lock();
        let first = &st.queue.first as *const Option<Envelope> as usize - base;
        let end = first + std::mem::size_of::<Option<Envelope>>();
        assert!(end <= 64, "inline message at {first}..{end}");
    }

    #[test]
    fn inline_queue_keeps_order_through_removal_and_drain() {
        let mut q = InlineQueue::default();
        for i in 1..=5 {
            q.push_back(i);
        }
        assert!(q.remove_first(|&x| x == 1), "the inline one");
        assert!(q.remove_first(|&x| x == 4), "one in the rest");
        assert!(!q.remove_first(|&x| x == 4));
        assert_eq!(q.pop_front(), Some(2));
        q.push_back(6);
        assert_eq!(q.drain().collect::<Vec<_>>(), vec![3, 5, 6]);
        assert_eq!(q.pop_front(), None);
        q.push_back(7);
        assert!(q.remove_first(|&x| x == 7));
        assert!(q.first.is_none() && q.rest.is_empty());
    }

    /// The reference an envelope holds to its (hosted) sender comes back
    /// with the receipt and is dropped by `take_receipts`; a closed
    /// mailbox keeps none, but its receipts still arrive.
    #[test]
    fn sender_references_come_back_with_receipts_and_close_drops_them() {
        use crate::actor::process::Process;
        let process = Process::new();
        let (a, b) = (Mailbox::new(), Mailbox::new());
        a.set_signal(process.add_thread().unwrap());
        let _to_b = ActorAddress::new(b.clone());
        assert!(b.post(env(&a, 1)).is_ok());
        assert_eq!(Arc::strong_count(&a), 2);
        assert!(matches!(b.take(), Taken::Message(e) if e.sender.is_none()));
        assert_eq!(Arc::strong_count(&a), 2, "held by the receipt");
        assert!(a.take_pending());
        let mut receipts = Vec::new();
        a.take_receipts(&mut receipts);
        assert_eq!(receipts, vec![(1, true)]);
        assert_eq!(Arc::strong_count(&a), 1);

        assert!(b.post(env(&a, 2)).is_ok());
        assert!(b.post(env(&a, 3)).is_ok());
        assert!(matches!(b.take(), Taken::Message(_)));
        assert_eq!(Arc::strong_count(&a), 3);
        a.close();
        assert_eq!(Arc::strong_count(&a), 2, "close drops the one handed back");
        b.close();
        assert_eq!(Arc::strong_count(&a), 1, "a refused receipt keeps none");
        receipts.clear();
        a.take_receipts(&mut receipts);
        assert_eq!(receipts, vec![(2, true), (3, false)]);
    }

    #[test]
    fn sender_count_follows_addresses_and_its_end_is_signalled() {
        let b = Mailbox::new();
        let first = ActorAddress::new(b.clone());
        let second = first.clone();
        assert_eq!(b.senders(), 2);
        drop(first);
        assert!(!b.take_pending());
        drop(second);
        assert!(b.take_pending());
        assert!(matches!(b.take(), Taken::NoSenders));
    }
}
