//! A mailbox read by Rust code: the receiving end an embedding application
//! hands to Lua actors as an ordinary tx-channel.
//!
//! Invariants:
//! - It is the runtime's own inbox record (`actor::mailbox::Mailbox`), so
//!   Lua's `ch:send(x)` to it is a rendezvous like any other: the Lua
//!   sender is released when Rust takes the message.
//! - A notifier (a sender posting, the last address dropped) sets `pending`
//!   (SeqCst), then reads `waiting` (SeqCst); a receiver adds itself to
//!   `waiting` (SeqCst), then reads `pending` before it sleeps. One of the
//!   two sees the other, so no wake-up is lost, and a message posted while
//!   nobody waits costs its sender one atomic load here.
//! - A blocking receiver that spins reads the sandboxes feeding this
//!   mailbox itself (`actor::mailbox::Feed`); their relay threads cover the
//!   time nobody spins. `try_recv` and `recv_async` read them once when
//!   nothing is queued, and an async receiver that goes to sleep hands
//!   their sockets back to the relays at once (no relay waits out the
//!   linger of a receiver that will not look again).
//! - Dropping the [`Mailbox`] closes the inbox: queued Lua senders get
//!   `channel_closed`, later sends fail at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::actor::mailbox::{self as inbox, Taken, Waiter};
use crate::{ActorAddress, Message};

/// Wakes Rust receivers: blocked threads (condvar) and async tasks (wakers).
#[derive(Default)]
struct RustWaiter {
    /// Receivers that are (about to be) asleep.
    waiting: AtomicUsize,
    wakers: Mutex<Vec<Waker>>,
    condvar: Condvar,
}

impl RustWaiter {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Waker>> {
        self.wakers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Waiter for RustWaiter {
    fn notify(&self) {
        if self.waiting.load(Ordering::SeqCst) == 0 {
            return;
        }
        let wakers = std::mem::take(&mut *self.lock());
        // Taking the lock above ordered this after any receiver's check of
        // `pending`: a receiver that saw nothing is in `wait` by now.
        self.condvar.notify_all();
        for waker in wakers {
            waker.wake();
        }
    }
}

/// A mailbox Rust code receives from: Lua actors see its
/// [`address`](Mailbox::address) as an ordinary channel (`ch:send(x)`).
///
/// Lua's `send` to it is a rendezvous: the Lua fiber resumes once Rust took
/// the message with one of the `recv` methods. Messages arrive in the order
/// each sender sent them.
///
/// Receiving reports [`RecvError`] (disconnected) once no address of the
/// mailbox is left anywhere (Rust values, Lua channels, messages in flight)
/// and nothing is queued: keep an address, or send one in a message,
/// before receiving. Dropping the mailbox closes it: Lua senders get
/// `channel_closed`.
///
/// ```
/// let runtime = luring::Runtime::builder().build()?;
/// let replies = runtime.mailbox();
/// let actor = runtime.spawn(luring::ActorSpec::source(
///     "double.lua",
///     "local m = require('inbox'):receive(); m.reply:send(m.n * 2)",
/// ))?;
/// actor.send(luring::Message::object([
///     ("n", 21.into()),
///     ("reply", replies.address().into()),
/// ]))?;
/// let answer = replies.recv_timeout(std::time::Duration::from_secs(30))?;
/// assert_eq!(answer.as_number(), Some(42.0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Mailbox {
    inner: Arc<inbox::Mailbox>,
    waiter: Arc<RustWaiter>,
}

/// Receiving failed: no sender is left and nothing is queued.
///
/// ```
/// let mailbox = luring::Mailbox::new();
/// drop(mailbox.address()); // the only sender is gone
/// assert_eq!(mailbox.recv(), Err(luring::RecvError));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the mailbox has no senders left and no message queued")]
pub struct RecvError;

/// Why [`Mailbox::try_recv`] returned no message (see [`Mailbox::new`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryRecvError {
    /// Nothing is queued now.
    #[error("no message is queued")]
    Empty,
    /// No sender is left and nothing is queued.
    #[error("the mailbox has no senders left and no message queued")]
    Disconnected,
}

/// Why [`Mailbox::recv_timeout`] returned no message (see
/// [`Mailbox::recv_timeout`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvTimeoutError {
    /// No message came before the deadline.
    #[error("no message came in time")]
    Timeout,
    /// No sender is left and nothing is queued.
    #[error("the mailbox has no senders left and no message queued")]
    Disconnected,
}

impl Default for Mailbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Mailbox {
    /// A new, empty mailbox. It needs no runtime: any actor of any runtime
    /// may send to its address.
    ///
    /// ```
    /// let mailbox = luring::Mailbox::new();
    /// assert_eq!(mailbox.try_recv(), Err(luring::TryRecvError::Disconnected));
    /// let _address = mailbox.address();
    /// assert_eq!(mailbox.try_recv(), Err(luring::TryRecvError::Empty));
    /// ```
    pub fn new() -> Self {
        let inner = inbox::Mailbox::new();
        let waiter = Arc::new(RustWaiter::default());
        inner.set_waiter(waiter.clone());
        Self { inner, waiter }
    }

    /// An address of this mailbox, to put in a [`Message`]
    /// (`Message::from(address)`); Lua receives it as a tx-channel. Each
    /// address counts as a sender while it lives.
    pub fn address(&self) -> ActorAddress {
        ActorAddress::new(self.inner.clone())
    }

    fn take(&self) -> Result<Message, TryRecvError> {
        self.inner.take_pending();
        match self.inner.take() {
            Taken::Message(envelope) => Ok(envelope.msg),
            Taken::Nothing => Err(TryRecvError::Empty),
            // Closed only when dropped, which needs `&mut self`: no sender.
            Taken::NoSenders | Taken::Closed => Err(TryRecvError::Disconnected),
        }
    }

    /// Takes the oldest message if one is queued, without waiting.
    ///
    /// ```
    /// let runtime = luring::Runtime::builder().build()?;
    /// let mailbox = runtime.mailbox();
    /// let actor = runtime.spawn(luring::ActorSpec::source(
    ///     "one.lua",
    ///     "require('inbox'):receive():send(1)",
    /// ))?;
    /// actor.send(mailbox.address().into())?;
    /// let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    /// let message = loop {
    ///     match mailbox.try_recv() {
    ///         Ok(m) => break m,
    ///         Err(luring::TryRecvError::Empty) if std::time::Instant::now() < deadline => {
    ///             std::thread::yield_now()
    ///         }
    ///         Err(e) => panic!("{e}"),
    ///     }
    /// };
    /// assert_eq!(message.as_number(), Some(1.0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_recv(&self) -> Result<Message, TryRecvError> {
        match self.take() {
            Err(TryRecvError::Empty) if self.poll_feeds() => self.take(),
            taken => taken,
        }
    }

    /// Reads what the sandboxes feeding this mailbox have ready now (one
    /// frame each at most, with every check their relay threads make), as
    /// one round of a spinning receiver does: right after a spinning
    /// `recv` a relay leaves its socket to receivers for a moment, and a
    /// frame must not wait that out. True when something was posted.
    fn poll_feeds(&self) -> bool {
        let mut posted = false;
        for feed in self.inner.feeds() {
            posted |= feed.poll(&self.inner);
        }
        posted
    }

    /// An async receiver found nothing and sleeps until woken: the relays
    /// of the sandboxes feeding this mailbox read their sockets from now on.
    fn hand_back_feeds(&self) {
        for feed in self.inner.feeds() {
            feed.hand_back();
        }
    }

    /// Waits for a message (blocking this thread).
    ///
    /// ```
    /// let runtime = luring::Runtime::builder().build()?;
    /// let mailbox = runtime.mailbox();
    /// let actor = runtime.spawn(luring::ActorSpec::source(
    ///     "greet.lua",
    ///     "require('inbox'):receive():send('hello')",
    /// ))?;
    /// actor.send(mailbox.address().into())?;
    /// assert_eq!(mailbox.recv()?.as_str(), Some("hello"));
    /// // The actor ended and its channel with it: no sender is left.
    /// assert_eq!(mailbox.recv(), Err(luring::RecvError));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv(&self) -> Result<Message, RecvError> {
        self.wait(None).map_err(|_| RecvError)
    }

    /// Waits for a message at most `timeout` (blocking this thread).
    ///
    /// ```
    /// let mailbox = luring::Mailbox::new();
    /// let _keep = mailbox.address();
    /// let waited = mailbox.recv_timeout(std::time::Duration::from_millis(1));
    /// assert_eq!(waited, Err(luring::RecvTimeoutError::Timeout));
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Message, RecvTimeoutError> {
        self.wait(Some(Instant::now() + timeout))
    }

    fn wait(&self, deadline: Option<Instant>) -> Result<Message, RecvTimeoutError> {
        let mut spun = false;
        loop {
            match self.take() {
                Ok(m) => return Ok(m),
                Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
                Err(TryRecvError::Empty) => {}
            }
            if !spun {
                spun = true;
                if self.spin_until_pending(deadline) {
                    continue;
                }
            }
            let mut guard = self.waiter.lock();
            self.waiter.waiting.fetch_add(1, Ordering::SeqCst);
            let mut timed_out = false;
            if !self.inner.is_pending() {
                match deadline {
                    None => {
                        guard = self
                            .waiter
                            .condvar
                            .wait(guard)
                            .unwrap_or_else(|e| e.into_inner());
                    }
                    Some(deadline) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        let (g, result) = self
                            .waiter
                            .condvar
                            .wait_timeout(guard, left)
                            .unwrap_or_else(|e| e.into_inner());
                        guard = g;
                        timed_out = result.timed_out();
                    }
                }
            }
            self.waiter.waiting.fetch_sub(1, Ordering::SeqCst);
            drop(guard);
            if timed_out {
                // A message may have come with the deadline.
                return match self.take() {
                    Ok(m) => Ok(m),
                    Err(TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
                    Err(TryRecvError::Empty) => Err(RecvTimeoutError::Timeout),
                };
            }
        }
    }

    /// Looks for a message for up to the actor host's spin bound (or until
    /// `deadline`) before the caller sleeps: an actor on another thread
    /// usually answers within a few µs, and sleeping costs a futex wake-up
    /// on each side (8–9 µs a round trip here). Nobody is told this thread
    /// waits, so a message posted meanwhile costs its sender no wake-up.
    ///
    /// Meanwhile it reads the sockets of the sandboxes that feed this
    /// mailbox itself (each in turn, so none starves), rather than wait for
    /// their relay threads to wake up: a sleeping relay costs a wake-up per
    /// round trip. Each feed posts in order, exactly once, whoever reads it.
    fn spin_until_pending(&self, deadline: Option<Instant>) -> bool {
        let feeds = self.inner.feeds();
        for feed in &feeds {
            feed.start();
        }
        let found = crate::actor::host::spin_until(
            crate::actor::host::SPIN,
            deadline,
            || self.inner.is_pending(),
            || {
                for feed in &feeds {
                    feed.poll(&self.inner);
                }
                self.inner.is_pending()
            },
        );
        for feed in &feeds {
            feed.stop(found);
        }
        found
    }

    /// Waits for a message without blocking the thread: works with any
    /// executor (it registers the task's `std::task::Waker`; no tokio
    /// dependency).
    ///
    /// ```
    /// # let runtime = luring::Runtime::builder().build()?;
    /// let mailbox = runtime.mailbox();
    /// let actor = runtime.spawn(luring::ActorSpec::source(
    ///     "hello.lua",
    ///     "require('inbox'):receive():send('hello')",
    /// ))?;
    /// actor.send(mailbox.address().into())?;
    /// // Any executor; here a minimal one from the standard library.
    /// let message = block_on(mailbox.recv_async())?;
    /// assert_eq!(message.as_str(), Some("hello"));
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     struct Unpark(std::thread::Thread);
    /// #     impl std::task::Wake for Unpark {
    /// #         fn wake(self: std::sync::Arc<Self>) { self.0.unpark() }
    /// #     }
    /// #     let waker = std::sync::Arc::new(Unpark(std::thread::current())).into();
    /// #     let mut cx = std::task::Context::from_waker(&waker);
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; }
    /// #         std::thread::park();
    /// #     }
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_async(&self) -> impl Future<Output = Result<Message, RecvError>> + Send + '_ {
        Recv {
            mailbox: self,
            registered: false,
        }
    }
}

/// The future of [`Mailbox::recv_async`].
struct Recv<'a> {
    mailbox: &'a Mailbox,
    /// Counted in `waiting` (until it completes or is dropped).
    registered: bool,
}

impl Recv<'_> {
    fn unregister(&mut self) {
        if std::mem::take(&mut self.registered) {
            self.mailbox.waiter.waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Future for Recv<'_> {
    type Output = Result<Message, RecvError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.mailbox.take() {
                Ok(m) => {
                    self.unregister();
                    return Poll::Ready(Ok(m));
                }
                Err(TryRecvError::Disconnected) => {
                    self.unregister();
                    return Poll::Ready(Err(RecvError));
                }
                Err(TryRecvError::Empty) => {}
            }
            if self.mailbox.poll_feeds() {
                continue;
            }
            let waiter = &self.mailbox.waiter;
            if !self.registered {
                waiter.waiting.fetch_add(1, Ordering::SeqCst);
                self.registered = true;
            }
            {
                let mut wakers = waiter.lock();
                if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    wakers.push(cx.waker().clone());
                }
            }
            if !self.mailbox.inner.is_pending() {
                self.mailbox.hand_back_feeds();
                return Poll::Pending;
            }
        }
    }
}

impl Drop for Recv<'_> {
    fn drop(&mut self) {
        self.unregister();
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        self.inner.close();
    }
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mailbox({:p})", Arc::as_ptr(&self.inner))
    }
}

impl From<ActorAddress> for Message {
    fn from(address: ActorAddress) -> Self {
        Message::Address(address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::mailbox::{Envelope, Feed};
    use std::sync::atomic::AtomicUsize;

    /// A source that posts one number per `poll` while it has some left
    /// (the last one first), and counts the hand-backs it got.
    #[derive(Default)]
    struct CountingFeed {
        left: AtomicUsize,
        handed_back: AtomicUsize,
    }

    impl Feed for CountingFeed {
        fn start(&self) {}
        fn poll(&self, into: &Arc<inbox::Mailbox>) -> bool {
            let left = self.left.load(Ordering::SeqCst);
            if left == 0 {
                return false;
            }
            self.left.store(left - 1, Ordering::SeqCst);
            let envelope = Envelope {
                msg: Message::from(left as f64),
                sender: None,
                send_id: 0,
            };
            into.post(envelope).is_ok()
        }
        fn stop(&self, _soon: bool) {}
        fn hand_back(&self) {
            self.handed_back.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn fed_mailbox(frames: usize) -> (Mailbox, Arc<CountingFeed>, ActorAddress) {
        let mailbox = Mailbox::new();
        let keep = mailbox.address();
        let feed = Arc::new(CountingFeed::default());
        feed.left.store(frames, Ordering::SeqCst);
        let weak: std::sync::Weak<CountingFeed> = Arc::downgrade(&feed);
        mailbox.inner.add_feed(weak);
        (mailbox, feed, keep)
    }

    #[test]
    fn try_recv_reads_what_a_feed_has_ready() {
        let (mailbox, _feed, _keep) = fed_mailbox(2);
        assert_eq!(mailbox.try_recv().unwrap().as_number(), Some(2.0));
        assert_eq!(mailbox.try_recv().unwrap().as_number(), Some(1.0));
        assert_eq!(mailbox.try_recv(), Err(TryRecvError::Empty));
    }

    #[test]
    fn recv_async_reads_feeds_and_hands_them_back_before_it_sleeps() {
        let (mailbox, feed, _keep) = fed_mailbox(1);
        let mut cx = Context::from_waker(Waker::noop());
        let mut first = std::pin::pin!(mailbox.recv_async());
        match first.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(m)) => assert_eq!(m.as_number(), Some(1.0)),
            other => panic!("expected the feed's message, got {other:?}"),
        }
        assert_eq!(feed.handed_back.load(Ordering::SeqCst), 0);
        let mut second = std::pin::pin!(mailbox.recv_async());
        assert!(second.as_mut().poll(&mut cx).is_pending());
        assert_eq!(feed.handed_back.load(Ordering::SeqCst), 1);
    }
}
