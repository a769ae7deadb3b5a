//! Log routing of an embedded runtime, through the public API only: with
//! a global `tracing` subscriber installed by the application, an actor's
//! panic reports (main fiber and other fibers) arrive there as ERROR events of
//! target `luring::actor` instead of on the process's stderr. (Its own
//! test binary: a global subscriber is set once per process.)

use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use luring::{ActorEnded, ActorSpec, Runtime};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

const DEADLINE: Duration = Duration::from_secs(30);

type Events = Arc<Mutex<Vec<(String, tracing::Level, String)>>>;

/// Keeps every event's target, level and message.
struct Capture(Events);

struct MessageOf(String);

impl Visit for MessageOf {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut message = MessageOf(String::new());
        event.record(&mut message);
        let meta = event.metadata();
        self.0
            .lock()
            .unwrap()
            .push((meta.target().to_owned(), *meta.level(), message.0));
    }
}

/// Waits for an event of target `luring::actor` whose message has `text`.
fn await_event(events: &Events, text: &str) -> (tracing::Level, String) {
    let until = Instant::now() + DEADLINE;
    loop {
        let found = events
            .lock()
            .unwrap()
            .iter()
            .find(|(target, _, m)| target == "luring::actor" && m.contains(text))
            .map(|(_, level, m)| (*level, m.clone()));
        if let Some(found) = found {
            return found;
        }
        assert!(Instant::now() < until, "no event with {text:?}: {events:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn reports_go_to_the_applications_subscriber() {
    let events: Events = Arc::default();
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(Capture(events.clone())),
    )
    .unwrap();
    let runtime = Runtime::builder().build().unwrap();
    let watch = runtime.mailbox();

    runtime
        .spawn(ActorSpec::source("fails.lua", "error('the disk is on fire')").monitor(&watch))
        .unwrap();
    let (level, text) = await_event(&events, "the disk is on fire");
    assert_eq!(level, tracing::Level::ERROR);
    assert!(text.contains("Main fiber from VM"), "{text}");
    assert!(text.contains("fails.lua:1"), "{text}");
    let ended = ActorEnded::from_message(&watch.recv_timeout(DEADLINE).unwrap()).unwrap();
    assert_eq!(ended.reason, "panic");

    // A fiber that is not the main one.
    runtime
        .spawn(ActorSpec::source(
            "child.lua",
            "spawn(function() error('child fiber failed') end):detach()
            require('time').sleep(0.01)",
        ))
        .unwrap();
    let (level, text) = await_event(&events, "child fiber failed");
    assert_eq!(level, tracing::Level::ERROR);
    assert!(text.starts_with("Fiber "), "{text}");

    runtime.shutdown().unwrap();
}
