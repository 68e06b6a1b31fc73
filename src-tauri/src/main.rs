//! `sotto-desktop`: starts the Sotto desktop window.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    if let Err(error) = sotto_desktop::run() {
        eprintln!("sotto-desktop: {error}");
        std::process::exit(1);
    }
}
