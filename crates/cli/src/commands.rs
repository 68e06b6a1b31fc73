//! One function per command.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use sotto_client::privacy::{PrivacySettings, parse_duration_secs};
use sotto_client::{Client, Event, account_hex, qr_image};
use sotto_store::{Contact, KdfParams, KeyProtection, Passphrase, Store, backup};
use zeroize::Zeroizing;

use crate::exit::{CliError, Code};
use crate::output;
use crate::profile::{self, Secrets};
use crate::{BackupCmd, Cli, Command, ContactsCmd, SettingsCmd};

struct Ctx {
    json: bool,
}

impl Ctx {
    fn print(&self, human: impl AsRef<str>, value: serde_json::Value) {
        if self.json {
            println!("{value}");
        } else {
            println!("{}", human.as_ref());
        }
    }
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let dir = profile::profile_dir(cli.profile)?;
    let secrets = Secrets {
        passphrase_file: cli.passphrase_file,
    };
    let ctx = Ctx { json: cli.json };
    match cli.command {
        Command::Init {
            relay,
            relay_ca,
            username,
            pin,
        } => {
            let relay_ca = relay_ca
                .map(|path| {
                    std::fs::read(&path).map_err(|e| {
                        CliError::new(
                            Code::Failure,
                            format!("cannot read {}: {e}", path.display()),
                        )
                    })
                })
                .transpose()?;
            init(
                &ctx,
                &dir,
                &secrets,
                &relay,
                relay_ca.as_deref(),
                &username,
                pin,
            )
            .await
        }
        Command::Backup {
            action:
                BackupCmd::Import {
                    file,
                    backup_passphrase_file,
                },
        } => backup_import(
            &ctx,
            &dir,
            &secrets,
            &file,
            backup_passphrase_file.as_deref(),
        ),
        Command::DeleteAccount { yes, keep_profile } => {
            delete_account(&ctx, &dir, &secrets, yes, keep_profile).await
        }
        command => {
            let store = profile::open(&dir, &secrets)?;
            let relay = Client::saved_relay(&store)?.ok_or_else(|| {
                CliError::new(Code::Failure, "this profile has no relay; run `sotto init`")
            })?;
            let mut client = Client::open(store, &relay)?;
            with_client(&ctx, &mut client, command).await
        }
    }
}

async fn init(
    ctx: &Ctx,
    dir: &Path,
    secrets: &Secrets,
    relay: &str,
    relay_ca: Option<&[u8]>,
    username: &str,
    pin: bool,
) -> Result<(), CliError> {
    let pin = if pin { Some(read_pin()?) } else { None };
    if Store::exists(dir) {
        return Err(CliError::new(
            Code::Failure,
            "a profile already exists in this folder",
        ));
    }
    let store = profile::create(dir, secrets)?;
    let mut client = Client::open(store, relay)?;
    let result = match client.set_relay_ca(relay_ca) {
        Ok(()) => register(&mut client, username, pin.as_deref().map(|p| p.as_str())).await,
        Err(e) => Err(CliError::new(Code::Failure, format!("--relay-ca: {e}"))),
    };
    if let Err(mut e) = result {
        // Leave no half-made profile behind, neither its files nor (in keyring mode) the
        // key's keyring entry, which would otherwise be orphaned with nothing naming it: the
        // next `init` must be able to start over.
        if let Err(cleanup) = client.into_store().delete() {
            e.message = format!("{}\n{cleanup}", e.message);
        }
        return Err(e);
    }
    ctx.print(
        format!(
            "Created profile for {username} on {relay}\nAccount id: {}",
            account_hex(&client.account().0)
        ),
        json!({"type": "init", "username": username, "account": account_hex(&client.account().0)}),
    );
    Ok(())
}

async fn delete_account(
    ctx: &Ctx,
    dir: &Path,
    secrets: &Secrets,
    yes: bool,
    keep_profile: bool,
) -> Result<(), CliError> {
    if !yes {
        return Err(CliError::new(
            Code::Usage,
            "this deletes the account for good; run again with --yes to confirm",
        ));
    }
    let store = profile::open(dir, secrets)?;
    let relay = Client::saved_relay(&store)?.ok_or_else(|| {
        CliError::new(Code::Failure, "this profile has no relay; run `sotto init`")
    })?;
    let mut client = Client::open(store, &relay)?;
    client.connect(3).await?;
    client.delete_account().await.map_err(|e| {
        CliError::new(
            Code::Relay,
            format!("the relay did not confirm the deletion (retrying is safe): {e}"),
        )
    })?;
    let account = account_hex(&client.account().0);
    if !keep_profile {
        client.into_store().delete().map_err(|e| {
            CliError::new(
                Code::Failure,
                format!(
                    "the account is deleted from the relay, but the profile folder {} could \
                     not be removed: {e}",
                    dir.display()
                ),
            )
        })?;
    }
    ctx.print(
        if keep_profile {
            "Account deleted from the relay; the local profile was kept".to_owned()
        } else {
            "Account deleted from the relay, and this profile removed".to_owned()
        },
        json!({"type": "account-deleted", "account": account, "profile_kept": keep_profile}),
    );
    Ok(())
}

async fn register(client: &mut Client, username: &str, pin: Option<&str>) -> Result<(), CliError> {
    client.connect(3).await?;
    client
        .register()
        .await
        .map_err(|e| CliError::new(Code::Relay, format!("registration failed: {e}")))?;
    client
        .claim_username(username, pin)
        .await
        // Error lines may end up in a service's log: they never repeat a username.
        .map_err(|e| CliError::new(Code::Username, format!("cannot claim the username: {e}")))
}

fn read_pin() -> Result<Zeroizing<String>, CliError> {
    if let Ok(p) = std::env::var("SOTTO_PIN") {
        return Ok(Zeroizing::new(p));
    }
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|_| CliError::new(Code::Failure, "cannot read the PIN from stdin"))?;
    let pin = Zeroizing::new(line.trim().to_owned());
    if pin.len() < 4 {
        return Err(CliError::new(
            Code::Failure,
            "the PIN must have at least 4 characters",
        ));
    }
    Ok(pin)
}

fn contact(client: &Client, name: &str) -> Result<Contact, CliError> {
    client
        .find_contact(name)?
        .ok_or_else(|| CliError::new(Code::NotFound, "no such contact"))
}

async fn with_client(ctx: &Ctx, client: &mut Client, command: Command) -> Result<(), CliError> {
    match command {
        Command::Whoami => {
            let username = client.username()?;
            ctx.print(
                format!(
                    "{} on {}\nAccount id: {}",
                    username.as_deref().unwrap_or("(no username)"),
                    client.relay_url(),
                    account_hex(&client.account().0)
                ),
                json!({"type": "whoami", "username": username, "relay": client.relay_url(),
                       "account": account_hex(&client.account().0)}),
            );
            Ok(())
        }
        Command::Contacts { action } => contacts(ctx, client, action).await,
        Command::Send { name, text } => {
            let c = match client.find_contact(&name)? {
                Some(c) => c,
                None => {
                    let added = client.add_contact(&name).await?;
                    contact(client, &account_hex(&added.contact.0))?
                }
            };
            let id = client.send_text(&c.account, &text).await?;
            ctx.print(
                format!("Sent to {}", output::name(&c)),
                json!({"type": "sent", "contact": output::name(&c), "id": output::hex(&id)}),
            );
            Ok(())
        }
        Command::Receive {
            follow,
            timeout,
            no_read,
        } => receive(ctx, client, follow, Duration::from_secs(timeout), !no_read).await,
        Command::Messages { name, limit } => {
            let c = contact(client, &name)?;
            let conv = client
                .store()
                .conversation_with(&c.account, 0)
                .map_err(CliError::from)?;
            for m in client.store().newest_messages(conv, limit)? {
                ctx.print(output::message_line(&c, &m), output::message_json(&c, &m));
            }
            Ok(())
        }
        Command::SafetyNumber { name, qr_png } => {
            let c = contact(client, &name)?;
            let number = client.safety_number(&c.account)?;
            if let Some(path) = &qr_png {
                let payload = client.verification_payload(&c.account)?;
                write_qr(path, &payload)?;
            }
            ctx.print(
                format!(
                    "Safety number with {} ({}):\n{}",
                    output::name(&c),
                    output::verification(c.verification),
                    output::grouped(&number)
                ),
                json!({"type": "safety_number", "contact": output::name(&c), "number": number,
                       "verification": output::verification(c.verification)}),
            );
            Ok(())
        }
        Command::Verify {
            name,
            scan,
            manual,
            reset,
        } => {
            let c = contact(client, &name)?;
            let outcome = if let Some(path) = scan {
                let payload = qr_image::decode_image_file(&path).map_err(|e| {
                    CliError::new(Code::Mismatch, format!("cannot read a QR code: {e}"))
                })?;
                client.verify_scanned(&c.account, &payload)?;
                "verified"
            } else if manual {
                client.set_verified(&c.account, true)?;
                "verified"
            } else if reset {
                client.set_verified(&c.account, false)?;
                "unverified"
            } else {
                return Err(CliError::new(
                    Code::Failure,
                    "say how: --scan IMAGE, --manual or --reset",
                ));
            };
            ctx.print(
                format!("{} is now {outcome}", output::name(&c)),
                json!({"type": "verification", "contact": output::name(&c), "state": outcome}),
            );
            Ok(())
        }
        Command::Invite { qr_png } => {
            let invite = client.invite()?;
            write_qr(&qr_png, &invite)?;
            ctx.print(
                format!("Invite written to {}", qr_png.display()),
                json!({"type": "invite", "file": qr_png}),
            );
            Ok(())
        }
        Command::Disappearing { name, duration } => {
            let secs = parse_duration_secs(&duration)
                .map_err(|e| CliError::new(Code::Failure, format!("{duration}: {e}")))?;
            let c = contact(client, &name)?;
            client.set_disappearing_timer(&c.account, secs).await?;
            ctx.print(
                format!(
                    "Messages with {} now disappear after {}",
                    output::name(&c),
                    sotto_client::privacy::format_duration_secs(secs)
                ),
                json!({"type": "disappearing", "contact": output::name(&c), "seconds": secs}),
            );
            Ok(())
        }
        Command::Settings { action } => settings(ctx, client, action),
        Command::Backup {
            action:
                BackupCmd::Export {
                    file,
                    backup_passphrase_file,
                },
        } => {
            let pass = backup_passphrase(backup_passphrase_file.as_deref())?;
            backup::export(
                client.store(),
                &file,
                &pass,
                KdfParams::default(),
                &mut |_| {},
            )
            .map_err(|e| CliError::new(Code::Failure, e.to_string()))?;
            ctx.print(
                format!("Backup written to {}", file.display()),
                json!({"type": "backup", "file": file}),
            );
            Ok(())
        }
        Command::Search { text, limit } => {
            // A restored profile's messages may still wait for the search index (the event
            // pump indexes them in the background); a one-shot search finishes that first.
            client.finish_search_index()?;
            for m in client.store().search(&text, limit)? {
                let conv = client.store().conversation(m.conversation)?;
                let c = match conv {
                    Some(conv) => client.store().contact(&conv.contact)?,
                    None => None,
                };
                if let Some(c) = c {
                    ctx.print(output::message_line(&c, &m), output::message_json(&c, &m));
                }
            }
            Ok(())
        }
        Command::Init { .. } | Command::Backup { .. } | Command::DeleteAccount { .. } => Err(
            CliError::new(Code::Failure, "internal: command handled elsewhere"),
        ),
    }
}

async fn contacts(ctx: &Ctx, client: &mut Client, action: ContactsCmd) -> Result<(), CliError> {
    let (c, what) = match action {
        ContactsCmd::List => {
            for c in client.contacts()? {
                ctx.print(output::contact_line(&c), output::contact_json(&c));
            }
            return Ok(());
        }
        ContactsCmd::Add { name, invite } => {
            let added = match (invite, name) {
                (Some(path), _) => {
                    let payload = qr_image::decode_image_file(&path).map_err(|e| {
                        CliError::new(Code::Failure, format!("cannot read a QR code: {e}"))
                    })?;
                    client.add_contact_from_invite(&payload).await?
                }
                (None, Some(name)) => client.add_contact(&name).await?,
                (None, None) => return Err(CliError::new(Code::Failure, "name a contact")),
            };
            let c = contact(client, &account_hex(&added.contact.0))?;
            if added.key_changed {
                eprintln!(
                    "sotto: warning: the safety number with {} changed. Verify it before \
                     trusting new messages.",
                    output::name(&c)
                );
            }
            (c, "added")
        }
        ContactsCmd::Block { name } => {
            let c = contact(client, &name)?;
            client.set_blocked(&c.account, true)?;
            (c, "blocked")
        }
        ContactsCmd::Unblock { name } => {
            let c = contact(client, &name)?;
            client.set_blocked(&c.account, false)?;
            (c, "unblocked")
        }
        ContactsCmd::Accept { name } => {
            let c = contact(client, &name)?;
            client.answer_request(&c.account, true)?;
            (c, "accepted")
        }
        ContactsCmd::Delete { name } => {
            let c = contact(client, &name)?;
            client.delete_contact(&c.account)?;
            (c, "deleted")
        }
    };
    let c = client
        .find_contact(&account_hex(&c.account.0))?
        .unwrap_or(c);
    let mut value = output::contact_json(&c);
    value["action"] = json!(what);
    ctx.print(format!("{what}: {}", output::contact_line(&c)), value);
    Ok(())
}

async fn receive(
    ctx: &Ctx,
    client: &mut Client,
    follow: bool,
    timeout: Duration,
    mark_read: bool,
) -> Result<(), CliError> {
    client.connect(3).await?;
    if let Err(e) = client.flush_outbox().await {
        eprintln!("sotto: queued messages not sent yet: {e}");
    }
    let deadline = Instant::now() + timeout;
    let mut drained = false;
    loop {
        let wait = if follow {
            Duration::from_secs(3600)
        } else if drained {
            Duration::from_millis(300)
        } else {
            deadline.saturating_duration_since(Instant::now())
        };
        if !follow && wait.is_zero() {
            break;
        }
        let waited_from = Instant::now();
        let event = client.next_event(wait).await?;
        match event {
            // Only a quiet `wait` ends it: `None` also follows housekeeping such as sending
            // owed receipts, which returns at once.
            None if !follow && drained && waited_from.elapsed() >= wait => break,
            None => {}
            Some(Event::QueueDrained) => drained = true,
            Some(Event::Message {
                contact: id,
                message,
                request,
                key_changed,
            }) => {
                let Some(c) = client.store().contact(&id)? else {
                    continue;
                };
                if key_changed {
                    eprintln!(
                        "sotto: warning: the safety number with {} changed",
                        output::name(&c)
                    );
                }
                if let Some(m) = client.store().message(message)? {
                    let mut value = output::message_json(&c, &m);
                    value["request"] = json!(request);
                    value["key_changed"] = json!(key_changed);
                    ctx.print(output::message_line(&c, &m), value);
                }
                if mark_read && !request {
                    client.mark_read(&id).await.ok();
                }
            }
            Some(Event::Delivered { contact, ids }) => receipts(ctx, client, contact, ids, false)?,
            Some(Event::Read { contact, ids }) => receipts(ctx, client, contact, ids, true)?,
            Some(Event::TimerChanged { contact, seconds }) => {
                let name = client
                    .store()
                    .contact(&contact)?
                    .map(|c| output::name(&c))
                    .unwrap_or_default();
                ctx.print(
                    format!(
                        "{name} set disappearing messages to {}",
                        sotto_client::privacy::format_duration_secs(seconds)
                    ),
                    json!({"type": "timer", "contact": name, "seconds": seconds}),
                );
            }
            Some(Event::Expired { messages }) => ctx.print(
                format!("{} disappearing message(s) deleted", messages.len()),
                json!({"type": "expired", "count": messages.len()}),
            ),
            // A one-shot receive reports the outage; a follower waits for the pump to
            // reconnect by itself.
            Some(Event::ConnectionLost) if !follow => {
                return Err(sotto_client::ReceiveError::NotConnected.into());
            }
            Some(Event::ConnectionLost) => eprintln!("sotto: relay connection lost; reconnecting"),
            Some(Event::Reconnected) => eprintln!("sotto: reconnected to the relay"),
            Some(Event::Typing { .. }) | Some(_) => {}
        }
    }
    client.send_owed_receipts().await;
    Ok(())
}

fn receipts(
    ctx: &Ctx,
    client: &Client,
    contact: sotto_store::AccountId,
    ids: Vec<[u8; 16]>,
    read: bool,
) -> Result<(), CliError> {
    let name = client
        .store()
        .contact(&contact)?
        .map(|c| output::name(&c))
        .unwrap_or_default();
    let what = if read { "read" } else { "delivered" };
    for id in ids {
        ctx.print(
            format!("{name} {what} {}", output::hex(&id)),
            json!({"type": what, "contact": name, "id": output::hex(&id)}),
        );
    }
    Ok(())
}

fn settings(ctx: &Ctx, client: &mut Client, action: SettingsCmd) -> Result<(), CliError> {
    let mut s = client.privacy()?;
    let bad = |e: sotto_client::privacy::SettingError| CliError::new(Code::Failure, e.to_string());
    match action {
        SettingsCmd::Get { key: Some(key) } => {
            let v = s.get(&key).map_err(bad)?;
            ctx.print(&v, json!({"type": "setting", "key": key, "value": v}));
        }
        SettingsCmd::Get { key: None } => {
            for info in PrivacySettings::describe() {
                let v = s.get(info.key).map_err(bad)?;
                ctx.print(
                    format!(
                        "{} = {v}\n    {}: {}",
                        info.key, info.label, info.protects_against
                    ),
                    json!({"type": "setting", "key": info.key, "value": v, "label": info.label,
                           "protects_against": info.protects_against}),
                );
            }
        }
        SettingsCmd::Set { key, value } => {
            s.set(&key, &value).map_err(bad)?;
            client
                .set_privacy(&s)
                .map_err(|e| CliError::new(Code::Failure, e.to_string()))?;
            let v = s.get(&key).map_err(bad)?;
            ctx.print(
                format!("{key} = {v}"),
                json!({"type": "setting", "key": key, "value": v}),
            );
        }
        SettingsCmd::Hardened { .. } => {
            let changes = s.apply_hardened();
            client
                .set_privacy(&s)
                .map_err(|e| CliError::new(Code::Failure, e.to_string()))?;
            if changes.is_empty() {
                ctx.print(
                    "Hardened mode was already on.",
                    json!({"type": "hardened", "changed": []}),
                );
            }
            for c in changes {
                ctx.print(
                    format!("{}: {} -> {}", c.label, c.old, c.new),
                    json!({"type": "hardened", "key": c.key, "old": c.old, "new": c.new}),
                );
            }
        }
        SettingsCmd::Checkup => {
            for r in s.checkup() {
                ctx.print(
                    format!("{:?} {} ({}): {}", r.severity, r.label, r.current, r.reason),
                    json!({"type": "risk", "key": r.key, "severity": format!("{:?}", r.severity),
                           "current": r.current, "reason": r.reason}),
                );
            }
        }
    }
    Ok(())
}

fn backup_passphrase(file: Option<&Path>) -> Result<Passphrase, CliError> {
    let text = match file {
        Some(f) => {
            let whole = Zeroizing::new(std::fs::read_to_string(f).map_err(|e| {
                CliError::new(
                    Code::Failure,
                    format!("cannot read the backup passphrase file: {}", e.kind()),
                )
            })?);
            Zeroizing::new(whole.lines().next().unwrap_or("").to_owned())
        }
        None => Zeroizing::new(std::env::var("SOTTO_BACKUP_PASSPHRASE").map_err(|_| {
            CliError::new(
                Code::Failure,
                "give the backup passphrase with --backup-passphrase-file FILE or \
                 SOTTO_BACKUP_PASSPHRASE",
            )
        })?),
    };
    if text.chars().count() < 8 {
        return Err(CliError::new(
            Code::Failure,
            "the backup passphrase must have at least 8 characters",
        ));
    }
    Ok(Passphrase::new(text))
}

fn backup_import(
    ctx: &Ctx,
    dir: &Path,
    secrets: &Secrets,
    file: &Path,
    pass_file: Option<&Path>,
) -> Result<(), CliError> {
    let pass = backup_passphrase(pass_file)?;
    let profile_pass = secrets.passphrase()?;
    let protection = match &profile_pass {
        Some(p) => KeyProtection::Passphrase(p, KdfParams::default()),
        None => KeyProtection::Keyring,
    };
    let store = backup::import(file, &pass, dir, protection, &mut |_| {}).map_err(|e| {
        let code = match e {
            backup::ImportError::WrongPassphrase => Code::Locked,
            _ => Code::Failure,
        };
        CliError::new(code, e.to_string())
    })?;
    drop(store);
    ctx.print(
        format!("Backup restored into {}", dir.display()),
        json!({"type": "restored", "profile": dir}),
    );
    Ok(())
}

fn write_qr(path: &Path, payload: &[u8]) -> Result<(), CliError> {
    let png = qr_image::encode_png(payload)
        .map_err(|e| CliError::new(Code::Failure, format!("cannot make the QR code: {e}")))?;
    std::fs::write(path, png).map_err(|e| {
        CliError::new(
            Code::Failure,
            format!("cannot write {}: {}", path.display(), e.kind()),
        )
    })
}
