import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import { fakeBackend } from '../tests/fakeBackend';
import Harness from '../tests/Harness.svelte';
import BackupDialog from './BackupDialog.svelte';

const info = { name: 'Sotto', version: '0.1.0', profileDir: '/home/al/.local/share/sotto' };
const backupPass = 'a long backup passphrase for tests';
const own = 'correct horse battery staple alice';

async function fillBackup(path = '/home/al/b.sotto') {
  const p = screen.getByTestId('backup-path');
  await fireEvent.input(p, { target: { value: path } });
  await fireEvent.input(screen.getByTestId('backup-passphrase'), {
    target: { value: backupPass },
  });
  await fireEvent.input(screen.getByTestId('backup-passphrase-confirm'), {
    target: { value: backupPass },
  });
}

describe('backup dialog', () => {
  it('in passphrase mode asks for the profile passphrase and sends it', async () => {
    const backend = fakeBackend();
    render(Harness, {
      backend,
      component: BackupDialog,
      args: { info, keyStorage: 'passphrase', onClose: vi.fn() },
    });
    await fillBackup();
    const field = screen.getByTestId('backup-profile-passphrase');
    expect(field).toHaveAttribute('type', 'password');
    expect(screen.getByLabelText('Your Sotto passphrase')).toBe(field);

    await fireEvent.click(screen.getByTestId('backup-submit'));
    expect(backend.exportBackup).not.toHaveBeenCalled();
    expect(await screen.findByText('Enter your Sotto passphrase.')).toBeInTheDocument();

    await fireEvent.input(field, { target: { value: own } });
    await fireEvent.click(screen.getByTestId('backup-submit'));
    expect(backend.exportBackup).toHaveBeenCalledWith({
      path: '/home/al/b.sotto',
      passphrase: backupPass,
      profilePassphrase: own,
    });
    expect(await screen.findByTestId('backup-done')).toHaveTextContent('/home/al/b.sotto');
  });

  it('shows a wrong profile passphrase and lets it be typed again', async () => {
    const backend = fakeBackend({
      exportBackup: vi.fn(async () => {
        throw { code: 'wrong-passphrase', message: 'Wrong passphrase.' };
      }),
    });
    render(Harness, {
      backend,
      component: BackupDialog,
      args: { info, keyStorage: 'passphrase', onClose: vi.fn() },
    });
    await fillBackup();
    const field = screen.getByTestId('backup-profile-passphrase');
    await fireEvent.input(field, { target: { value: 'not it' } });
    await fireEvent.click(screen.getByTestId('backup-submit'));
    const err = await screen.findByTestId('backup-error');
    expect(err).toHaveAttribute('data-code', 'wrong-passphrase');
    expect(err).toHaveTextContent('That is not your Sotto passphrase.');
    expect(field).toHaveValue('');
    expect(field).toHaveAttribute('aria-invalid', 'true');
    expect(document.activeElement).toBe(field);
    expect(screen.queryByText('Enter your Sotto passphrase.')).not.toBeInTheDocument();

    // Sent again empty, it is caught here, not sent.
    await fireEvent.click(screen.getByTestId('backup-submit'));
    expect(backend.exportBackup).toHaveBeenCalledTimes(1);
    expect(await screen.findByText('Enter your Sotto passphrase.')).toBeInTheDocument();
    expect(screen.queryByTestId('backup-error')).not.toBeInTheDocument();
    expect(screen.queryByTestId('backup-done')).not.toBeInTheDocument();
    // The backup passphrase the person chose stays.
    expect(screen.getByTestId('backup-passphrase')).toHaveValue(backupPass);
  });

  it('in keyring mode asks for no profile passphrase and sends null', async () => {
    const backend = fakeBackend();
    render(Harness, {
      backend,
      component: BackupDialog,
      args: { info, keyStorage: 'keyring', onClose: vi.fn() },
    });
    await fillBackup();
    expect(screen.queryByTestId('backup-profile-passphrase')).not.toBeInTheDocument();
    await fireEvent.click(screen.getByTestId('backup-submit'));
    expect(backend.exportBackup).toHaveBeenCalledWith({
      path: '/home/al/b.sotto',
      passphrase: backupPass,
      profilePassphrase: null,
    });
  });
});
