//! The NATS subjects of a cluster, all under its name (`--cluster-name`), so that two clusters can share a
//! NATS server.

/// Sequenced events, published by the sequencer in position order; every node feeds its hub from them.
pub fn events(cluster: &str) -> String {
    format!("{cluster}.events")
}

/// The newest position, published by the sequencer once a second, so a node notices a lost publish on an
/// idle cluster too.
pub fn head(cluster: &str) -> String {
    format!("{cluster}.head")
}

/// Live-only events (typing, custom plugin events, push notifications): published by the node where they
/// happen, received by every node, id 0 and no order.
pub fn live(cluster: &str) -> String {
    format!("{cluster}.live")
}

/// Users whose connections every node closes (deactivated, tokens revoked).
pub fn disconnect(cluster: &str) -> String {
    format!("{cluster}.disconnect")
}

/// A poke to the sequencer: something was committed that it has not sequenced yet.
pub fn sequence(cluster: &str) -> String {
    format!("{cluster}.seq")
}

/// A poke to every node's dispatcher: deliveries were fanned out.
pub fn deliveries(cluster: &str) -> String {
    format!("{cluster}.deliveries")
}

/// A poke to every node: a timer was set (a node whose next timer is later re-plans).
pub fn timers(cluster: &str) -> String {
    format!("{cluster}.timers")
}

/// A poke to every node: the plugin catalog changed.
pub fn plugins(cluster: &str) -> String {
    format!("{cluster}.plugins")
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_subject_is_under_the_cluster_name() {
        for subject in [
            super::events("blue"),
            super::head("blue"),
            super::live("blue"),
            super::disconnect("blue"),
            super::sequence("blue"),
            super::deliveries("blue"),
            super::timers("blue"),
            super::plugins("blue"),
        ] {
            assert!(subject.starts_with("blue."), "{subject}");
        }
    }
}
