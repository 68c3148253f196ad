//! Kubernetes Events about what the operator did to an object (applied,
//! rolled, mounted, unmounted) and what went wrong (invalid spec, master
//! unavailable...), so that `kubectl describe` and `kubectl get events`
//! tell the story. Published through kube's `Recorder` (events.k8s.io/v1,
//! repeated events folded into a series). Best effort: an Event that
//! cannot be written is logged, never a reason to fail a reconcile.

use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::Resource;

/// The longest note the Events API accepts.
const MAX_NOTE: usize = 1024;

pub struct Events {
    recorder: Recorder,
}

impl Events {
    pub fn new(client: kube::Client, controller: &str) -> Self {
        let reporter = Reporter {
            controller: controller.to_string(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Events {
            recorder: Recorder::new(client, reporter),
        }
    }

    /// Something the operator did to `object`.
    pub async fn normal<K>(&self, object: &K, reason: &str, action: &str, note: String)
    where
        K: Resource<DynamicType = ()>,
    {
        self.publish(object, EventType::Normal, reason, action, note)
            .await
    }

    /// Something that went wrong with `object`.
    pub async fn warning<K>(&self, object: &K, reason: &str, action: &str, note: String)
    where
        K: Resource<DynamicType = ()>,
    {
        self.publish(object, EventType::Warning, reason, action, note)
            .await
    }

    async fn publish<K>(
        &self,
        object: &K,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) where
        K: Resource<DynamicType = ()>,
    {
        let event = Event {
            type_,
            reason: reason.to_string(),
            note: Some(truncate(note, MAX_NOTE)),
            action: action.to_string(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &object.object_ref(&())).await {
            tracing::warn!(reason, "cannot publish an Event: {e}");
        }
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn notes_are_cut_on_a_character_boundary() {
        assert_eq!(super::truncate("short".into(), 1024), "short");
        let long = "é".repeat(600); // 1200 bytes
        let cut = super::truncate(long, 1024);
        assert_eq!(cut.len(), 1024);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
