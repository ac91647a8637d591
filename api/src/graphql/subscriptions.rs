//! Subscriptions (graphql-transport-ws at `/graphql`): the live feed of interactions.

use std::{collections::VecDeque, sync::Arc};

use async_graphql::{Context, ID, Result, Subscription};
use entity::interaction;
use futures_util::{Stream, stream};
use tokio::sync::broadcast::{Receiver, error::RecvError};
use uuid::Uuid;

use super::{
    context::ContextExt,
    ids::{NodeKind, parse_global_id},
    interactions::Interaction,
};
use crate::{
    auth::{Capability, Viewer},
    domain::interactions as domain,
    events::Event,
};

#[derive(Default)]
pub struct SubscriptionRoot;

/// Which recorded interactions a subscriber wants.
struct Wanted {
    viewer: Viewer,
    service_id: Option<Uuid>,
    branch: Option<String>,
}

impl Wanted {
    fn accepts(&self, model: &interaction::Model) -> bool {
        self.service_id.is_none_or(|id| model.service_id == id)
            && self.branch.as_deref().is_none_or(|b| model.branch.as_deref() == Some(b))
            && domain::check_visible(&self.viewer, model).is_ok()
    }
}

struct Feed {
    events: Receiver<Arc<Event>>,
    ready: VecDeque<interaction::Model>,
    wanted: Wanted,
}

#[Subscription]
impl SubscriptionRoot {
    /// Interactions as they are recorded (by `recordInteraction` or `recordInteractions`, on any
    /// instance), optionally only those with one service or at one branch. Staff, admins and
    /// partners with `interactions:read`.
    async fn interaction_recorded(
        &self,
        ctx: &Context<'_>,
        service_id: Option<ID>,
        branch: Option<String>,
    ) -> Result<impl Stream<Item = Interaction> + use<>> {
        let viewer = ctx.viewer().clone();
        viewer.require(Capability::ReadInteractions)?;
        let service_id = service_id.map(|id| parse_global_id(&id, NodeKind::Service, "serviceId")).transpose()?;
        let branch = branch.map(|b| b.trim().to_owned()).filter(|b| !b.is_empty());
        let feed = Feed {
            events: ctx.state()?.events.subscribe(),
            ready: VecDeque::new(),
            wanted: Wanted { viewer, service_id, branch },
        };
        Ok(stream::unfold(feed, |mut feed| async move {
            loop {
                if let Some(model) = feed.ready.pop_front() {
                    return Some((Interaction(model), feed));
                }
                match feed.events.recv().await {
                    Ok(event) => match event.as_ref() {
                        Event::InteractionsRecorded { interactions } => {
                            feed.ready.extend(interactions.iter().filter(|m| feed.wanted.accepts(m)).cloned())
                        }
                    },
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "a slow subscriber missed interaction events");
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }))
    }
}
