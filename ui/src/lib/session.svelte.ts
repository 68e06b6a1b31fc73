// The decrypted state of an open profile: conversation list, the open thread, typing and
// connection. One instance per unlocked session; dropped (dispose) when the app locks.
import type {
  Backend,
  ConnectionState,
  ConversationSummary,
  DeliveryState,
  Message,
  PrivacyPage,
  SottoEvent,
  UiError,
} from './backend';
import { toUiError } from './backend';
import { strings } from './strings';

export const PAGE = 100;
/** Older history comes in larger pages: each page rebuilds the list's row index once. */
export const OLDER_PAGE = 500;
const MAX_PAGES_TO_FIND = 2000;
/** The same announcement again within this time is not repeated (a burst from one contact). */
const ANNOUNCE_REPEAT_MS = 2000;
/** Then the live region is emptied, so no name stays in the page for a screen reader to find. */
const ANNOUNCE_CLEAR_MS = 10_000;
const RANK: Record<DeliveryState, number> = {
  queued: 0,
  failed: 0,
  sent: 1,
  delivered: 2,
  read: 3,
  received: 3,
};

export class Session {
  conversations = $state.raw<ConversationSummary[]>([]);
  activeId = $state<string | null>(null);
  thread = $state.raw<Message[]>([]);
  hasMore = $state(false);
  loadingOlder = $state(false);
  focusMessageId = $state<number | null>(null);
  typing = $state<Record<string, boolean>>({});
  connection = $state<ConnectionState>('online');
  sendPaused = $state<Record<string, boolean>>({});
  /**
   * The privacy setting `block-on-key-change`: Rust then sends nothing to a contact whose
   * safety number changed, so the UI pauses sending to them before a send fails.
   */
  blockOnKeyChange = $state(false);
  lastError = $state<UiError | null>(null);
  /**
   * What the screen-reader live region says about an incoming message: who it is from, never
   * its text. `id` is new for each announcement, so the same words can be said again.
   */
  announcement = $state.raw<{ id: number; text: string } | null>(null);
  /** The privacy setting `notification-detail`: with `nothing`, announcements name no one. */
  private notificationDetail = 'name-and-text';
  private announceId = 0;
  private lastAnnounced = { text: '', atMs: 0 };
  private announceTimer: ReturnType<typeof setTimeout> | undefined;

  private openToken = 0;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  // eslint-disable-next-line svelte/prefer-svelte-reactivity -- timers only, never rendered
  private typingTimers = new Map<string, ReturnType<typeof setTimeout>>();
  private disposed = false;

  constructor(private backend: Backend) {}

  get active(): ConversationSummary | undefined {
    return this.conversations.find((c) => c.contactId === this.activeId);
  }

  async refresh(): Promise<void> {
    const list = await this.backend.conversations();
    if (!this.disposed) this.conversations = list;
  }

  private refreshSoon(): void {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => {
      this.refresh().catch(() => undefined);
    }, 120);
  }

  /** Opens a conversation; with `focusId`, loads pages back until that message is present. */
  async open(contactId: string, focusId: number | null = null): Promise<void> {
    const token = ++this.openToken;
    if (this.activeId !== contactId) {
      this.activeId = contactId;
      this.thread = [];
      this.hasMore = false;
    }
    this.focusMessageId = null;
    let items = await this.backend.messages({ contactId, beforeId: null, limit: PAGE });
    if (token !== this.openToken || this.disposed) return;
    let more = items.length >= PAGE;
    for (let i = 0; focusId !== null && more && i < MAX_PAGES_TO_FIND; i++) {
      if (items.some((m) => m.id === focusId)) break;
      const older = await this.backend.messages({
        contactId,
        beforeId: items[0]?.id ?? null,
        limit: PAGE * 5,
      });
      if (token !== this.openToken || this.disposed) return;
      more = older.length >= PAGE * 5;
      items = [...older, ...items];
    }
    this.thread = items;
    this.hasMore = more;
    this.focusMessageId = focusId;
  }

  close(): void {
    this.openToken++;
    this.activeId = null;
    this.thread = [];
    this.hasMore = false;
  }

  async loadOlder(): Promise<void> {
    const contactId = this.activeId;
    if (!contactId || this.loadingOlder || !this.hasMore) return;
    const token = this.openToken;
    this.loadingOlder = true;
    try {
      const older = await this.backend.messages({
        contactId,
        beforeId: this.thread[0]?.id ?? null,
        limit: OLDER_PAGE,
      });
      if (token !== this.openToken || this.disposed) return;
      this.hasMore = older.length >= OLDER_PAGE;
      const firstId = this.thread[0]?.id ?? Infinity;
      this.thread = [...older.filter((m) => m.id < firstId), ...this.thread];
    } finally {
      this.loadingOlder = false;
    }
  }

  /** Sends a message; resolves to the stored message, rejects with a UiError. */
  async send(text: string): Promise<Message> {
    const contactId = this.activeId;
    if (!contactId) throw toUiError({ code: 'invalid-input', message: '' });
    try {
      const m = await this.backend.sendText({ contactId, text });
      this.sendPaused = { ...this.sendPaused, [contactId]: false };
      this.addMessage(m);
      this.refreshSoon();
      return m;
    } catch (e) {
      const err = toUiError(e);
      if (err.code === 'key-changed') {
        this.sendPaused = { ...this.sendPaused, [contactId]: true };
        this.patch(contactId, { verification: 'changed' });
      }
      throw err;
    }
  }

  private addMessage(m: Message): void {
    if (m.contactId !== this.activeId) return;
    const t = this.thread;
    const last = t[t.length - 1];
    if (!last || last.id < m.id) this.thread = [...t, m];
    else if (!t.some((x) => x.id === m.id)) this.thread = [...t, m].sort((a, b) => a.id - b.id);
  }

  /** Whether sending to `c` is paused until its new safety number is reviewed. */
  isSendPaused(c: ConversationSummary): boolean {
    if (c.verification !== 'changed') return false;
    return this.blockOnKeyChange || this.sendPaused[c.contactId] === true;
  }

  /** Applies the privacy page's `block-on-key-change` setting. */
  applyPrivacy(p: PrivacyPage): void {
    const detail = p.settings.find((s) => s.key === 'notification-detail')?.value;
    if (detail !== undefined) this.notificationDetail = detail;
    const v = p.settings.find((s) => s.key === 'block-on-key-change')?.value;
    if (v === undefined) return;
    this.blockOnKeyChange = v === 'on';
    // Turned off: earlier refusals no longer hold.
    if (!this.blockOnKeyChange) this.sendPaused = {};
  }

  patch(contactId: string, change: Partial<ConversationSummary>): void {
    this.conversations = this.conversations.map((c) =>
      c.contactId === contactId ? { ...c, ...change } : c,
    );
  }

  remove(contactId: string): void {
    this.conversations = this.conversations.filter((c) => c.contactId !== contactId);
    if (this.activeId === contactId) this.close();
  }

  private setStates(contactId: string, ids: number[], state: DeliveryState): void {
    if (contactId !== this.activeId) return;
    // eslint-disable-next-line svelte/prefer-svelte-reactivity -- local lookup
    const set = new Set(ids);
    let changed = false;
    const next = this.thread.map((m) => {
      if (set.has(m.id) && RANK[state] > RANK[m.state]) {
        changed = true;
        return { ...m, state };
      }
      return m;
    });
    if (changed) this.thread = next;
  }

  /** Tells screen readers that `m` arrived: the sender's name at most, never the text. */
  private announce(m: Message): void {
    if (m.outgoing) return;
    let text: string;
    if (this.notificationDetail === 'nothing') text = strings.announceNewMessage;
    else {
      const c = this.conversations.find((x) => x.contactId === m.contactId);
      const name = c?.displayName || strings.someone;
      text =
        m.contactId === this.activeId
          ? strings.announceInOpenChat(name)
          : strings.announceNewMessageFrom(name);
    }
    const now = Date.now();
    if (text === this.lastAnnounced.text && now - this.lastAnnounced.atMs < ANNOUNCE_REPEAT_MS)
      return;
    this.lastAnnounced = { text, atMs: now };
    this.announcement = { id: ++this.announceId, text };
    clearTimeout(this.announceTimer);
    this.announceTimer = setTimeout(() => (this.announcement = null), ANNOUNCE_CLEAR_MS);
  }

  handle(ev: SottoEvent): void {
    if (this.disposed) return;
    switch (ev.kind) {
      case 'message':
        this.addMessage(ev.message);
        this.announce(ev.message);
        if (ev.keyChanged) this.patch(ev.message.contactId, { verification: 'changed' });
        this.refreshSoon();
        break;
      case 'delivered':
        this.setStates(ev.contactId, ev.messageIds, 'delivered');
        break;
      case 'read':
        this.setStates(ev.contactId, ev.messageIds, 'read');
        break;
      case 'typing': {
        clearTimeout(this.typingTimers.get(ev.contactId));
        this.typing = { ...this.typing, [ev.contactId]: ev.typing };
        if (ev.typing) {
          this.typingTimers.set(
            ev.contactId,
            setTimeout(() => (this.typing = { ...this.typing, [ev.contactId]: false }), 8000),
          );
        }
        break;
      }
      case 'timer-changed':
        this.patch(ev.contactId, { timerSecs: ev.secs });
        break;
      case 'expired': {
        // eslint-disable-next-line svelte/prefer-svelte-reactivity -- local lookup
        const gone = new Set(ev.messageIds);
        if (this.thread.some((m) => gone.has(m.id)))
          this.thread = this.thread.filter((m) => !gone.has(m.id));
        this.refreshSoon();
        break;
      }
      case 'key-changed':
        this.patch(ev.contactId, { verification: 'changed' });
        break;
      case 'connection':
        this.connection = ev.state;
        break;
      default:
        break;
    }
  }

  /** Forgets every decrypted thing this session holds. */
  dispose(): void {
    this.disposed = true;
    this.openToken++;
    clearTimeout(this.refreshTimer);
    clearTimeout(this.announceTimer);
    for (const t of this.typingTimers.values()) clearTimeout(t);
    this.typingTimers.clear();
    this.conversations = [];
    this.thread = [];
    this.activeId = null;
    this.typing = {};
    this.sendPaused = {};
    this.blockOnKeyChange = false;
    this.focusMessageId = null;
    this.announcement = null;
    this.lastAnnounced = { text: '', atMs: 0 };
  }
}
