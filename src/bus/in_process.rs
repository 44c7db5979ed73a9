//! The embedded bus: status events go straight to this process's hub, orders wait in the
//! in-process factory's own queue ([`factory::MemorySource`]). Nothing survives a restart,
//! and nothing needs to: the redelivery sweep hands unfinished orders out again.

use std::sync::Arc;

use async_trait::async_trait;
use factory::MemorySource;

use super::{Bus, EventHub, OutboxMessage};

pub struct InProcessBus {
    hub: Arc<EventHub>,
    queue: Arc<MemorySource>,
}

impl InProcessBus {
    pub fn new(hub: Arc<EventHub>) -> Self {
        InProcessBus { hub, queue: Arc::new(MemorySource::new()) }
    }

    /// The queue the in-process factory takes orders from.
    pub fn queue(&self) -> Arc<MemorySource> {
        self.queue.clone()
    }
}

#[async_trait]
impl Bus for InProcessBus {
    async fn publish(&self, messages: &[&OutboxMessage]) -> Vec<anyhow::Result<()>> {
        for message in messages {
            match message {
                OutboxMessage::Order { order_id, traceparent } => {
                    self.queue.push_traced(order_id.to_string(), traceparent.clone())
                }
                OutboxMessage::Status { event, traceparent, .. } => {
                    self.hub.dispatch_traced(event.clone(), traceparent.as_deref())
                }
            }
        }
        messages.iter().map(|_| Ok(())).collect()
    }

    async fn ping(&self) -> Option<anyhow::Result<()>> {
        None
    }
}
