import { fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import type { PrivacyPage as PrivacyPageData } from '../lib/backend';
import { fakeBackend } from '../tests/fakeBackend';
import Harness from '../tests/Harness.svelte';
import PrivacyPage from './PrivacyPage.svelte';

describe('privacy page', () => {
  it('lists each setting with what it protects against, the right control, and the check-up', async () => {
    const backend = fakeBackend();
    render(Harness, { backend, component: PrivacyPage, args: { onClose: vi.fn() } });
    const rr = await screen.findByTestId('setting-read-receipts');
    expect(rr).toHaveAttribute('role', 'switch');
    expect(rr).toHaveAttribute('aria-checked', 'true');
    expect(screen.getByTestId('setting-notification-detail').tagName).toBe('SELECT');
    expect(screen.getByText('People seeing when you read.')).toBeInTheDocument();
    expect(screen.getByTestId('screen-security-unsupported')).toHaveTextContent(
      'Linux cannot stop screenshots of this window',
    );
    expect(screen.getByTestId('risk-read-receipts')).toHaveAttribute('data-severity', 'low');
    await fireEvent.click(rr);
    expect(backend.setSetting).toHaveBeenCalledWith({ key: 'read-receipts', value: 'off' });
  });

  it('turns hardened mode on and shows what it changed', async () => {
    const backend = fakeBackend();
    render(Harness, { backend, component: PrivacyPage, args: { onClose: vi.fn() } });
    const sw = await screen.findByTestId('hardened-switch');
    expect(sw).toHaveAttribute('aria-checked', 'false');
    await fireEvent.click(sw);
    expect(backend.setHardened).toHaveBeenCalledWith({ on: true, passphrase: null });
    expect(await screen.findByTestId('hardened-change-read-receipts')).toHaveTextContent(
      'Read receipts: On → Off',
    );
    expect(screen.getByTestId('hardened-switch')).toHaveAttribute('aria-checked', 'true');
  });

  it('asks for a passphrase before switching key storage to passphrase', async () => {
    const backend = fakeBackend({
      privacyPage: async () => ({
        hardened: false,
        screenSecuritySupported: true,
        checkup: [],
        settings: [
          {
            key: 'key-storage',
            label: 'Key storage',
            protectsAgainst: 'x',
            values: 'keyring | passphrase',
            value: 'keyring',
          },
        ],
      }),
    });
    render(Harness, { backend, component: PrivacyPage, args: { onClose: vi.fn() } });
    const sel = await screen.findByTestId('setting-key-storage');
    await fireEvent.change(sel, { target: { value: 'passphrase' } });
    expect(backend.setSetting).not.toHaveBeenCalled();
    const pass = 'violet tractor whisper canyon';
    await fireEvent.input(screen.getByTestId('keystorage-passphrase'), { target: { value: pass } });
    await fireEvent.input(screen.getByTestId('keystorage-passphrase-confirm'), {
      target: { value: pass },
    });
    await fireEvent.click(screen.getByTestId('keystorage-apply'));
    expect(backend.setSetting).not.toHaveBeenCalled();
    expect(backend.setKeyStorage).toHaveBeenCalledWith({ mode: 'passphrase', passphrase: pass });
  });

  const passphrasePage = (value = 'passphrase') => ({
    hardened: false,
    screenSecuritySupported: true,
    checkup: [],
    settings: [
      {
        key: 'key-storage',
        label: 'Key storage',
        protectsAgainst: 'x',
        values: 'keyring | passphrase',
        value,
      },
    ],
  });

  it('asks for the current passphrase before moving the key to the OS keyring', async () => {
    const backend = fakeBackend({
      privacyPage: vi.fn(async () => passphrasePage()),
      setKeyStorage: vi.fn(async () => passphrasePage('keyring')),
    });
    render(Harness, { backend, component: PrivacyPage, args: { onClose: vi.fn() } });
    const sel = await screen.findByTestId('setting-key-storage');
    await fireEvent.change(sel, { target: { value: 'keyring' } });
    expect(backend.setKeyStorage).not.toHaveBeenCalled();
    expect(screen.getByTestId('keystorage-passphrase-form')).toHaveTextContent(
      'anyone who can log in as you can open your messages',
    );
    // One field for the current passphrase: no confirmation, no strength meter.
    expect(screen.queryByTestId('keystorage-passphrase')).not.toBeInTheDocument();
    expect(screen.queryByTestId('keystorage-passphrase-confirm')).not.toBeInTheDocument();
    expect(screen.queryByTestId('keystorage-passphrase-strength')).not.toBeInTheDocument();
    const field = screen.getByTestId('keystorage-current-passphrase');
    expect(field).toHaveAttribute('type', 'password');
    expect(screen.getByLabelText('Your Sotto passphrase')).toBe(field);

    await fireEvent.click(screen.getByTestId('keystorage-apply'));
    expect(backend.setKeyStorage).not.toHaveBeenCalled();
    expect(screen.getByText('Enter your Sotto passphrase.')).toBeInTheDocument();

    const pass = 'violet tractor whisper canyon';
    await fireEvent.input(field, { target: { value: pass } });
    await fireEvent.click(screen.getByTestId('keystorage-apply'));
    expect(backend.setKeyStorage).toHaveBeenCalledWith({ mode: 'keyring', passphrase: pass });
    await waitFor(() =>
      expect(screen.queryByTestId('keystorage-passphrase-form')).not.toBeInTheDocument(),
    );
    expect(screen.getByTestId('setting-key-storage')).toHaveValue('keyring');
  });

  it('shows a wrong current passphrase in the form and changes nothing', async () => {
    const onChanged = vi.fn();
    const backend = fakeBackend({
      privacyPage: vi.fn(async () => passphrasePage()),
      setKeyStorage: vi.fn(async () => {
        throw { code: 'wrong-passphrase', message: 'Wrong passphrase.' };
      }),
    });
    render(Harness, { backend, component: PrivacyPage, args: { onClose: vi.fn(), onChanged } });
    const sel = await screen.findByTestId('setting-key-storage');
    await fireEvent.change(sel, { target: { value: 'keyring' } });
    const field = screen.getByTestId('keystorage-current-passphrase');
    await fireEvent.input(field, { target: { value: 'not it' } });
    await fireEvent.click(screen.getByTestId('keystorage-apply'));
    expect(backend.setKeyStorage).toHaveBeenCalledWith({ mode: 'keyring', passphrase: 'not it' });
    const err = await screen.findByTestId('privacy-error');
    expect(err).toHaveAttribute('data-code', 'wrong-passphrase');
    expect(err).toHaveTextContent('That is not your Sotto passphrase.');
    expect(screen.getByTestId('keystorage-passphrase-form')).toContainElement(err);
    expect(field).toHaveValue('');
    expect(field).toHaveAttribute('aria-invalid', 'true');
    expect(document.activeElement).toBe(field);
    expect(onChanged).not.toHaveBeenCalled();

    // Cancelled, the select shows the storage that is really in use.
    await fireEvent.click(screen.getByTestId('keystorage-cancel'));
    expect(screen.queryByTestId('keystorage-passphrase-form')).not.toBeInTheDocument();
    expect(screen.queryByTestId('privacy-error')).not.toBeInTheDocument();
    expect(screen.getByTestId('setting-key-storage')).toHaveValue('passphrase');
  });

  it('offers a passphrase when hardened mode is turned on in keyring mode', async () => {
    const backend = fakeBackend({
      privacyPage: async () => ({
        hardened: false,
        screenSecuritySupported: true,
        checkup: [],
        settings: [
          {
            key: 'key-storage',
            label: 'Key storage',
            protectsAgainst: 'x',
            values: 'keyring | passphrase',
            value: 'keyring',
          },
        ],
      }),
    });
    render(Harness, { backend, component: PrivacyPage, args: { onClose: vi.fn() } });
    await fireEvent.click(await screen.findByTestId('hardened-switch'));
    expect(backend.setHardened).not.toHaveBeenCalled();
    await fireEvent.click(screen.getByTestId('hardened-without-passphrase'));
    expect(backend.setHardened).toHaveBeenCalledWith({ on: true, passphrase: null });
  });

  const keyRisk = {
    key: 'key-storage',
    label: 'Key storage',
    severity: 'medium' as const,
    current: 'keyring',
    reason: 'Anyone who can log in as you can open your messages.',
  };
  const keyringPage = (over: Partial<PrivacyPageData> = {}): PrivacyPageData => ({
    hardened: false,
    screenSecuritySupported: true,
    checkup: [keyRisk, { ...keyRisk, key: 'read-receipts', label: 'Read receipts' }],
    settings: [
      {
        key: 'key-storage',
        label: 'Key storage',
        protectsAgainst: 'x',
        values: 'keyring | passphrase',
        value: 'keyring',
      },
    ],
    ...over,
  });

  it('explains why hardened mode stays off with the key in the OS keyring, and finishes it', async () => {
    const pass = 'violet tractor whisper canyon';
    const done = keyringPage({
      hardened: true,
      checkup: [],
      settings: keyringPage().settings.map((x) => ({ ...x, value: 'passphrase' })),
    });
    const backend = fakeBackend({
      privacyPage: vi.fn(async () => keyringPage()),
      setHardened: vi.fn(async () => ({
        changed: [{ key: 'read-receipts', label: 'Read receipts', old: 'on', new: 'off' }],
        page: keyringPage({ checkup: [keyRisk] }),
      })),
      setKeyStorage: vi.fn(async () => done),
    });
    render(Harness, { backend, component: PrivacyPage, args: { onClose: vi.fn() } });
    const sw = await screen.findByTestId('hardened-switch');
    expect(screen.queryByTestId('hardened-pending')).not.toBeInTheDocument();

    await fireEvent.click(sw);
    await fireEvent.click(screen.getByTestId('hardened-without-passphrase'));
    expect(backend.setHardened).toHaveBeenCalledWith({ on: true, passphrase: null });
    const note = await screen.findByTestId('hardened-pending');
    expect(note).toHaveTextContent('Every other setting is at its safest');
    expect(note).toHaveTextContent('once your key is protected by a passphrase');
    expect(note.closest('[role="status"]')).not.toBeNull();
    // The switch is off (the backend does not count it hardened) and says why.
    expect(sw).toHaveAttribute('aria-checked', 'false');
    expect(sw).toHaveAccessibleDescription(expect.stringContaining('Every other setting'));
    expect(screen.getByTestId('hardened-change-read-receipts')).toBeInTheDocument();

    await fireEvent.click(screen.getByTestId('hardened-choose-passphrase'));
    const form = screen.getByTestId('keystorage-passphrase-form');
    expect(form).toHaveTextContent('Choose a passphrase');
    const field = screen.getByTestId('keystorage-passphrase');
    await waitFor(() => expect(document.activeElement).toBe(field));
    // Still there while the passphrase is being chosen.
    expect(screen.getByTestId('hardened-pending')).toBeInTheDocument();
    await fireEvent.input(field, { target: { value: pass } });
    await fireEvent.input(screen.getByTestId('keystorage-passphrase-confirm'), {
      target: { value: pass },
    });
    await fireEvent.click(screen.getByTestId('keystorage-apply'));
    expect(backend.setKeyStorage).toHaveBeenCalledWith({ mode: 'passphrase', passphrase: pass });
    await waitFor(() =>
      expect(screen.getByTestId('hardened-switch')).toHaveAttribute('aria-checked', 'true'),
    );
    expect(screen.queryByTestId('hardened-pending')).not.toBeInTheDocument();
    expect(screen.queryByTestId('hardened-choose-passphrase')).not.toBeInTheDocument();
    expect(screen.queryByTestId('keystorage-passphrase-form')).not.toBeInTheDocument();
  });

  it('keeps the note when the page is opened again, and only when the key is all that is left', async () => {
    const backend = fakeBackend({
      privacyPage: vi.fn(async () => keyringPage({ checkup: [keyRisk] })),
    });
    const { unmount } = render(Harness, {
      backend,
      component: PrivacyPage,
      args: { onClose: vi.fn() },
    });
    expect(await screen.findByTestId('hardened-pending')).toBeInTheDocument();
    unmount();

    // Other settings still weak: hardened mode is simply off.
    const weak = fakeBackend({ privacyPage: vi.fn(async () => keyringPage()) });
    const r = render(Harness, {
      backend: weak,
      component: PrivacyPage,
      args: { onClose: vi.fn() },
    });
    await screen.findByTestId('hardened-switch');
    expect(screen.queryByTestId('hardened-pending')).not.toBeInTheDocument();
    expect(screen.getByTestId('hardened-switch')).toHaveAccessibleDescription(
      expect.not.stringContaining('Every other setting'),
    );
    r.unmount();

    // Passphrase mode: the note never applies.
    const pp = fakeBackend({ privacyPage: vi.fn(async () => passphrasePage()) });
    render(Harness, { backend: pp, component: PrivacyPage, args: { onClose: vi.fn() } });
    await screen.findByTestId('hardened-switch');
    expect(screen.queryByTestId('hardened-pending')).not.toBeInTheDocument();
  });
});
