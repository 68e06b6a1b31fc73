import { describe, expect, it } from 'vitest';
import { relayUrlError, usernameError, validateCreate, validateRestore } from './validation';
import { defaultBackupPath } from './paths';

const good = {
  username: 'alice',
  relayKind: 'embedded' as const,
  relayUrl: '',
  pin: '',
  keyStorage: 'passphrase' as const,
  passphrase: 'violet tractor whisper canyon',
  confirm: 'violet tractor whisper canyon',
};

describe('onboarding validation', () => {
  it('accepts a complete form', () => {
    expect(validateCreate(good)).toEqual({});
  });

  it('explains each problem on its own field', () => {
    expect(usernameError('')).toBe('username-empty');
    expect(usernameError('a b')).toBe('username-chars');
    expect(usernameError('x'.repeat(33))).toBe('username-long');
    expect(relayUrlError('http://x')).toBe('relay-url');
    expect(relayUrlError('wss://relay.example.org:443')).toBeNull();
    const e = validateCreate({
      ...good,
      username: '',
      relayKind: 'address',
      relayUrl: 'relay.example.org',
      pin: '12',
      passphrase: 'password',
    });
    expect(e).toEqual({
      username: 'username-empty',
      relay: 'relay-url',
      pin: 'pin-short',
      passphrase: 'passphrase-weak',
    });
    expect(validateCreate({ ...good, confirm: 'other' })).toEqual({
      confirm: 'passphrase-mismatch',
    });
  });

  it('does not ask for a passphrase in keyring mode', () => {
    expect(validateCreate({ ...good, keyStorage: 'keyring', passphrase: '', confirm: '' })).toEqual(
      {},
    );
  });

  it('needs a file and a backup passphrase to restore', () => {
    const e = validateRestore({ ...good, file: ' ', backupPassphrase: '' });
    expect(e).toEqual({ file: 'file-empty', backupPassphrase: 'backup-passphrase-empty' });
  });

  it('suggests a backup file in the home folder', () => {
    const d = new Date(2026, 10, 27, 9, 5);
    expect(defaultBackupPath('/home/al/.local/share/sotto', d)).toBe(
      '/home/al/sotto-backup-2026-11-27-0905.sotto',
    );
  });
});
