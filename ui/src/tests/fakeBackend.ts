// A scriptable in-memory Backend for component tests.
import { vi } from 'vitest';
import type {
  Backend,
  ConversationSummary,
  Me,
  Message,
  PrivacyPage,
  SottoEvent,
} from '../lib/backend';

export const me: Me = {
  username: 'alice',
  accountId: 'aa'.repeat(32),
  relay: 'ws://127.0.0.1:1',
  embeddedRelay: true,
  keyStorage: 'passphrase',
};

export function conv(over: Partial<ConversationSummary> = {}): ConversationSummary {
  return {
    contactId: 'bb'.repeat(32),
    username: 'bob',
    displayName: 'bob',
    unread: 0,
    lastMessage: { text: 'hi', atMs: Date.now(), outgoing: false },
    timerSecs: 0,
    verification: 'unverified',
    blocked: false,
    request: false,
    ...over,
  };
}

export function msg(id: number, over: Partial<Message> = {}): Message {
  return {
    id,
    contactId: 'bb'.repeat(32),
    outgoing: id % 2 === 0,
    text: `message ${id}`,
    sentAtMs: 1_700_000_000_000 + id * 60_000,
    receivedAtMs: null,
    state: 'delivered',
    expireSecs: 0,
    expiresAtMs: null,
    ...over,
  };
}

export const page: PrivacyPage = {
  hardened: false,
  screenSecuritySupported: false,
  settings: [
    {
      key: 'read-receipts',
      label: 'Read receipts',
      protectsAgainst: 'People seeing when you read.',
      values: 'on | off',
      value: 'on',
    },
    {
      key: 'notification-detail',
      label: 'Notifications',
      protectsAgainst: 'Shoulder surfing.',
      values: 'name-and-text | name-only | nothing',
      value: 'name-and-text',
    },
    {
      key: 'screen-security',
      label: 'Screen security',
      protectsAgainst: 'Screenshots.',
      values: 'on | off',
      value: 'off',
    },
    {
      key: 'app-lock',
      label: 'App lock',
      protectsAgainst: 'Someone at your unlocked computer.',
      values: 'never, immediately, or whole minutes up to 1d (e.g. 1m, 15m, 1h)',
      value: 'never',
    },
  ],
  checkup: [
    {
      key: 'read-receipts',
      label: 'Read receipts',
      severity: 'low',
      current: 'on',
      reason: 'Shows when you read.',
    },
  ],
};

export type FakeBackend = Backend & { emit: (e: SottoEvent) => void };

export function fakeBackend(over: Partial<Backend> = {}): FakeBackend {
  const listeners = new Set<(e: SottoEvent) => void>();
  const b: Backend = {
    appInfo: vi.fn(async () => ({
      name: 'Sotto',
      version: '9.8.7',
      profileDir: '/home/al/.sotto',
    })),
    profileStatus: vi.fn(async () => ({ state: 'ready' as const, me })),
    uiReady: vi.fn(async () => {}),
    createProfile: vi.fn(async () => me),
    unlock: vi.fn(async () => me),
    restoreBackup: vi.fn(async () => me),
    lock: vi.fn(async () => null),
    conversations: vi.fn(async () => [conv()]),
    messageCount: vi.fn(async () => 0),
    messages: vi.fn(async () => [] as Message[]),
    sendText: vi.fn(async ({ text }) => msg(1000, { text, outgoing: true, state: 'sent' })),
    markRead: vi.fn(async () => null),
    sendTyping: vi.fn(async () => null),
    setTimer: vi.fn(async () => null),
    search: vi.fn(async () => ({ hits: [], indexing: false })),
    addContact: vi.fn(async () => conv()),
    addContactFromInvite: vi.fn(async () => conv()),
    myInvite: vi.fn(async () => ({ qrPng: 'iVBORw0KGgo=' })),
    setBlocked: vi.fn(async () => null),
    acceptRequest: vi.fn(async () => null),
    deleteContact: vi.fn(async () => null),
    safetyNumber: vi.fn(async ({ contactId }) => ({
      contactId,
      displayName: 'bob',
      groups: Array.from({ length: 12 }, (_, i) => String(10000 + i)),
      qrPng: 'iVBORw0KGgo=',
      verification: 'unverified' as const,
    })),
    verifyImage: vi.fn(async () => ({ matched: true })),
    verifyFrame: vi.fn(async () => ({ matched: null })),
    setVerified: vi.fn(async () => null),
    saveImage: vi.fn(async () => ({ path: '/home/al/Downloads/code.png' })),
    privacyPage: vi.fn(async () => page),
    setSetting: vi.fn(async () => page),
    setKeyStorage: vi.fn(async () => page),
    setHardened: vi.fn(async () => ({
      changed: [{ key: 'read-receipts', label: 'Read receipts', old: 'on', new: 'off' }],
      page: { ...page, hardened: true },
    })),
    exportBackup: vi.fn(async ({ path }) => ({ path, bytes: 2 * 1024 * 1024 })),
    onEvent(cb) {
      listeners.add(cb);
      return () => listeners.delete(cb);
    },
    ...over,
  };
  return Object.assign(b, { emit: (e: SottoEvent) => [...listeners].forEach((cb) => cb(e)) });
}
