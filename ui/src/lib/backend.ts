// The only module that talks to the Rust side (docs/DESKTOP_API.md). Components get a `Backend`
// from Svelte context so tests can hand them a fake.
import { listen } from '@tauri-apps/api/event';
import { getContext, setContext } from 'svelte';
import { commands } from './bindings';
import type * as Gen from './bindings';

// The shapes crossing the IPC boundary come from bindings.ts, which tauri-specta generates from
// the Rust commands (a test in src-tauri fails when it is stale), so a change on one side that
// the other does not follow fails the type check. The names below are the UI's.
export type ErrorCode = Gen.ErrorCode;
export type UiError = Gen.UiError;
export type KeyStorage = Gen.KeyStorageView;
export type Verification = Gen.VerificationView;
export type DeliveryState = Gen.DeliveryView;
export type AppInfo = Gen.AppInfo;
export type Me = Gen.Me;
export type ProfileStatus = Gen.ProfileStatus;
export type RelayChoice = Gen.RelayChoice;
export type ConversationSummary = Gen.ConversationSummary_Serialize;
export type Message = Gen.MessageView_Serialize;
export type SafetyNumber = Gen.SafetyNumber;
export type SettingInfo = Gen.SettingView;
export type SettingChange = Gen.ChangeView;
export type Risk = Gen.RiskView;
export type PrivacyPage = Gen.PrivacyPage;
export type SearchHit = Gen.SearchHit;
export type SearchResults = Gen.SearchResults;
export type ConnectionState = Gen.ConnectionState;
export type SottoEvent = Gen.SottoEvent_Serialize;
export type StartupStage = Gen.StartupStage;

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
  search(a: { query: string }): Promise<SearchResults>;
  addContact(a: { username: string }): Promise<ConversationSummary>;
  addContactFromInvite(a: { image: string }): Promise<ConversationSummary>;
  myInvite(): Promise<Gen.QrImage>;
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
  }): Promise<Gen.ScanResult_Serialize>;
  setVerified(a: { contactId: string; verified: boolean }): Promise<null>;
  saveImage(a: { name: string; png: string }): Promise<Gen.Saved>;
  privacyPage(): Promise<PrivacyPage>;
  /** Every setting except `key-storage` (that one is `setKeyStorage`). */
  setSetting(a: { key: string; value: string }): Promise<PrivacyPage>;
  /** With a passphrase, hardened mode also moves key storage to a passphrase. */
  setHardened(a: { on: boolean; passphrase: string | null }): Promise<Gen.HardenedResult>;
  /**
   * To `passphrase`: the new passphrase. From passphrase to `keyring`: the current passphrase,
   * which the Rust side checks (`wrong-passphrase`) because the keyring protects less.
   */
  setKeyStorage(a: { mode: KeyStorage; passphrase: string | null }): Promise<PrivacyPage>;
  /**
   * `passphrase` encrypts the backup. `profilePassphrase` is the profile's own passphrase, required
   * in passphrase mode (`wrong-passphrase`, or `invalid-input` if missing) and null in keyring mode.
   */
  exportBackup(a: {
    path: string;
    passphrase: string;
    profilePassphrase: string | null;
  }): Promise<Gen.Exported>;
  /** Start-up timing: the first frame, then the first usable screen, is on screen. */
  uiReady(a: { stage: StartupStage }): Promise<void>;
  onEvent(cb: (e: SottoEvent) => void): () => void;
}

// A record rather than a list so that a code added on the Rust side fails the type check here.
const ERROR_CODES: Record<ErrorCode, true> = {
  locked: true,
  'wrong-passphrase': true,
  'keyring-unavailable': true,
  'username-taken': true,
  'username-invalid': true,
  'registration-locked': true,
  'relay-unreachable': true,
  'not-found': true,
  blocked: true,
  'key-changed': true,
  undeliverable: true,
  'invalid-input': true,
  'no-qr-code': true,
  'backup-corrupt': true,
  'backup-wrong-passphrase': true,
  io: true,
  'file-exists': true,
  internal: true,
};
const isErrorCode = (code: string): code is ErrorCode => Object.hasOwn(ERROR_CODES, code);

/** Normalises anything a command rejects with into a `UiError`. */
export function toUiError(e: unknown): UiError {
  if (e && typeof e === 'object' && 'code' in e && typeof e.code === 'string') {
    const code = isErrorCode(e.code) ? e.code : 'internal';
    const message = 'message' in e && typeof e.message === 'string' ? e.message : '';
    return { code, message };
  }
  return { code: 'internal', message: typeof e === 'string' ? e : '' };
}

type Result<T> = { status: 'ok'; data: T } | { status: 'error'; error: Gen.UiError };

/** A command's value, or its `UiError` as the rejection. */
async function unwrap<T>(pending: Promise<Result<T>>): Promise<T> {
  let result: Result<T>;
  try {
    result = await pending;
  } catch (e) {
    throw toUiError(e);
  }
  if (result.status === 'error') throw toUiError(result.error);
  return result.data;
}

/** The real backend over Tauri IPC. */
export function tauriBackend(): Backend {
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
    appInfo: () => commands.appInfo().catch((e: unknown) => Promise.reject(toUiError(e))),
    profileStatus: () => unwrap(commands.profileStatus()),
    createProfile: (a) =>
      unwrap(commands.createProfile(a.username, a.relay, a.pin, a.keyStorage, a.passphrase)),
    unlock: (a) => unwrap(commands.unlock(a.passphrase)),
    restoreBackup: (a) =>
      unwrap(
        commands.restoreBackup(a.file, a.backupPassphrase, a.relay, a.keyStorage, a.passphrase),
      ),
    lock: () => unwrap(commands.lock()),
    conversations: () => unwrap(commands.conversations()),
    messageCount: (a) => unwrap(commands.messageCount(a.contactId)),
    messages: (a) => unwrap(commands.messages(a.contactId, a.beforeId, a.limit)),
    sendText: (a) => unwrap(commands.sendText(a.contactId, a.text)),
    markRead: (a) => unwrap(commands.markRead(a.contactId)),
    sendTyping: (a) => unwrap(commands.sendTyping(a.contactId, a.typing)),
    setTimer: (a) => unwrap(commands.setTimer(a.contactId, a.secs)),
    search: (a) => unwrap(commands.search(a.query)),
    addContact: (a) => unwrap(commands.addContact(a.username)),
    addContactFromInvite: (a) => unwrap(commands.addContactFromInvite(a.image)),
    myInvite: () => unwrap(commands.myInvite()),
    setBlocked: (a) => unwrap(commands.setBlocked(a.contactId, a.blocked)),
    acceptRequest: (a) => unwrap(commands.acceptRequest(a.contactId)),
    deleteContact: (a) => unwrap(commands.deleteContact(a.contactId)),
    safetyNumber: (a) => unwrap(commands.safetyNumber(a.contactId)),
    async verifyImage(a) {
      const { matched } = await unwrap(commands.verifyImage(a.contactId, a.image));
      // Only camera frames may find no code; an image without one is a `no-qr-code` error.
      if (matched === null) throw { code: 'no-qr-code', message: '' } satisfies UiError;
      return { matched };
    },
    verifyFrame: (a) => unwrap(commands.verifyFrame(a.contactId, a.width, a.height, a.luma)),
    setVerified: (a) => unwrap(commands.setVerified(a.contactId, a.verified)),
    saveImage: (a) => unwrap(commands.saveImage(a.name, a.png)),
    privacyPage: () => unwrap(commands.privacyPage()),
    setSetting: (a) => unwrap(commands.setSetting(a.key, a.value)),
    setHardened: (a) => unwrap(commands.setHardened(a.on, a.passphrase)),
    setKeyStorage: (a) => unwrap(commands.setKeyStorage(a.mode, a.passphrase)),
    exportBackup: (a) => unwrap(commands.exportBackup(a.path, a.passphrase, a.profilePassphrase)),
    uiReady: (a) => commands.uiReady(a.stage).catch((e: unknown) => Promise.reject(toUiError(e))),
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
