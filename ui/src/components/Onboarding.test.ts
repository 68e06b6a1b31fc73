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
});
