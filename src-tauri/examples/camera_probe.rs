//! Checks the app's camera permission handler (`sotto_desktop::camera::install`) in a real
//! WebKitGTK window with no WebDriver attached: a WebDriver session grants media capture by
//! itself and never asks the handler, so the end-to-end suite cannot see it. WebKitGTK's mock
//! capture devices stand in for a camera and a microphone. The page asks for the camera, the
//! microphone and both; the probe prints what the page got, one line:
//! `camera-probe video=allowed audio=NotAllowedError both=NotAllowedError`.
//! `--without-handler` leaves the handler out (then the camera is refused too), which shows
//! that the handler is what grants it. Exits 2 if the page has not answered within 30 s.

#[cfg(target_os = "linux")]
fn main() {
    use std::time::Duration;

    use tauri::Manager;
    use webkit2gtk::{SettingsExt, WebViewExt};

    let with_handler = !std::env::args().any(|a| a == "--without-handler");
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(30));
        println!("camera-probe timeout");
        std::process::exit(2);
    });
    let context = tauri::generate_context!("examples/camera-probe/tauri.conf.json");
    let result = tauri::Builder::default()
        .setup(move |app| {
            let Some(window) = app.get_webview_window("main") else {
                return Err("no main window".into());
            };
            if with_handler {
                sotto_desktop::camera::install(&window)?;
            }
            // Queued after the handler's own set-up, so the probe page loads only once the
            // handler answers permission requests.
            window.with_webview(|webview| {
                let view = webview.inner();
                if let Some(settings) = WebViewExt::settings(&view) {
                    settings.set_enable_media_stream(true);
                    settings.set_enable_mock_capture_devices(true);
                }
                view.connect_title_notify(|view| {
                    let title = view.title().map(|t| t.to_string()).unwrap_or_default();
                    if title.starts_with("camera-probe video=") {
                        println!("{title}");
                        std::process::exit(0);
                    }
                });
                view.load_uri("tauri://localhost/index.html");
            })?;
            Ok(())
        })
        .run(context);
    if let Err(error) = result {
        eprintln!("camera-probe: {error}");
        std::process::exit(1);
    }
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("camera-probe: only WebKitGTK (Linux) needs the app's own permission handler");
    std::process::exit(1);
}
