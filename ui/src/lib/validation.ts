// Checks made before anything is sent to the Rust side (which checks again).
import type { KeyStorage, RelayChoice } from './backend';
import { acceptable } from './strength';

export type FieldError =
  | 'username-empty'
  | 'username-long'
  | 'username-chars'
  | 'relay-url'
  | 'pin-short'
  | 'passphrase-weak'
  | 'passphrase-mismatch'
  | 'file-empty'
  | 'backup-passphrase-empty'
  | 'profile-passphrase-empty';

export function usernameError(name: string): FieldError | null {
  const n = name.trim();
  if (!n) return 'username-empty';
  if (new TextEncoder().encode(n).length > 32) return 'username-long';
  if (/[\s@/\\:]/.test(n)) return 'username-chars';
  return null;
}

export function relayUrlError(url: string): FieldError | null {
  const u = url.trim();
  if (!/^wss?:\/\/[^\s/]+/i.test(u)) return 'relay-url';
  try {
    const parsed = new URL(u);
    return parsed.hostname ? null : 'relay-url';
  } catch {
    return 'relay-url';
  }
}

export function pinError(pin: string): FieldError | null {
  return pin && pin.length < 4 ? 'pin-short' : null;
}

export function passphraseErrors(pass: string, confirm: string): FieldError[] {
  const out: FieldError[] = [];
  if (!acceptable(pass)) out.push('passphrase-weak');
  if (pass !== confirm) out.push('passphrase-mismatch');
  return out;
}

export type CreateForm = {
  username: string;
  relayKind: 'embedded' | 'address';
  relayUrl: string;
  pin: string;
  keyStorage: KeyStorage;
  passphrase: string;
  confirm: string;
};

export function relayChoice(f: { relayKind: 'embedded' | 'address'; relayUrl: string }) {
  return (f.relayKind === 'embedded'
    ? { kind: 'embedded' }
    : { kind: 'address', url: f.relayUrl.trim() }) satisfies RelayChoice as RelayChoice;
}

export function validateCreate(f: CreateForm): Partial<Record<string, FieldError>> {
  const e: Partial<Record<string, FieldError>> = {};
  const u = usernameError(f.username);
  if (u) e.username = u;
  if (f.relayKind === 'address') {
    const r = relayUrlError(f.relayUrl);
    if (r) e.relay = r;
  }
  const p = pinError(f.pin);
  if (p) e.pin = p;
  if (f.keyStorage === 'passphrase') {
    const [first] = passphraseErrors(f.passphrase, f.confirm);
    if (first === 'passphrase-weak') e.passphrase = first;
    else if (first) e.confirm = first;
  }
  return e;
}

export type RestoreForm = {
  file: string;
  backupPassphrase: string;
  relayKind: 'embedded' | 'address';
  relayUrl: string;
  keyStorage: KeyStorage;
  passphrase: string;
  confirm: string;
};

export function validateRestore(f: RestoreForm): Partial<Record<string, FieldError>> {
  const e: Partial<Record<string, FieldError>> = {};
  if (!f.file.trim()) e.file = 'file-empty';
  if (!f.backupPassphrase) e.backupPassphrase = 'backup-passphrase-empty';
  if (f.relayKind === 'address') {
    const r = relayUrlError(f.relayUrl);
    if (r) e.relay = r;
  }
  if (f.keyStorage === 'passphrase') {
    const [first] = passphraseErrors(f.passphrase, f.confirm);
    if (first === 'passphrase-weak') e.passphrase = first;
    else if (first) e.confirm = first;
  }
  return e;
}
