//! Events for subscriptions, across instances.
//!
//! Every event is delivered at once to the subscribers of the instance that published it
//! (`tokio::sync::broadcast`). With Redis, it is also published on a channel under the cache
//! prefix; each instance listens on that channel and hands what other instances published to its
//! own subscribers. Without Redis, or while Redis is down, events stay within their instance.

use std::sync::Arc;

use entity::interaction;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::{cache::RedisStore, domain::interactions::Recorded, metrics::Metrics};

/// Events a subscriber can wait for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Event {
    /// Interactions committed by one `recordInteraction` or `recordInteractions` call.
    InteractionsRecorded { interactions: Vec<interaction::Model> },
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    /// The publishing instance, which has already delivered the event to its own subscribers.
    origin: Uuid,
    event: Event,
}

/// Events buffered per subscriber before a slow one starts missing some.
const CAPACITY: usize = 1_024;

struct Local {
    sender: broadcast::Sender<Arc<Event>>,
    origin: Uuid,
    metrics: Arc<Metrics>,
}

impl Local {
    fn deliver(&self, event: Arc<Event>) {
        // No receiver is fine: nobody is subscribed.
        let _ = self.sender.send(event);
    }

    fn deliver_remote(&self, payload: &[u8]) {
        match serde_json::from_slice::<Envelope>(payload) {
            Ok(envelope) if envelope.origin == self.origin => {}
            Ok(envelope) => {
                self.metrics.event("received");
                self.deliver(Arc::new(envelope.event));
            }
            Err(err) => {
                self.metrics.event("undecodable");
                tracing::debug!(error = %err, "ignored an undecodable event");
            }
        }
    }
}

/// The event bus of one instance.
#[derive(Clone)]
pub struct Events {
    local: Arc<Local>,
    redis: Option<(Arc<RedisStore>, String)>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").field("redis", &self.redis.is_some()).finish()
    }
}

impl Events {
    /// Events within this process only.
    pub fn in_process(metrics: Arc<Metrics>) -> Self {
        let (sender, _) = broadcast::channel(CAPACITY);
        Self { local: Arc::new(Local { sender, origin: Uuid::new_v4(), metrics }), redis: None }
    }

    /// Events shared through Redis pub/sub on `channel`; the subscription is made in the
    /// background (and made again after Redis restarts), never blocking start-up.
    pub fn with_redis(store: Arc<RedisStore>, channel: String, metrics: Arc<Metrics>) -> Self {
        let events = Self::in_process(metrics);
        store.spawn_subscriber(channel.clone(), Arc::downgrade(&events.local), Local::deliver_remote);
        Self { redis: Some((store, channel)), ..events }
    }

    /// Receive every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.local.sender.subscribe()
    }

    /// Publish an event (after the data it describes is committed). Local subscribers get it at
    /// once; other instances through Redis when it is reachable (bounded by the Redis timeout).
    pub async fn publish(&self, event: Event) {
        let event = Arc::new(event);
        self.local.metrics.event("published");
        self.local.deliver(event.clone());
        if let Some((store, channel)) = &self.redis {
            let envelope = Envelope { origin: self.local.origin, event: (*event).clone() };
            match serde_json::to_vec(&envelope) {
                Ok(payload) => {
                    if !store.publish(channel, &payload).await {
                        self.local.metrics.event("publish_failed");
                    }
                }
                Err(err) => tracing::error!(error = %err, "could not encode an event"),
            }
        }
    }

    /// Announce the interactions a record call created (repeats of stored ones are not news).
    pub async fn interactions_recorded(&self, recorded: &[Recorded]) {
        let interactions: Vec<_> = recorded.iter().filter(|r| r.created).map(|r| r.interaction.clone()).collect();
        if !interactions.is_empty() {
            self.publish(Event::InteractionsRecorded { interactions }).await;
        }
    }
}
