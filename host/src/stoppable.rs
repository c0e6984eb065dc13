//! [`Stoppable`]: a background task with a stop signal, for the server's long-lived loops (the plugins
//! folder watcher, a cluster node's feed, sequencer role and heartbeat).

use std::future::Future;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A spawned task that ends when [`Stoppable::stop`] signals it (and is awaited), or is aborted when this
/// is dropped without stopping.
#[derive(Debug)]
pub struct Stoppable {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Stoppable {
    /// Spawns `run` on the current runtime with the receiver of its stop signal: the task should finish
    /// what it is doing and return once the receiver resolves.
    pub fn spawn<F>(run: impl FnOnce(oneshot::Receiver<()>) -> F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel();
        Stoppable {
            stop: Some(stop),
            task: Some(tokio::spawn(run(stopped))),
        }
    }

    /// Signals the task to stop and waits for it to return.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Stoppable {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_waits_for_the_task_and_drop_aborts_it() {
        let (done_tx, done_rx) = oneshot::channel::<&str>();
        let task = Stoppable::spawn(|stopped| async move {
            let _ = stopped.await;
            let _ = done_tx.send("finished");
        });
        task.stop().await;
        assert_eq!(done_rx.await.ok(), Some("finished"));

        let (alive_tx, alive_rx) = oneshot::channel::<()>();
        let task = Stoppable::spawn(|_stopped| async move {
            let _keep = alive_tx;
            std::future::pending::<()>().await;
        });
        drop(task);
        assert!(
            alive_rx.await.is_err(),
            "the aborted task dropped its sender"
        );
    }
}
