//! A service's background workers — its relay, its consumers, any loop it runs beside the HTTP
//! server (a sweeper, a policy follower) — started with the service through [`Workers::spawn`],
//! each handed the service's stop, supervised, and awaited when the service stops: a stop lets
//! each finish the work in hand. No service spawns a background task any other way.
//!
//! A worker that panics or ends on its own is restarted with backoff and counted
//! (`worker_restarts_total{worker}`); its state is in [`WorkerHealth`], which `/readyz` reports
//! (not ready while a worker is down or crash-looping) and `/healthz` turns into a failure once a
//! worker has been unhealthy for longer than a grace period, so that an orchestrator replaces
//! the process. Only a failpoint's simulated crash is not restarted: it stands for a killed
//! process.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::messaging::{ConsumerError, Failpoint, RelayError};

/// How a worker's run ended, when it did not end because the service stopped.
#[derive(Debug)]
pub enum WorkerExit {
    /// A failpoint simulated a killed process: the worker stays down.
    Crashed(Failpoint),
    /// Anything else: the worker is restarted.
    Failed(String),
}

impl From<ConsumerError> for WorkerExit {
    fn from(e: ConsumerError) -> Self {
        match e {
            ConsumerError::Crashed(p) => Self::Crashed(p),
            e @ ConsumerError::Kafka(_) => Self::Failed(e.to_string()),
        }
    }
}

impl From<RelayError> for WorkerExit {
    fn from(e: RelayError) -> Self {
        match e {
            RelayError::Crashed(p) => Self::Crashed(p),
            e => Self::Failed(e.to_string()),
        }
    }
}

/// One run of a worker, until the stop it was handed resolves.
pub type WorkerRun = Pin<Box<dyn Future<Output = Result<(), WorkerExit>> + Send>>;
/// The stop a worker is handed: resolves when the service stops.
pub type StopSignal = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Failures within this window count towards a crash loop.
const CRASH_WINDOW: Duration = Duration::from_secs(60);
/// This many failures within the window make a worker crash-looping: not ready.
const CRASH_LOOP: usize = 3;
/// A worker unhealthy for this long fails liveness.
pub const LIVENESS_GRACE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Running,
    Restarting,
    CrashLooping,
    /// Simulated crash: stays down.
    Down,
    /// The service is stopping.
    Stopped,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Restarting => "restarting",
            Self::CrashLooping => "crash-looping",
            Self::Down => "down",
            Self::Stopped => "stopped",
        }
    }

    fn healthy(self) -> bool {
        matches!(self, Self::Running | Self::Stopped)
    }
}

#[derive(Debug, Default)]
struct WorkerState {
    running: bool,
    down: bool,
    stopped: bool,
    restarts: u64,
    failures: VecDeque<Instant>,
    unhealthy_since: Option<Instant>,
    last_error: Option<String>,
}

impl WorkerState {
    /// What the worker's record says at `now` (pure: tested below).
    fn status(&self, now: Instant) -> Status {
        let recent = self
            .failures
            .iter()
            .filter(|&&t| now.duration_since(t) < CRASH_WINDOW)
            .count();
        if self.stopped {
            Status::Stopped
        } else if self.down {
            Status::Down
        } else if !self.running {
            Status::Restarting
        } else if recent >= CRASH_LOOP {
            Status::CrashLooping
        } else {
            Status::Running
        }
    }
}

/// The state of a service's workers, shared by the supervisor and the health routes.
#[derive(Debug, Clone, Default)]
pub struct WorkerHealth(Arc<Mutex<BTreeMap<String, WorkerState>>>);

impl WorkerHealth {
    fn update(&self, name: &str, f: impl FnOnce(&mut WorkerState)) {
        if let Ok(mut all) = self.0.lock() {
            f(all.entry(name.to_owned()).or_default());
        }
    }

    fn started(&self, name: &str) {
        self.update(name, |s| s.running = true);
    }

    fn failed(&self, name: &str, error: &str, crashed: bool) {
        let now = Instant::now();
        self.update(name, |s| {
            s.running = false;
            s.down = crashed;
            s.restarts += u64::from(!crashed);
            s.failures.push_back(now);
            while s.failures.len() > CRASH_LOOP {
                s.failures.pop_front();
            }
            s.unhealthy_since.get_or_insert(now);
            s.last_error = Some(error.to_owned());
        });
    }

    fn stopped(&self, name: &str) {
        self.update(name, |s| {
            s.running = false;
            s.stopped = true;
        });
    }

    /// Every worker's state, and whether all are healthy (readiness).
    pub fn report(&self) -> (bool, Value) {
        let now = Instant::now();
        let Ok(mut all) = self.0.lock() else {
            return (false, json!({}));
        };
        let mut ok = true;
        let mut report = serde_json::Map::new();
        for (name, state) in all.iter_mut() {
            let status = state.status(now);
            if status.healthy() {
                state.unhealthy_since = None;
            } else {
                ok = false;
            }
            report.insert(
                name.clone(),
                json!({
                    "state": status.word(),
                    "restarts": state.restarts,
                    "last_error": state.last_error,
                }),
            );
        }
        (ok, Value::Object(report))
    }

    /// The workers that have been unhealthy for longer than `grace` (liveness fails).
    pub fn stuck(&self, grace: Duration) -> Vec<String> {
        let now = Instant::now();
        let Ok(all) = self.0.lock() else {
            return Vec::new();
        };
        all.iter()
            .filter(|(_, s)| {
                !s.status(now).healthy()
                    && s.unhealthy_since
                        .is_some_and(|t| now.duration_since(t) >= grace)
            })
            .map(|(name, _)| name.clone())
            .collect()
    }
}

/// What runs beside the HTTP server.
#[derive(Debug)]
pub struct Workers {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    health: WorkerHealth,
}

fn stop_signal(stop: &watch::Sender<bool>) -> StopSignal {
    let mut rx = stop.subscribe();
    Box::pin(async move {
        let _ = rx.wait_for(|stopped| *stopped).await;
    })
}

/// 200 ms doubling to 10 s.
fn backoff(failures: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << failures.min(7)).min(10_000))
}

fn panic_message(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .map_or_else(|| "panicked".to_owned(), |m| format!("panicked: {m}")),
        Err(e) => e.to_string(),
    }
}

impl Default for Workers {
    fn default() -> Self {
        Self::new()
    }
}

impl Workers {
    pub fn new() -> Self {
        Self {
            stop: watch::channel(false).0,
            tasks: Vec::new(),
            health: WorkerHealth::default(),
        }
    }

    /// The workers' state, for the health routes.
    pub fn health(&self) -> WorkerHealth {
        self.health.clone()
    }

    /// Starts a supervised worker: `start` makes one run of it, handed the service's stop. A run
    /// that panics, fails or ends before the stop is started again with backoff.
    pub fn spawn<F>(&mut self, name: impl Into<String>, start: F)
    where
        F: Fn(StopSignal) -> Result<WorkerRun, String> + Send + 'static,
    {
        let name = name.into();
        let health = self.health.clone();
        let stop = self.stop.clone();
        health.started(&name);
        self.tasks.push(tokio::spawn(async move {
            let mut failures = 0u32;
            loop {
                let began = Instant::now();
                let error = match start(stop_signal(&stop)) {
                    Ok(run) => {
                        health.started(&name);
                        // A run of its own, so that a panic ends the run, not the supervisor.
                        match tokio::spawn(run).await {
                            Ok(Ok(())) => "ended on its own".to_owned(),
                            Ok(Err(WorkerExit::Failed(e))) => e,
                            Ok(Err(WorkerExit::Crashed(point))) => {
                                tracing::error!(worker = %name, ?point, "worker crashed at a failpoint; it stays down");
                                health.failed(&name, &format!("crashed at {point:?}"), true);
                                return;
                            }
                            Err(e) => panic_message(e),
                        }
                    }
                    Err(e) => e,
                };
                if *stop.borrow() {
                    break;
                }
                if began.elapsed() > CRASH_WINDOW {
                    failures = 0;
                }
                failures += 1;
                metrics::counter!("worker_restarts_total", "worker" => name.clone()).increment(1);
                health.failed(&name, &error, false);
                let wait = backoff(failures);
                tracing::error!(worker = %name, error = %error, restart_in_ms = wait.as_millis(), "worker died; restarting");
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = stop_signal(&stop) => break,
                }
            }
            health.stopped(&name);
        }));
    }

    /// Starts a loop that only ends when the service stops (a sweeper, a follower): `run` is
    /// handed the stop; a panic or an early end restarts it like any worker.
    pub fn spawn_loop<F, Fut>(&mut self, name: impl Into<String>, run: F)
    where
        F: Fn(StopSignal) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.spawn(name, move |stop| {
            let run = run(stop);
            Ok(Box::pin(async move {
                run.await;
                Ok(())
            }))
        });
    }

    /// Stops every worker and waits for it.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_is_healthy_while_it_runs_and_not_while_it_is_down_or_looping() {
        let now = Instant::now();
        let mut s = WorkerState {
            running: true,
            ..WorkerState::default()
        };
        assert_eq!(s.status(now), Status::Running);
        s.running = false;
        s.failures.push_back(now);
        assert_eq!(s.status(now), Status::Restarting);
        s.running = true;
        assert_eq!(s.status(now), Status::Running, "one restart is no loop");
        s.failures.extend([now, now]);
        assert_eq!(s.status(now), Status::CrashLooping);
        assert_eq!(
            s.status(now + CRASH_WINDOW),
            Status::Running,
            "old failures age out"
        );
        s.down = true;
        assert_eq!(s.status(now), Status::Down);
        s.stopped = true;
        assert!(
            s.status(now).healthy(),
            "a stopping service is not unhealthy"
        );
    }

    #[test]
    fn health_reports_each_worker_and_who_is_stuck() {
        let h = WorkerHealth::default();
        h.started("relay");
        h.started("consumer:order#0");
        assert!(h.report().0);
        h.failed("consumer:order#0", "panicked: boom", false);
        let (ok, report) = h.report();
        assert!(!ok);
        assert_eq!(report["consumer:order#0"]["state"], "restarting");
        assert_eq!(report["consumer:order#0"]["restarts"], 1);
        assert_eq!(report["consumer:order#0"]["last_error"], "panicked: boom");
        assert_eq!(report["relay"]["state"], "running");
        assert_eq!(h.stuck(Duration::ZERO), vec!["consumer:order#0".to_owned()]);
        assert!(h.stuck(LIVENESS_GRACE).is_empty());
        h.started("consumer:order#0");
        assert!(h.report().0);
        assert!(h.stuck(Duration::ZERO).is_empty());
    }

    #[tokio::test]
    async fn a_loop_is_handed_the_stop_and_awaited_by_it() {
        let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut workers = Workers::new();
        let flag = Arc::clone(&finished);
        workers.spawn_loop("sweeper", move |stop| {
            let flag = Arc::clone(&flag);
            async move {
                stop.await;
                // Work that takes a while after the stop still completes before stop() returns.
                tokio::task::yield_now().await;
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        });
        let health = workers.health();
        assert_eq!(health.report().1["sweeper"]["state"], "running");
        workers.stop().await;
        assert!(finished.load(std::sync::atomic::Ordering::SeqCst));
        assert_eq!(health.report().1["sweeper"]["state"], "stopped");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert!(backoff(4) > backoff(3));
        assert_eq!(backoff(40), Duration::from_secs(10));
    }
}
