import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import type { Me } from '../lib/backend';
import { fakeBackend, me } from '../tests/fakeBackend';
import Harness from '../tests/Harness.svelte';
import Onboarding from './Onboarding.svelte';

function mount(keyringAvailable: boolean, backend = fakeBackend()) {
  const onReady = vi.fn();
  render(Harness, {
    backend,
    component: Onboarding,
    args: { info: null, keyringAvailable, onReady },
  });
  return { backend, onReady };
}

describe('onboarding', () => {
  it('shows every problem before sending anything', async () => {
    const { backend } = mount(true);
    await fireEvent.click(screen.getByTestId('onboarding-relay-address'));
    await fireEvent.input(screen.getByTestId('onboarding-relay-url'), {
      target: { value: 'http://x' },
    });
    await fireEvent.click(screen.getByTestId('onboarding-create'));
    expect(await screen.findByText('Choose a username.')).toBeInTheDocument();
    expect(screen.getByText(/starts with ws:\/\/ or wss:\/\//)).toBeInTheDocument();
    expect(backend.createProfile).not.toHaveBeenCalled();
  });

  it('preselects a passphrase and explains when there is no keyring', async () => {
    mount(false);
    expect(screen.getByTestId('onboarding-keyring-unavailable')).toBeInTheDocument();
    expect(screen.getByTestId('onboarding-keystorage-passphrase')).toBeChecked();
    expect(screen.getByTestId('onboarding-keystorage-keyring')).toBeDisabled();
    await fireEvent.input(screen.getByTestId('onboarding-passphrase'), {
      target: { value: 'abc' },
    });
    expect(screen.getByTestId('onboarding-passphrase-strength')).toHaveAttribute('data-score', '0');
  });

  it('creates the profile with the chosen options', async () => {
    const { backend, onReady } = mount(true);
    await fireEvent.input(screen.getByTestId('onboarding-username'), {
      target: { value: ' alice ' },
    });
    await fireEvent.input(screen.getByTestId('onboarding-pin'), { target: { value: '482913' } });
    await fireEvent.click(screen.getByTestId('onboarding-keystorage-passphrase'));
    const pass = 'violet tractor whisper canyon';
    await fireEvent.input(screen.getByTestId('onboarding-passphrase'), { target: { value: pass } });
    await fireEvent.input(screen.getByTestId('onboarding-passphrase-confirm'), {
      target: { value: pass },
    });
    await fireEvent.click(screen.getByTestId('onboarding-create'));
    await vi.waitFor(() => expect(onReady).toHaveBeenCalled());
    expect(backend.createProfile).toHaveBeenCalledWith({
      username: 'alice',
      relay: { kind: 'embedded' },
      pin: '482913',
      keyStorage: 'passphrase',
      passphrase: pass,
    });
  });

  it('shows the relay error the Rust side returns', async () => {
    const backend = fakeBackend({
      createProfile: () => Promise.reject({ code: 'username-taken', message: 'taken' }),
    });
    mount(true, backend);
    await fireEvent.input(screen.getByTestId('onboarding-username'), { target: { value: 'bob' } });
    await fireEvent.click(screen.getByTestId('onboarding-create'));
    expect(await screen.findByTestId('onboarding-error')).toHaveAttribute(
      'data-code',
      'username-taken',
    );
  });

  it('restores a backup and shows its progress', async () => {
    let finish: () => void = () => undefined;
    const backend = fakeBackend({
      restoreBackup: vi.fn(
        () =>
          new Promise<Me>((res) => {
            finish = () => res(me);
          }),
      ),
    });
    mount(true, backend);
    await fireEvent.click(screen.getByTestId('onboarding-restore-tab'));
    await fireEvent.input(screen.getByTestId('restore-file'), {
      target: { value: '/home/a/b.sotto' },
    });
    await fireEvent.input(screen.getByTestId('restore-backup-passphrase'), {
      target: { value: 'x' },
    });
    await fireEvent.click(screen.getByTestId('restore-submit'));
    expect(backend.restoreBackup).toHaveBeenCalledWith({
      file: '/home/a/b.sotto',
      backupPassphrase: 'x',
      relay: { kind: 'embedded' },
      keyStorage: 'keyring',
      passphrase: null,
    });
    backend.emit({ kind: 'backup-progress', done: 50, total: 200 });
    await vi.waitFor(() =>
      expect(screen.getByTestId('restore-progress')).toHaveAttribute('aria-valuenow', '25'),
    );
    finish();
  });

  it('follows the ARIA tabs pattern for create / restore', async () => {
    mount(true);
    const tablist = screen.getByRole('tablist');
    const create = screen.getByTestId('onboarding-create-tab');
    const restore = screen.getByTestId('onboarding-restore-tab');
    expect(tablist).toHaveAccessibleName('Create or restore a profile');
    expect(screen.getAllByRole('tab')).toEqual([create, restore]);
    const panel = screen.getByRole('tabpanel');
    for (const t of [create, restore]) expect(t).toHaveAttribute('aria-controls', panel.id);
    expect(panel).toHaveAccessibleName('Create a profile');
    expect(panel).toContainElement(screen.getByTestId('onboarding-create-form'));
    // Roving tabindex: only the selected tab is in the Tab order.
    expect(create).toHaveAttribute('aria-selected', 'true');
    expect(create).toHaveAttribute('tabindex', '0');
    expect(restore).toHaveAttribute('aria-selected', 'false');
    expect(restore).toHaveAttribute('tabindex', '-1');

    create.focus();
    await fireEvent.keyDown(create, { key: 'ArrowRight' });
    expect(restore).toHaveAttribute('aria-selected', 'true');
    expect(restore).toHaveAttribute('tabindex', '0');
    expect(create).toHaveAttribute('tabindex', '-1');
    expect(document.activeElement).toBe(restore);
    expect(screen.getByRole('tabpanel')).toHaveAccessibleName('Restore from a backup');
    expect(screen.getByTestId('onboarding-restore-form')).toBeInTheDocument();
    expect(screen.queryByTestId('onboarding-create-form')).not.toBeInTheDocument();

    // Wraps around in both directions.
    await fireEvent.keyDown(restore, { key: 'ArrowRight' });
    expect(document.activeElement).toBe(create);
    expect(create).toHaveAttribute('aria-selected', 'true');
    await fireEvent.keyDown(create, { key: 'ArrowLeft' });
    expect(document.activeElement).toBe(restore);
    expect(restore).toHaveAttribute('aria-selected', 'true');

    await fireEvent.keyDown(restore, { key: 'Home' });
    expect(document.activeElement).toBe(create);
    expect(create).toHaveAttribute('aria-selected', 'true');
    await fireEvent.keyDown(create, { key: 'End' });
    expect(document.activeElement).toBe(restore);
    expect(restore).toHaveAttribute('aria-selected', 'true');

    // Other keys are left alone.
    await fireEvent.keyDown(restore, { key: 'ArrowDown' });
    expect(restore).toHaveAttribute('aria-selected', 'true');
  });

  it('keeps field errors when the selected tab is activated again', async () => {
    mount(true);
    await fireEvent.click(screen.getByTestId('onboarding-create'));
    expect(await screen.findByText('Choose a username.')).toBeInTheDocument();
    await fireEvent.keyDown(screen.getByTestId('onboarding-create-tab'), { key: 'Home' });
    expect(screen.getByText('Choose a username.')).toBeInTheDocument();
    await fireEvent.click(screen.getByTestId('onboarding-restore-tab'));
    expect(screen.queryByText('Choose a username.')).not.toBeInTheDocument();
  });
});
