//! `sotto-desktop`: starts the Sotto desktop window.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

#[allow(unsafe_code)]
fn main() {
    // SAFETY: the first thing the process does, before any thread exists.
    unsafe { sotto_desktop::rendering::configure_process() };
    if let Err(error) = sotto_desktop::run() {
        eprintln!("sotto-desktop: {error}");
        std::process::exit(1);
    }
}
