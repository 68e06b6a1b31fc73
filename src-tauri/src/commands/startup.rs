//! Start-up timing. The UI reports its first frame and its first real screen (onboarding,
//! unlock or the main window) so that a slow start shows in the log, and so that
//! scripts/measure-desktop.sh can time the release build from outside the process.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use specta::Type;

static STARTED: OnceLock<Instant> = OnceLock::new();

/// Remembers when `run` began (the first call wins).
pub(crate) fn mark_process_start() {
    let _ = STARTED.set(Instant::now());
}

/// What the UI has just put on screen.
#[derive(Debug, Clone, Copy, Deserialize, Type)]
#[serde(rename_all = "kebab-case")]
pub enum StartupStage {
    /// The first frame (the splash).
    FirstPaint,
    /// The first screen a person can use: onboarding, unlock or the conversations.
    FirstScreen,
}

impl StartupStage {
    fn name(self) -> &'static str {
        match self {
            Self::FirstPaint => "first-paint",
            Self::FirstScreen => "first-screen",
        }
    }
}

/// The UI has painted `stage`. Logged; with `SOTTO_STARTUP_REPORT=1` also written to stderr
/// with the wall-clock time, for scripts/measure-desktop.sh.
#[tauri::command]
#[specta::specta]
pub fn ui_ready(stage: StartupStage) {
    let since_start_ms = STARTED.get().map(|t| t.elapsed().as_millis());
    tracing::debug!(
        stage = stage.name(),
        ?since_start_ms,
        "start-up stage painted"
    );
    if std::env::var_os("SOTTO_STARTUP_REPORT").is_some_and(|v| v == "1") {
        let epoch_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let since_start_ms = since_start_ms.map_or_else(|| "?".to_owned(), |ms| ms.to_string());
        eprintln!(
            "sotto-startup stage={} epoch_ms={epoch_ms} since_run_ms={since_start_ms}",
            stage.name()
        );
    }
}
