// Every user-facing string lives here, ready for translation.
import type { ErrorCode } from './backend';
import { parseSecs } from './durations';
import type { StrengthHint } from './strength';
import type { FieldError } from './validation';

const plural = (n: number, one: string, many: string) => (n === 1 ? one : many);

export const strings = {
  appTagline: 'Private messages for people who need them to stay private.',
  loading: 'Starting…',
  versionLabel: (version: string) => `Version ${version}`,
  loadFailed: 'Sotto could not read its own version. Please restart the app.',
  startFailed: 'Sotto could not open your profile. Please restart the app.',
  retry: 'Try again',
  cancel: 'Cancel',
  close: 'Close',
  back: 'Back',
  working: 'Working…',

  // Onboarding
  welcomeTitle: 'Welcome to Sotto',
  onboardingTabs: 'Create or restore a profile',
  createTab: 'Create a profile',
  restoreTab: 'Restore from a backup',
  username: 'Username',
  usernameHelp: 'People find you by this name. It is not linked to a phone number.',
  relay: 'Relay',
  relayEmbedded: 'A relay on this computer — for trying Sotto',
  relayAddress: 'A relay address',
  relayUrl: 'Relay address (ws:// or wss://)',
  pin: 'Registration-lock PIN (optional)',
  pinHelp: 'Stops someone else taking your username.',
  keyStorage: 'Key storage',
  keyringOption: 'OS keyring — opens when you log in',
  passphraseOption: 'Passphrase — asked at every start, safest if someone can use your computer',
  keyringUnavailable:
    'No OS keyring is available on this computer, so Sotto will protect your messages with a passphrase.',
  passphrase: 'Passphrase',
  passphraseConfirm: 'Repeat the passphrase',
  passphraseHelp:
    'Several unrelated words are easy to remember and hard to guess. If you forget it, your messages cannot be recovered.',
  createButton: 'Create profile',
  creating: 'Creating your profile…',
  backupFile: 'Backup file (full path)',
  backupPassphrase: 'Backup passphrase',
  newKeyStorage: 'Key storage on this computer',
  restoreButton: 'Restore',
  restoring: 'Restoring…',

  // Field errors
  fieldError: {
    'username-empty': 'Choose a username.',
    'username-long': 'Usernames can be at most 32 bytes long.',
    'username-chars': 'Usernames cannot contain spaces, @, slashes or colons.',
    'relay-url': 'Enter an address that starts with ws:// or wss://.',
    'pin-short': 'A PIN needs at least 4 characters.',
    'passphrase-weak': 'This passphrase is too easy to guess. Make it longer or add words.',
    'passphrase-mismatch': 'The two passphrases are different.',
    'file-empty': 'Enter the path of the backup file.',
    'backup-passphrase-empty': 'Enter the passphrase this backup was made with.',
    'profile-passphrase-empty': 'Enter your Sotto passphrase.',
  } satisfies Record<FieldError, string>,

  // Strength
  strengthLabel: 'Passphrase strength',
  strengthLevels: ['Very weak', 'Weak', 'Fair', 'Strong', 'Very strong'] as const,
  strengthHint: {
    'too-short': 'Use at least 8 characters.',
    common: 'Contains a common word or password.',
    sequence: 'Avoid runs like abcd, 1234 or qwerty.',
    repeat: 'Avoid repeated characters.',
    date: 'Avoid years and dates.',
    'one-class': 'Mix in other kinds of characters, or use more words.',
    'add-words': 'Add another word or two.',
  } satisfies Record<StrengthHint, string>,

  // Errors from the backend
  error: {
    locked: 'Sotto is locked. Unlock it first.',
    'wrong-passphrase': 'That passphrase is not right.',
    'keyring-unavailable': 'The OS keyring cannot be used right now. Choose a passphrase instead.',
    'username-taken': 'That username is taken. Try another one.',
    'username-invalid': 'That username cannot be used.',
    'registration-locked': 'That username is protected by a registration-lock PIN.',
    'relay-unreachable': 'The relay cannot be reached. Check the address and your connection.',
    'not-found': 'Not found.',
    blocked: 'This contact is blocked.',
    'key-changed':
      'Sending is paused: this contact’s safety number changed. Review it before you send again.',
    undeliverable:
      'The relay refused this message, so it was not sent. The contact may have deleted their account.',
    'invalid-input': 'That input was not accepted.',
    'no-qr-code': 'No readable QR code was found in that image.',
    'backup-corrupt': 'This backup file is damaged or is not a Sotto backup.',
    'backup-wrong-passphrase': 'That is not the passphrase of this backup.',
    io: 'The file could not be read or written.',
    'file-exists': 'A file with that name already exists. Choose another name.',
    internal: 'Something went wrong inside Sotto.',
  } satisfies Record<ErrorCode, string>,

  // Unlock
  unlockTitle: 'Sotto is locked',
  unlockHelp: 'Enter your passphrase to open your messages.',
  unlockButton: 'Unlock',
  unlocking: 'Unlocking…',

  // Confirming the profile's own passphrase before protection goes down or all messages go out
  profilePassphrase: 'Your Sotto passphrase',
  profilePassphraseWrong: 'That is not your Sotto passphrase.',

  // Main window
  me: 'You',
  searchLabel: 'Search messages',
  searchPlaceholder: 'Search',
  searchNoResults: 'No messages match.',
  searchIndexing:
    'Messages restored from a backup are still being made searchable, so older ones may be missing here.',
  searchResults: 'Search results',
  clearSearch: 'Clear search',
  newChat: 'New chat',
  conversations: 'Conversations',
  requests: 'Message requests',
  requestHelp: 'People you have not accepted yet. They cannot see whether you read their message.',
  accept: 'Accept',
  block: 'Block',
  unblock: 'Unblock',
  delete: 'Delete',
  blockedLabel: 'Blocked',
  verifiedLabel: 'Verified',
  keyChangedLabel: 'Safety number changed',
  unreadLabel: (n: number) => `${n} unread ${plural(n, 'message', 'messages')}`,
  timerBadge: (t: string) => `Disappearing messages: ${t}`,
  youPrefix: 'You: ',
  noConversations: 'No conversations yet. Start one with “New chat”.',
  noConversationOpen: 'Choose a conversation, or start a new chat.',
  privacy: 'Privacy',
  backup: 'Backup',
  lockNow: 'Lock now',
  lockNeedsPassphrase:
    'App lock needs passphrase key storage. You can switch to a passphrase on the Privacy page.',
  offline: 'Offline — messages will be sent when the relay is reachable again.',
  connecting: 'Connecting to the relay…',
  // Said by screen readers when a message arrives; never the message text, which could be
  // overheard. With notifications set to show nothing, not the name either.
  announceNewMessageFrom: (name: string) => `New message from ${name}`,
  announceInOpenChat: (name: string) => `${name}: new message`,
  announceNewMessage: 'New message',
  someone: 'Someone',

  // New chat
  newChatTitle: 'Start a new chat',
  byUsername: 'Add by username',
  addButton: 'Add',
  byInvite: 'Or use their invite QR code',
  inviteHelp: 'Choose an image of their code, paste it (Ctrl+V) or drop it here.',
  chooseImage: 'Choose an image',
  usernameNotFound: 'No one uses that username. Check the spelling with them.',
  myInvite: 'Your invite code',
  myInviteHelp: 'Let someone scan this to start a chat with you.',

  // Conversation
  conversationWith: (name: string) => `Conversation with ${name}`,
  timerLabel: 'Disappearing messages',
  timerShortLabel: 'Disappear',
  timerOff: 'Off',
  safetyNumberButton: 'Safety number',
  keyChangedBanner: (name: string) =>
    `${name}’s safety number has changed. This can mean they reinstalled Sotto — or that someone is trying to listen in.`,
  reviewSafetyNumber: 'Review safety number',
  sendPaused: 'Sending is paused until you review the new safety number.',
  blockedBanner: 'You blocked this contact. They cannot message you.',
  requestBanner: (name: string) => `${name} wants to message you. Accept to reply, or block them.`,
  typing: (name: string) => `${name} is typing…`,
  today: 'Today',
  yesterday: 'Yesterday',
  messagesLabel: 'Messages',
  loadingOlder: 'Loading older messages…',
  expiresIn: (t: string) => `Disappears in ${t}`,
  expired: 'This message has disappeared.',
  deliveryState: {
    queued: 'Queued — not sent yet',
    failed: 'Not sent — the relay refused it',
    sent: 'Sent',
    delivered: 'Delivered',
    read: 'Read',
    received: 'Received',
  },
  composerLabel: 'Message',
  composerPlaceholder: 'Write a message',
  send: 'Send',
  queuedNotice: 'The relay cannot be reached. Your message is queued and will be sent later.',
  jumpToLatest: 'Jump to the latest message',

  // Timers
  timerName: (secs: number): string => {
    if (secs === 0) return 'Off';
    const units: [number, string, string][] = [
      [604_800, 'week', 'weeks'],
      [86_400, 'day', 'days'],
      [3600, 'hour', 'hours'],
      [60, 'minute', 'minutes'],
      [1, 'second', 'seconds'],
    ];
    for (const [n, one, many] of units) {
      if (secs % n === 0) return `${secs / n} ${plural(secs / n, one, many)}`;
    }
    return `${secs} seconds`;
  },

  // Safety number
  safetyTitle: (name: string) => `Safety number with ${name}`,
  safetyHelp:
    'Compare these 60 digits with the ones on their screen, in person or over a call you trust, or scan each other’s codes.',
  safetyDigits: 'Safety number digits',
  ourCode: 'Your code — let them scan it',
  scanCamera: 'Scan their code with the camera',
  stopCamera: 'Stop the camera',
  scanning: 'Point the camera at their code…',
  cameraDenied:
    'Sotto may not use the camera. Allow camera access for Sotto in your system settings, or choose an image of their code instead.',
  cameraUnavailable: 'No camera could be opened. Choose an image of their code instead.',
  chooseCodeImage: 'Choose an image of their code',
  pasteHint: 'You can also paste an image of their code (Ctrl+V).',
  saveCode: 'Save my code as an image',
  savedTo: (path: string) => `Saved to ${path}`,
  markVerified: 'Mark as verified',
  clearVerification: 'Clear verification',
  verifiedBig: 'Verified',
  verifiedExplain: 'You have confirmed this is the key of the person you are talking to.',
  matchedResult: 'The codes match. This contact is now verified.',
  mismatchResult: 'Does not match — this may not be the person you think.',
  changedExplain: 'This contact’s key changed. Compare again before you trust it.',
  unverifiedExplain: 'Not verified yet.',

  // Privacy
  privacyTitle: 'Privacy',
  hardenedMode: 'Hardened mode',
  hardenedHelp:
    'One switch for the safest setting of everything below: nothing about your activity is shared, notifications show nothing, sending stops when a key changes, chats disappear, and the app locks when idle.',
  hardenedChanged: 'Hardened mode changed:',
  hardenedNothing: 'Nothing needed changing.',
  changeLine: (label: string, from: string, to: string) => `${label}: ${from} → ${to}`,
  protectsAgainst: 'What it protects against',
  currentValue: (v: string) => `Currently: ${v}`,
  checkupTitle: 'Privacy check-up',
  checkupClear: 'No risks found. Your settings are as safe as they can be.',
  severity: { high: 'High risk', medium: 'Medium risk', low: 'Low risk' },
  screenSecurityUnsupported:
    'Linux cannot stop screenshots of this window. Other apps may still capture it.',
  keyStoragePassphraseTitle: 'Choose a passphrase',
  keyStoragePassphraseHelp:
    'Sotto will ask for this passphrase at every start. If you forget it, your messages cannot be recovered.',
  apply: 'Apply',
  keyringConfirmTitle: 'Confirm it is you',
  keyringConfirmHelp:
    'With the key in the OS keyring, anyone who can log in as you can open your messages, so Sotto asks for your current passphrase to be sure it is really you.',
  keyringConfirmButton: 'Move the key to the OS keyring',
  hardenedPassphraseTitle: 'Also protect your messages with a passphrase?',
  hardenedPassphraseHelp:
    'Hardened mode is safest with passphrase key storage: Sotto then asks for it at every start and can lock itself. If you forget it, your messages cannot be recovered.',
  hardenedWithPassphrase: 'Turn on with this passphrase',
  hardenedWithoutPassphrase: 'Turn on, keep the OS keyring',
  hardenedPending:
    'Every other setting is at its safest. Hardened mode is complete once your key is protected by a passphrase instead of the OS keyring.',
  hardenedChoosePassphrase: 'Choose a passphrase',
  valueWords: {
    on: 'On',
    off: 'Off',
    'name-and-text': 'Name and message',
    'name-only': 'Name only',
    nothing: 'Nothing',
    allow: 'Allow',
    block: 'Block',
    keyring: 'OS keyring',
    passphrase: 'Passphrase',
    never: 'Never',
    immediately: 'Immediately',
  } as Record<string, string>,

  // Backup
  backupTitle: 'Back up your messages',
  backupHelp:
    'A backup is one file, always encrypted with its own passphrase. Keep the file and the passphrase in different places.',
  backupPath: 'Save the backup to (full path)',
  backupPassphraseNew: 'Backup passphrase',
  backupPassphraseConfirm: 'Repeat the backup passphrase',
  backupProfilePassphraseHelp:
    'A backup takes all your messages with it, so Sotto asks for the passphrase you open it with to be sure it is really you.',
  exportButton: 'Create backup',
  exporting: 'Creating backup…',
  exported: (path: string, bytes: number) =>
    `Backup saved to ${path} (${(bytes / 1024 / 1024).toFixed(1)} MB).`,
  progressLabel: 'Progress',

  // App lock
  locking: 'Locking…',
} as const;

/** A setting value in words: `5m` → "5 minutes", `name-only` → "Name only". */
export function settingValueText(v: string): string {
  const word = strings.valueWords[v];
  if (word) return word;
  const secs = parseSecs(v);
  return secs === null ? v : strings.timerName(secs);
}

export function errorText(e: { code: ErrorCode; message: string }): string {
  return strings.error[e.code] ?? e.message;
}
