// An in-memory Backend for looking at the UI in a plain browser (npm run demo). Not bundled into
// the app: only demo.html imports it.
import type {
  Backend,
  ConversationSummary,
  Me,
  Message,
  PrivacyPage,
  ProfileStatus,
  SottoEvent,
} from '../lib/backend';

const hex = (c: string) => c.repeat(64);
const TINY_PNG =
  'iVBORw0KGgoAAAANSUhEUgAAAAgAAAAIAQAAAADcA+lXAAAAFElEQVR4nGP4z8DAwMDAwMDAAAAjfgQB0h2ypQAAAABJRU5ErkJggg==';

export function demoBackend(start: ProfileStatus['state'], count = 100_000): Backend {
  const listeners = new Set<(e: SottoEvent) => void>();
  const emit = (e: SottoEvent) => setTimeout(() => listeners.forEach((cb) => cb(e)), 0);
  const me: Me = {
    username: 'alice',
    accountId: hex('a'),
    relay: '127.0.0.1:7443',
    embeddedRelay: true,
    keyStorage: 'passphrase',
  };
  let status: ProfileStatus =
    start === 'new'
      ? { state: 'new', keyringAvailable: true }
      : start === 'locked'
        ? { state: 'locked', keyStorage: 'passphrase' }
        : { state: 'ready', me };
  const now = Date.now();
  const threads = new Map<string, Message[]>();
  const bob: Message[] = [];
  const words =
    'the plan is fine see you at the usual place tomorrow bring the documents please'.split(' ');
  for (let i = 1; i <= count; i++) {
    const len = 3 + ((i * 7919) % 40);
    const text = Array.from({ length: len }, (_, j) => words[(i + j * 3) % words.length]).join(' ');
    bob.push({
      id: i,
      contactId: hex('b'),
      outgoing: i % 3 === 0,
      text: `${i}: ${text}`,
      sentAtMs: now - (count - i) * 90_000,
      receivedAtMs: null,
      state: i % 3 === 0 ? (i > count - 3 ? 'delivered' : 'read') : 'received',
      expireSecs: 0,
      expiresAtMs: null,
    });
  }
  threads.set(hex('b'), bob);
  threads.set(hex('c'), [
    {
      id: count + 1,
      contactId: hex('c'),
      outgoing: false,
      text: 'This one disappears soon.',
      sentAtMs: now - 5000,
      receivedAtMs: now - 4000,
      state: 'received',
      expireSecs: 300,
      expiresAtMs: now + 295_000,
    },
  ]);
  let nextId = count + 10;
  const convs: ConversationSummary[] = [
    {
      contactId: hex('b'),
      username: 'bob',
      displayName: 'bob',
      unread: 2,
      lastMessage: { text: bob[bob.length - 1]?.text ?? '', atMs: now, outgoing: false },
      timerSecs: 0,
      verification: 'verified',
      blocked: false,
      request: false,
    },
    {
      contactId: hex('c'),
      username: 'carol',
      displayName: 'carol',
      unread: 1,
      lastMessage: { text: 'This one disappears soon.', atMs: now - 5000, outgoing: false },
      timerSecs: 300,
      verification: 'changed',
      blocked: false,
      request: false,
    },
    {
      contactId: hex('e'),
      username: 'eve',
      displayName: 'eve',
      unread: 0,
      lastMessage: null,
      timerSecs: 0,
      verification: 'unverified',
      blocked: true,
      request: false,
    },
    {
      contactId: hex('d'),
      username: 'dave',
      displayName: 'dave',
      unread: 1,
      lastMessage: { text: 'hi, we met at the clinic', atMs: now - 60_000, outgoing: false },
      timerSecs: 0,
      verification: 'unverified',
      blocked: false,
      request: true,
    },
  ];
  let page: PrivacyPage = {
    hardened: false,
    screenSecuritySupported: false,
    settings: [
      ['delivery-receipts', 'Delivery receipts', 'on | off', 'on'],
      ['read-receipts', 'Read receipts', 'on | off', 'on'],
      ['typing-indicators', 'Typing indicators', 'on | off', 'on'],
      ['link-previews', 'Link previews', 'on | off', 'off'],
      [
        'notification-detail',
        'Notifications',
        'name-and-text | name-only | nothing',
        'name-and-text',
      ],
      ['message-requests', 'Message requests', 'allow | block', 'allow'],
      ['block-on-key-change', 'Stop sending on key change', 'on | off', 'off'],
      [
        'disappearing-default',
        'Disappearing messages for new chats',
        'off, or 5s to 4w (e.g. 30s, 5m, 2h, 1d, 1w)',
        'off',
      ],
      ['screen-security', 'Screen security', 'on | off', 'off'],
      [
        'app-lock',
        'App lock',
        'never, immediately, or whole minutes up to 1d (e.g. 1m, 15m, 1h)',
        'never',
      ],
      ['key-storage', 'Key storage', 'keyring | passphrase', 'passphrase'],
    ].map(([key, label, values, value]) => ({
      key: key ?? '',
      label: label ?? '',
      values: values ?? '',
      value: value ?? '',
      protectsAgainst: `Explains in plain words what ${label?.toLowerCase()} protects against.`,
    })),
    checkup: [
      {
        key: 'read-receipts',
        label: 'Read receipts',
        severity: 'low',
        current: 'on',
        reason: 'Others see when you read.',
      },
      {
        key: 'app-lock',
        label: 'App lock',
        severity: 'high',
        current: 'never',
        reason: 'Anyone at your computer can read your chats.',
      },
    ],
  };
  const delay = <T>(v: T, ms = 60) => new Promise<T>((r) => setTimeout(() => r(v), ms));
  // The demo profile's passphrase: "demo" until key storage is switched to a new one.
  let passphrase: string | null = 'demo';
  const wrong = () => ({ code: 'wrong-passphrase', message: '' });
  const missing = () => ({ code: 'invalid-input', message: '' });
  /** Throws unless `given` is the profile's own passphrase (nothing to check in keyring mode). */
  const checkOwn = (given: string | null) => {
    if (passphrase === null) return;
    if (!given) throw missing();
    if (given !== passphrase) throw wrong();
  };
  const conv = (id: string) => convs.find((c) => c.contactId === id);

  return {
    appInfo: () =>
      delay({ name: 'Sotto', version: '0.1.0-demo', profileDir: '/home/alice/.local/share/sotto' }),
    profileStatus: () => delay(status),
    uiReady: async () => {},
    createProfile: async ({ username, keyStorage, passphrase: given }) => {
      await delay(null, 600);
      passphrase = keyStorage === 'passphrase' ? given : null;
      status = { state: 'ready', me: { ...me, username, keyStorage } };
      return status.me;
    },
    unlock: async ({ passphrase: given }) => {
      await delay(null, 300);
      if (given !== passphrase) throw wrong();
      status = { state: 'ready', me };
      return me;
    },
    restoreBackup: async () => {
      for (let i = 1; i <= 10; i++) {
        await delay(null, 150);
        emit({ kind: 'backup-progress', done: i * 10, total: 100 });
      }
      status = { state: 'ready', me };
      return me;
    },
    lock: async () => {
      status = { state: 'locked', keyStorage: 'passphrase' };
      return null;
    },
    conversations: () => delay(convs.map((c) => ({ ...c }))),
    messageCount: ({ contactId }) => delay(threads.get(contactId)?.length ?? 0),
    messages: ({ contactId, beforeId, limit }) => {
      const all = threads.get(contactId) ?? [];
      let end = all.length;
      if (beforeId !== null) {
        let lo = 0;
        let hi = all.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if ((all[mid]?.id ?? 0) < beforeId) lo = mid + 1;
          else hi = mid;
        }
        end = lo;
      }
      return delay(all.slice(Math.max(0, end - limit), end), 150);
    },
    sendText: async ({ contactId, text }) => {
      const c = conv(contactId);
      if (c?.verification === 'changed') throw { code: 'key-changed', message: '' };
      const m: Message = {
        id: nextId++,
        contactId,
        outgoing: true,
        text,
        sentAtMs: Date.now(),
        receivedAtMs: null,
        state: 'sent',
        expireSecs: c?.timerSecs ?? 0,
        expiresAtMs: null,
      };
      const list = threads.get(contactId);
      if (list) list.push(m);
      else threads.set(contactId, [m]);
      if (c) c.lastMessage = { text, atMs: m.sentAtMs, outgoing: true };
      setTimeout(() => emit({ kind: 'delivered', contactId, messageIds: [m.id] }), 700);
      setTimeout(() => emit({ kind: 'typing', contactId, typing: true }), 1000);
      setTimeout(() => {
        emit({ kind: 'read', contactId, messageIds: [m.id] });
        emit({ kind: 'typing', contactId, typing: false });
        const reply: Message = {
          ...m,
          id: nextId++,
          outgoing: false,
          text: `Got it: “${text}”`,
          state: 'received',
          sentAtMs: Date.now(),
        };
        threads.get(contactId)?.push(reply);
        emit({ kind: 'message', message: reply, request: false, keyChanged: false });
      }, 2500);
      return delay(m);
    },
    markRead: ({ contactId }) => {
      const c = conv(contactId);
      if (c) c.unread = 0;
      return delay(null);
    },
    sendTyping: () => delay(null),
    setTimer: ({ contactId, secs }) => {
      const c = conv(contactId);
      if (c) c.timerSecs = secs;
      return delay(null);
    },
    search: ({ query }) => {
      const q = query.toLowerCase();
      const hits = [];
      for (const [contactId, msgs] of threads) {
        for (let i = msgs.length - 1; i >= 0 && hits.length < 50; i--) {
          const m = msgs[i];
          if (m && m.text.toLowerCase().includes(q))
            hits.push({
              messageId: m.id,
              contactId,
              displayName: conv(contactId)?.displayName ?? '?',
              snippet: m.text.slice(0, 80),
              atMs: m.sentAtMs,
            });
        }
      }
      return delay({ hits, indexing: false });
    },
    addContact: async ({ username }) => {
      if (username === 'nobody') throw { code: 'not-found', message: '' };
      const c: ConversationSummary = {
        contactId: hex(String(convs.length % 10)),
        username,
        displayName: username,
        unread: 0,
        lastMessage: null,
        timerSecs: 0,
        verification: 'unverified',
        blocked: false,
        request: false,
      };
      convs.unshift(c);
      return delay(c);
    },
    addContactFromInvite: () => Promise.reject({ code: 'no-qr-code', message: '' }),
    myInvite: () => delay({ qrPng: TINY_PNG }),
    setBlocked: ({ contactId, blocked }) => {
      const c = conv(contactId);
      if (c) Object.assign(c, { blocked, request: false });
      return delay(null);
    },
    acceptRequest: ({ contactId }) => {
      const c = conv(contactId);
      if (c) c.request = false;
      return delay(null);
    },
    deleteContact: ({ contactId }) => {
      const i = convs.findIndex((c) => c.contactId === contactId);
      if (i >= 0) convs.splice(i, 1);
      return delay(null);
    },
    safetyNumber: ({ contactId }) =>
      delay({
        contactId,
        displayName: conv(contactId)?.displayName ?? '?',
        groups: Array.from({ length: 12 }, (_, i) => String(10007 * (i + 3)).slice(-5)),
        qrPng: TINY_PNG,
        verification: conv(contactId)?.verification ?? 'unverified',
      }),
    verifyImage: () => delay({ matched: false }, 400),
    verifyFrame: () => delay({ matched: null }),
    setVerified: ({ contactId, verified }) => {
      const c = conv(contactId);
      if (c) c.verification = verified ? 'verified' : 'unverified';
      return delay(null);
    },
    saveImage: ({ name }) => delay({ path: `/home/alice/Downloads/${name}` }),
    privacyPage: () => delay(page),
    setSetting: ({ key, value }) => {
      page = { ...page, settings: page.settings.map((s) => (s.key === key ? { ...s, value } : s)) };
      return delay(page);
    },
    setKeyStorage: async ({ mode, passphrase: given }) => {
      if (mode === 'keyring') {
        await delay(null, 300);
        checkOwn(given);
        passphrase = null;
      } else {
        if (!given) throw missing();
        passphrase = given;
      }
      page = {
        ...page,
        settings: page.settings.map((s) => (s.key === 'key-storage' ? { ...s, value: mode } : s)),
      };
      return delay(page);
    },
    setHardened: ({ on }) => {
      const changed = on
        ? page.settings
            .filter((s) => s.value === 'on' && s.key !== 'screen-security')
            .map((s) => ({ key: s.key, label: s.label, old: 'on', new: 'off' }))
        : [];
      page = {
        ...page,
        hardened: on,
        checkup: on ? [] : page.checkup,
        settings: page.settings.map((s) =>
          changed.some((c) => c.key === s.key) ? { ...s, value: 'off' } : s,
        ),
      };
      return delay({ changed, page });
    },
    exportBackup: async ({ path, profilePassphrase }) => {
      await delay(null, 300);
      checkOwn(profilePassphrase);
      for (let i = 1; i <= 10; i++) {
        await delay(null, 120);
        emit({ kind: 'backup-progress', done: i, total: 10 });
      }
      return { path, bytes: 3_400_000 };
    },
    onEvent(cb) {
      listeners.add(cb);
      return () => listeners.delete(cb);
    },
  };
}
