//! An empty Tauri window: a blank page, no commands, no plugins, built with the app's Tauri
//! version, features and profile. It is the baseline scripts/measure-desktop.sh compares the
//! app's idle memory and start-up with: with `SOTTO_STARTUP_REPORT=1` it prints when its blank
//! page has finished loading, in the app's `sotto-startup` format.

use std::time::{SystemTime, UNIX_EPOCH};

use tauri::webview::PageLoadEvent;

fn main() {
    let report = std::env::var_os("SOTTO_STARTUP_REPORT").is_some_and(|v| v == "1");
    let context = tauri::generate_context!("examples/empty-window/tauri.conf.json");
    let result = tauri::Builder::default()
        .on_page_load(move |_webview, payload| {
            if report && payload.event() == PageLoadEvent::Finished {
                let epoch_ms = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis());
                eprintln!("sotto-startup stage=page-loaded epoch_ms={epoch_ms}");
            }
        })
        .run(context);
    if let Err(error) = result {
        eprintln!("empty-window: {error}");
        std::process::exit(1);
    }
}
