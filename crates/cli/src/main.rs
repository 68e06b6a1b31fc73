//! `sotto`: the headless Sotto client, for scripting, servers and tests.

fn main() {
    println!("{} {}", sotto_client::APP_NAME, sotto_client::VERSION);
}
