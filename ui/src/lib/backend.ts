// The only module that talks to the Rust side (docs/DESKTOP_API.md). Components get a `Backend`
// from Svelte context so tests can hand them a fake.
import { invoke } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';
import { getContext, setContext } from 'svelte';

export type ErrorCode =
  | 'locked'
  | 'wrong-passphrase'
  | 'keyring-unavailable'
  | 'username-taken'
  | 'username-invalid'
  | 'registration-locked'
  | 'relay-unreachable'
  | 'not-found'
  | 'blocked'
  | 'key-changed'
  | 'invalid-input'
  | 'no-qr-code'
  | 'backup-corrupt'
  | 'backup-wrong-passphrase'
  | 'io'
  | 'internal';
export type UiError = { code: ErrorCode; message: string };

export type KeyStorage = 'keyring' | 'passphrase';
export type Verification = 'unverified' | 'verified' | 'changed';
export type DeliveryState = 'queued' | 'sent' | 'delivered' | 'read' | 'received';

export type AppInfo = { name: string; version: string; profileDir: string };
export type Me = {
  username: string;
  accountId: string;
  relay: string;
  embeddedRelay: boolean;
  keyStorage: KeyStorage;
};
export type ProfileStatus =
  | { state: 'new'; keyringAvailable: boolean }
  | { state: 'locked'; keyStorage: KeyStorage }
  | { state: 'ready'; me: Me };
export type RelayChoice = { kind: 'embedded' } | { kind: 'address'; url: string };

export type ConversationSummary = {
  contactId: string;
  username: string | null;
  displayName: string;
  unread: number;
  lastMessage: { text: string; atMs: number; outgoing: boolean } | null;
  timerSecs: number;
  verification: Verification;
  blocked: boolean;
  request: boolean;
};
export type Message = {
  id: number;
  contactId: string;
  outgoing: boolean;
  text: string;
  sentAtMs: number;
  receivedAtMs: number | null;
  state: DeliveryState;
  expireSecs: number;
  expiresAtMs: number | null;
};
export type SafetyNumber = {
  contactId: string;
  displayName: string;
  groups: string[];
  qrPng: string;
  verification: Verification;
};
export type SettingInfo = {
  key: string;
  label: string;
  protectsAgainst: string;
  values: string;
  value: string;
};
export type SettingChange = { key: string; label: string; old: string; new: string };
export type Risk = {
  key: string;
  label: string;
  severity: 'high' | 'medium' | 'low';
  current: string;
  reason: string;
};
export type PrivacyPage = {
  settings: SettingInfo[];
  hardened: boolean;
  checkup: Risk[];
  screenSecuritySupported: boolean;
};
export type SearchHit = {
  messageId: number;
  contactId: string;
  displayName: string;
  snippet: string;
  atMs: number;
};
export type ConnectionState = 'online' | 'connecting' | 'offline';

export type SottoEvent =
  | { kind: 'message'; message: Message; request: boolean; keyChanged: boolean }
  | { kind: 'delivered'; contactId: string; messageIds: number[] }
  | { kind: 'read'; contactId: string; messageIds: number[] }
  | { kind: 'typing'; contactId: string; typing: boolean }
  | { kind: 'timer-changed'; contactId: string; secs: number }
  | { kind: 'expired'; messageIds: number[]; contactIds: string[] }
  | { kind: 'key-changed'; contactId: string }
  | { kind: 'connection'; state: ConnectionState }
  | { kind: 'backup-progress'; done: number; total: number }
  | { kind: 'locked' };

export type StartupStage = 'first-paint' | 'first-screen';

export const EVENT_CHANNEL = 'sotto://event';

export interface Backend {
  appInfo(): Promise<AppInfo>;
  profileStatus(): Promise<ProfileStatus>;
  createProfile(a: {
    username: string;
    relay: RelayChoice;
    pin: string | null;
    keyStorage: KeyStorage;
    passphrase: string | null;
  }): Promise<Me>;
  unlock(a: { passphrase: string }): Promise<Me>;
  restoreBackup(a: {
    file: string;
    backupPassphrase: string;
    relay: RelayChoice;
    keyStorage: KeyStorage;
    passphrase: string | null;
  }): Promise<Me>;
  lock(): Promise<null>;
  conversations(): Promise<ConversationSummary[]>;
  messageCount(a: { contactId: string }): Promise<number>;
  messages(a: { contactId: string; beforeId: number | null; limit: number }): Promise<Message[]>;
  sendText(a: { contactId: string; text: string }): Promise<Message>;
  markRead(a: { contactId: string }): Promise<null>;
  sendTyping(a: { contactId: string; typing: boolean }): Promise<null>;
  setTimer(a: { contactId: string; secs: number }): Promise<null>;
  search(a: { query: string }): Promise<SearchHit[]>;
  addContact(a: { username: string }): Promise<ConversationSummary>;
  addContactFromInvite(a: { image: string }): Promise<ConversationSummary>;
  myInvite(): Promise<{ qrPng: string }>;
  setBlocked(a: { contactId: string; blocked: boolean }): Promise<null>;
  acceptRequest(a: { contactId: string }): Promise<null>;
  deleteContact(a: { contactId: string }): Promise<null>;
  safetyNumber(a: { contactId: string }): Promise<SafetyNumber>;
  verifyImage(a: { contactId: string; image: string }): Promise<{ matched: boolean }>;
  verifyFrame(a: {
    contactId: string;
    width: number;
    height: number;
    luma: string;
  }): Promise<{ matched: boolean | null }>;
  setVerified(a: { contactId: string; verified: boolean }): Promise<null>;
  saveImage(a: { name: string; png: string }): Promise<{ path: string }>;
  privacyPage(): Promise<PrivacyPage>;
  /** Every setting except `key-storage` (that one is `setKeyStorage`). */
  setSetting(a: { key: string; value: string }): Promise<PrivacyPage>;
  /** With a passphrase, hardened mode also moves key storage to a passphrase. */
  setHardened(a: {
    on: boolean;
    passphrase: string | null;
  }): Promise<{ changed: SettingChange[]; page: PrivacyPage }>;
  setKeyStorage(a: { mode: KeyStorage; passphrase: string | null }): Promise<PrivacyPage>;
  exportBackup(a: { path: string; passphrase: string }): Promise<{ path: string; bytes: number }>;
  /** Start-up timing: the first frame, then the first usable screen, is on screen. */
  uiReady(a: { stage: StartupStage }): Promise<null>;
  onEvent(cb: (e: SottoEvent) => void): () => void;
}

const ERROR_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  'locked',
  'wrong-passphrase',
  'keyring-unavailable',
  'username-taken',
  'username-invalid',
  'registration-locked',
  'relay-unreachable',
  'not-found',
  'blocked',
  'key-changed',
  'invalid-input',
  'no-qr-code',
  'backup-corrupt',
  'backup-wrong-passphrase',
  'io',
  'internal',
]);

/** Normalises anything a command rejects with into a `UiError`. */
export function toUiError(e: unknown): UiError {
  if (e && typeof e === 'object' && 'code' in e && typeof e.code === 'string') {
    const code = ERROR_CODES.has(e.code) ? (e.code as ErrorCode) : 'internal';
    const message = 'message' in e && typeof e.message === 'string' ? e.message : '';
    return { code, message };
  }
  return { code: 'internal', message: typeof e === 'string' ? e : '' };
}

type Args = Record<string, unknown>;

/** The real backend over Tauri IPC. */
export function tauriBackend(): Backend {
  const call =
    <T>(name: string) =>
    (args?: Args) =>
      invoke<T>(name, args).catch((e: unknown) => Promise.reject(toUiError(e)));
  const listeners = new Set<(e: SottoEvent) => void>();
  let started = false;
  const start = () => {
    if (started) return;
    started = true;
    void listen<SottoEvent>(EVENT_CHANNEL, (ev) => {
      for (const cb of [...listeners]) cb(ev.payload);
    });
  };
  return {
    appInfo: () => call<AppInfo>('app_info')(),
    profileStatus: () => call<ProfileStatus>('profile_status')(),
    createProfile: call<Me>('create_profile'),
    unlock: call<Me>('unlock'),
    restoreBackup: call<Me>('restore_backup'),
    lock: () => call<null>('lock')(),
    conversations: () => call<ConversationSummary[]>('conversations')(),
    messageCount: call<number>('message_count'),
    messages: call<Message[]>('messages'),
    sendText: call<Message>('send_text'),
    markRead: call<null>('mark_read'),
    sendTyping: call<null>('send_typing'),
    setTimer: call<null>('set_timer'),
    search: call<SearchHit[]>('search'),
    addContact: call<ConversationSummary>('add_contact'),
    addContactFromInvite: call<ConversationSummary>('add_contact_from_invite'),
    myInvite: () => call<{ qrPng: string }>('my_invite')(),
    setBlocked: call<null>('set_blocked'),
    acceptRequest: call<null>('accept_request'),
    deleteContact: call<null>('delete_contact'),
    safetyNumber: call<SafetyNumber>('safety_number'),
    verifyImage: call<{ matched: boolean }>('verify_image'),
    verifyFrame: call<{ matched: boolean | null }>('verify_frame'),
    setVerified: call<null>('set_verified'),
    saveImage: call<{ path: string }>('save_image'),
    privacyPage: () => call<PrivacyPage>('privacy_page')(),
    setSetting: call<PrivacyPage>('set_setting'),
    setHardened: call<{ changed: SettingChange[]; page: PrivacyPage }>('set_hardened'),
    setKeyStorage: call<PrivacyPage>('set_key_storage'),
    exportBackup: call<{ path: string; bytes: number }>('export_backup'),
    uiReady: call<null>('ui_ready'),
    onEvent(cb) {
      start();
      listeners.add(cb);
      return () => listeners.delete(cb);
    },
  };
}

const KEY = Symbol('sotto-backend');

export function provideBackend(b: Backend): void {
  setContext(KEY, b);
}

export function useBackend(): Backend {
  const b = getContext<Backend | undefined>(KEY);
  if (!b) throw new Error('no Backend in context');
  return b;
}
